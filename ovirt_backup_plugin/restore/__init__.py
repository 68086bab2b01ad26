"""Restore: what is restorable, and bringing it back.

* :mod:`.listing` -- one query asked of every provider, the answers merged; selection;
* :mod:`.restore` -- copies created from checked OVFs (``POST /vms``) or by the provider;
* :mod:`.plan` -- ``restore --dry-run``: what the target engine would be asked, and what
  stands in the way;
* :mod:`.templates` -- the templates a registering restore needs;
* :mod:`.picker` -- the interactive pick in a terminal;
* :mod:`.history` -- ``history VM``: when a configuration changed, and how.
"""
