"""The test kit, for this project's tests and for integrators who write providers.

* :mod:`.synth` -- engines synthesized from the oVirt API model (inventory, OVFs, REST XML,
  faults), written as vcrpy cassettes; the demo's engine;
* :mod:`.replay` -- a loopback HTTP server that answers the real SDK from cassettes
  (vcrpy's own loading and matching);
* :mod:`.record` -- ``ovirt-backup record``: a recording proxy to a real engine, secrets
  scrubbed (:mod:`.scrub`), both built on :mod:`.loopback`;
* :mod:`.contract` -- the provider contract suite every provider must pass;
* :mod:`.pytest_plugin` -- the ``ovirt_replay`` and ``backup_plugin_manager`` fixtures;
* :mod:`.cassettes` -- where the project's cassettes are.
"""
