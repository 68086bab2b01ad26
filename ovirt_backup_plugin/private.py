"""Private by default: every folder the product creates is 0700, every file 0600.

An OVF carries the VM's cloud-init settings (a root password, a custom script, authorized
keys), so whatever holds one -- the catalog and its journal, debug files, recorded
cassettes, key files -- must be readable by the backup user only, whatever the umask.
Everything the product (and every built-in provider) creates on disk goes through here:

* :func:`private_dir` makes a folder (and the parents it has to make) 0700;
* :func:`private_file` creates a file 0600 (or opens an existing one) and returns it open;
* :func:`write_private` writes a whole file atomically (a 0600 temporary file, renamed);
* :func:`check_private` warns, once per run and path, about an existing store or state
  folder (or store file) that other users can read, naming the path and the fix.

Modes are set with ``chmod`` after creation, so that a umask (022, 0, 077, 277) never
decides them. Existing folders and files are never changed behind the admin's back: they
get the warning. Providers import these from :mod:`ovirt_backup_plugin` (the public surface).
"""
from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import IO, Any, Set, Union

log = logging.getLogger(__name__)

__all__ = ["DIR_MODE", "FILE_MODE", "private_dir", "private_file", "write_private",
           "check_private"]

DIR_MODE = 0o700
FILE_MODE = 0o600
PathLike = Union[str, "os.PathLike[str]"]

#: Paths already warned about in this process (one warning per run and path).
_warned: Set[str] = set()


def private_dir(path: PathLike, *, check: bool = True) -> Path:
    """``path`` as a folder: created 0700 with every parent it has to create (also 0700);
    an existing one is left as it is, and warned about when others can read it
    (``check``)."""
    path = Path(path)
    missing = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=DIR_MODE)
        except FileExistsError:          # made meanwhile by another process
            continue
        os.chmod(folder, DIR_MODE)
    if check and not missing:
        check_private(path)
    return path


def private_file(path: PathLike, mode: str = "a", *, encoding: str = "utf-8") -> IO[Any]:
    """``path`` opened with ``mode`` (``"a"``, ``"w"``, ``"ab"``, ``"wb"``, ``"r+b"``...),
    created 0600 if it does not exist; its folder must exist."""
    flags = {"a": os.O_WRONLY | os.O_APPEND, "w": os.O_WRONLY | os.O_TRUNC,
             "r+": os.O_RDWR}[mode.replace("b", "")]
    created = False
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
        created = True
    except FileExistsError:
        fd = os.open(path, flags | os.O_CLOEXEC)
    if created:
        os.fchmod(fd, FILE_MODE)
    if "b" in mode:
        return os.fdopen(fd, mode)
    return os.fdopen(fd, mode, encoding=encoding)


def write_private(path: PathLike, data: Union[str, bytes], *, encoding: str = "utf-8") -> Path:
    """Write ``data`` to ``path`` atomically: a 0600 temporary file beside it, renamed over
    it (so a reader never sees half a file, and the result is 0600 whatever was there)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    with private_file(tmp, "wb") as f:
        f.write(data.encode(encoding) if isinstance(data, str) else data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def check_private(path: PathLike) -> bool:
    """Warn (once per run) when the existing folder or file ``path``, owned by this user,
    can be read by other users; True when it is private (or not ours to judge)."""
    try:
        st = os.stat(path)
    except OSError:
        return True
    if st.st_uid != os.geteuid():       # not ours: we could not chmod it anyway
        return True
    open_to_others = st.st_mode & (stat.S_IRWXG | stat.S_IRWXO)
    if not open_to_others:
        return True
    key = os.path.realpath(path)
    if key not in _warned:
        _warned.add(key)
        is_dir = stat.S_ISDIR(st.st_mode)
        fix = f"chmod {'700' if is_dir else '600'} {path}"
        log.warning("%s %s can be read by other users (mode %04o) and holds backups of VM "
                    "configurations, which can carry passwords and keys; make it private: %s",
                    "folder" if is_dir else "file", path, stat.S_IMODE(st.st_mode), fix)
    return False
