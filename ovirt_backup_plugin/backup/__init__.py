"""Backup: reading the engine and writing every provider, once or on a schedule.

* :mod:`.capture` -- pages of ``GET /vms?all_content=true`` read (by worker processes)
  and each OVF parsed, hashed and compressed;
* :mod:`.run` -- one run: every VM to every provider, committed or abandoned as a whole;
* :mod:`.lock` -- one run at a time per system;
* :mod:`.runner` -- ``ovirt-backup run``: runs on a schedule, signals, audit events;
* :mod:`.arguments`, :mod:`.commands` -- the command line of ``backup`` and ``run``: their
  arguments (light: the parser of every command reads them), and what they run.
"""
