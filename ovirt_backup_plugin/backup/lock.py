"""One backup run at a time per system: an exclusive ``flock`` on ``<state_dir>/<system>.lock``.

The lock is an advisory ``fcntl.flock`` on an open file: the kernel releases it when the
holder closes the file or dies, however it dies (``kill -9`` included), so there is no stale
lock to clean up and the file itself is never removed (removing a lock file races with the
next locker). While held, the file records who holds it (pid, host, start time) so that
the next one can say who it is waiting for.

``flock`` locks belong to an open file description, so two :class:`RunLock` objects on
the same path conflict even inside one process. On NFS, ``flock`` is emulated with
byte-range locks by Linux; keep ``state_dir`` on a local file system.

A forked child shares the open file description, and with it the lock, whatever
``O_CLOEXEC`` says (that acts on ``exec`` only): a worker process outliving the main one
would keep the lock and block every later run. So every child forked while a lock is held
closes its copy of the descriptor at once (:func:`forget_inherited_locks`, registered with
``os.register_at_fork``); closing one copy never releases the lock of the others (only
``LOCK_UN`` would, and the child never calls it). POSIX record locks (``lockf``) would not be
inherited, but they are per process: the process would drop its own lock whenever it closes
*any* descriptor of the file, as :meth:`RunLock.holder` does when it reads the holder note.
"""
from __future__ import annotations

import datetime as dt
import errno
import fcntl
import json
import logging
import os
import re
import socket
import threading
import time
from pathlib import Path
from typing import Callable, Optional, Set

from ..errors import BackupError
from ..private import FILE_MODE, private_dir

log = logging.getLogger(__name__)

POLL = 0.2            # seconds between two attempts while waiting for the lock
_HELD: Set["RunLock"] = set()     # the locks this process holds


def forget_inherited_locks() -> None:
    """In a forked child: close the descriptors of the parent's locks (the child must not
    keep them held after the parent is gone), and forget them (the child's copies of the
    :class:`RunLock` objects hold nothing). Never unlocks: the parent still holds them."""
    for lock in list(_HELD):
        fd, lock._fd = lock._fd, None
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=forget_inherited_locks)


class LockBusy(BackupError):
    """Another process holds the lock (and we were not asked to wait, or waited too long)."""

    def __init__(self, message: str, holder: Optional[dict] = None):
        super().__init__(message)
        self.holder = holder or {}


class LockStopped(BackupError):
    """The wait for the lock was interrupted (a signal asked the runner to stop)."""


def lock_path(state_dir: str, system: str, kind: str = "") -> Path:
    """``<state_dir>/<system>.lock`` (``<system>@<kind>.lock`` for other kinds; ``@`` is
    never part of a sanitized system name, so the two cannot collide)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", system).lstrip(".") or "default"
    return Path(state_dir) / (f"{safe}@{kind}.lock" if kind else f"{safe}.lock")


def describe(holder: dict) -> str:
    """``pid N on HOST since T`` (parts the file did not record are left out)."""
    parts = []
    if holder.get("pid"):
        parts.append(f"pid {holder['pid']}")
    if holder.get("host"):
        parts.append(f"on {holder['host']}")
    if holder.get("since"):
        parts.append(f"since {holder['since']}")
    return " ".join(parts) or "holder unknown"


class RunLock:
    """The exclusive lock of one system's backups (``kind=""``) or of its runner
    (``kind="runner"``: one long-running ``ovirt-backup run --every`` per system)."""

    def __init__(self, state_dir: str, system: str, *, kind: str = ""):
        self.system = system
        self.kind = kind
        self.path = lock_path(state_dir, system, kind)
        self._fd: Optional[int] = None

    @property
    def what(self) -> str:
        return f"another {self.kind or 'backup'} of {self.system}"

    def holder(self) -> dict:
        """What the current holder recorded in the file ({} when unreadable)."""
        try:
            text = self.path.read_text(encoding="utf-8")
            data = json.loads(text) if text.strip() else {}
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def _open(self) -> int:
        try:
            private_dir(self.path.parent)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
            if os.fstat(fd).st_uid == os.geteuid():
                os.fchmod(fd, FILE_MODE)        # whatever the umask, or an older 0644 file
            return fd
        except OSError as e:
            raise BackupError(f"cannot open the lock file {self.path}: {e.strerror}") from None

    def _try(self) -> bool:
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return False
            raise BackupError(f"cannot lock {self.path}: {e.strerror}") from None
        self._fd = fd
        _HELD.add(self)
        record = {"pid": os.getpid(), "host": socket.gethostname(),
                  "since": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")}
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(record) + "\n").encode("utf-8"), 0)
        except OSError as e:          # the lock holds even if the note cannot be written
            log.warning("cannot record the lock holder in %s: %s", self.path, e.strerror)
        return True

    def acquire(self, *, wait: bool = False, timeout: float = 3600.0,
                stop: Optional[threading.Event] = None,
                on_wait: Optional[Callable[[str], None]] = None) -> "RunLock":
        """Take the lock, or raise :class:`LockBusy` naming the holder.

        ``wait=True`` retries every :data:`POLL` seconds for at most ``timeout`` seconds;
        ``stop`` (an Event) ends the wait early with :class:`LockStopped`; ``on_wait`` is
        told once, with the holder's description, that we are waiting.
        """
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already held by this object")
        if self._try():
            return self
        holder = self.holder()
        if not wait:
            hint = "" if self.kind else "; use --wait to wait for it"
            raise LockBusy(f"{self.what} is running ({describe(holder)}){hint}", holder)
        if on_wait is not None:
            on_wait(f"waiting for {self.what} to finish ({describe(holder)}), "
                    f"at most {format_seconds(timeout)}")
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise LockBusy(f"{self.what} is still running after waiting "
                               f"{format_seconds(timeout)} ({describe(self.holder())})",
                               self.holder())
            pause = min(POLL, left)
            if stop is not None:
                if stop.wait(pause):
                    raise LockStopped(f"stopped while waiting for {self.what}")
            else:
                time.sleep(pause)
            if self._try():
                return self

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        _HELD.discard(self)
        try:
            os.ftruncate(fd, 0)       # no stale holder note for the next reader
        except OSError:
            pass
        finally:
            os.close(fd)              # closing the last descriptor releases the flock

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
