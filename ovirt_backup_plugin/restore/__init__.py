"""Restore: what is restorable, and bringing it back.

* :mod:`.listing` -- one query asked of every provider, the answers merged; selection;
* :mod:`.selection` -- ``--from-file`` and ``--exclude``;
* :mod:`.picker` -- the interactive pick in a terminal (filtered when the listing is large);
* :mod:`.copies` -- the copies to make of each item: names, ids, target cluster;
* :mod:`.batch` -- restoring many: templates first, VMs over K engine connections, lock
  refusals retried, 202 imports followed, resumable;
* :mod:`.truth` -- correlation ids and what the engine really did to each import;
* :mod:`.existing` -- which of the VMs to create the engine has already;
* :mod:`.mapping` -- networks, vNIC profiles and clusters of another engine;
* :mod:`.restore` -- the simple entry point (:func:`.restore.restore`);
* :mod:`.plan` -- ``restore --dry-run``: what the target engine would be asked, and what
  stands in the way, in the engine's order;
* :mod:`.templates` -- the templates a registering restore needs;
* :mod:`.history` -- ``history VM``: when a configuration changed, and how;
* :mod:`.arguments`, :mod:`.commands` -- the command line of ``list``, ``restore`` and
  ``history``: their arguments (light: the parser of every command reads them), and what
  they run (loaded for them only).
"""
