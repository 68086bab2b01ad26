"""swift: OVF copies in an OpenStack Swift container (python-swiftclient).

Settings (``[provider:NAME]``):
    auth_url       ``http://HOST:8080/auth/v1.0`` (tempauth) or Keystone's ``.../v3``
    user           ``account:user`` for tempauth; the user name for Keystone
    key_file / key_env   where the key (password) is read; never inline
    auth_version   ``1`` (tempauth, default) or ``3`` (Keystone v3, with ``project_name``,
                   ``project_domain_name``, ``user_domain_name``, ``region_name``)
    container      default ``ovirt-backup-<system>``
    storage_url    use this storage URL instead of the one auth hands out (proxies, NAT)
    cacert         CA bundle for https
    timeout        seconds per request (default 30)
    datacenter     only this data center (default: all)

Layout of the container:
    ovf/<ovf_hash>       each distinct OVF once, named by its content hash; uploaded with its
                         md5 as ETag (Swift refuses a body that does not match); not uploaded
                         again when the name is already there
    runs/<run id>.json   one manifest per committed run: run id, start and commit times,
                         system, engine URL, data-center scope, and per VM: id, name, kind,
                         data center, cluster, ovf_hash and identity (VmIdentity.to_dict())

A run becomes visible with its manifest, the one object ``after_backup`` writes when the run
succeeded; listing reads manifests only. An abandoned run writes no manifest: the blobs it
uploaded are harmless (content-addressed) and the next run reuses them. The host owns
retries: the client runs with ``retries=0`` and every failure becomes a ``ProviderError``,
transient for connection errors, timeouts and 5xx.
"""
import datetime as dt
import hashlib
import json
import re
import threading

from ovirt_backup_plugin import hookimpl
from ovirt_backup_plugin.errors import ProviderError
from ovirt_backup_plugin.model import Restorable, RestoreResult, VmIdentity, utcnow
from ovirt_backup_plugin.ovf import ovf_hash

_open_runs = {}   # (provider name, run id) -> _Run
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")
_TRANSIENT = {408, 422, 429, 498, 499}   # 422: the body did not match its ETag on the way


class _Run:
    """One run in progress: its connection, the blob names in the container, the VMs written."""

    def __init__(self, conn, container, known):
        self.conn, self.container, self.known = conn, container, known
        self.vms = {}   # vm id -> manifest entry, in write order
        self.lock = threading.Lock()


@hookimpl
def before_backup(run, settings):
    run_id = _safe(run.id, "run id")
    conn, container = connect(settings), container_name(settings)
    try:
        listing = call(conn, container, "listing ovf/", "get_container", container,
                       prefix="ovf/", full_listing=True, missing=None)
        if listing is None:
            call(conn, container, "creating the container", "put_container", container)
    except ProviderError:
        conn.close()
        raise
    known = {o["name"] for o in listing[1]} if listing else set()
    _open_runs[(settings.name, run_id)] = _Run(conn, container, known)
    return f"container {container}: {len(known)} stored OVF(s)"


@hookimpl
def write_ovf(run, vm, settings):
    state = _open_runs.get((settings.name, run.id))
    if state is None:
        raise ProviderError(f"swift: run {run.id} is not open (before_backup failed)")
    name = "ovf/" + _safe(vm.ovf_hash, "ovf_hash")
    with state.lock:
        new = name not in state.known
        if new:
            if ovf_hash(vm.ovf) != vm.ovf_hash:   # a blob under a wrong name would stay forever
                raise ProviderError(f"OVF of VM {vm.identity.name} does not match its ovf_hash")
            put(state.conn, state.container, name, vm.ovf.encode("utf-8", "surrogateescape"),
                "application/xml", f"uploading the OVF of VM {vm.identity.name}")
            state.known.add(name)
        state.vms[vm.identity.id] = {
            "id": vm.identity.id, "name": vm.identity.name, "kind": vm.identity.kind,
            "datacenter": vm.datacenter, "cluster": vm.identity.cluster,
            "ovf_hash": vm.ovf_hash, "identity": vm.identity.to_dict()}
    return new


@hookimpl
def after_backup(run, settings, outcome):
    key = (settings.name, run.id)
    state = _open_runs.get(key)
    if state is None:
        return None
    if not outcome.ok:
        _open_runs.pop(key).conn.close()
        return f"run abandoned: no manifest written to container {state.container}"
    manifest = {"format": 1, "run": run.id, "started_at": run.started_at.isoformat(),
                "committed_at": utcnow().isoformat(), "system": run.system, "engine_url": run.engine_url,
                "datacenter": run.datacenter, "vms": list(state.vms.values())}
    name = f"runs/{run.id}.json"
    try:
        put(state.conn, state.container, name, json.dumps(manifest, indent=1).encode("utf-8"),
            "application/json", f"committing run {run.id}")
    except ProviderError as e:
        if not e.transient:   # a transient failure keeps the run open for the host's retry
            _open_runs.pop(key).conn.close()
        raise
    _open_runs.pop(key).conn.close()
    return f"run {run.id} committed: {len(state.vms)} VM(s) in container {state.container} ({name})"


@hookimpl
def list_restorable(settings, datacenter):
    conn, container = connect(settings), container_name(settings)
    items = []
    try:
        _, objects = call(conn, container, "listing runs/ (does the container exist?)",
                          "get_container", container, prefix="runs/", full_listing=True)
        for obj in sorted(objects, key=lambda o: o["name"], reverse=True):
            if obj["name"].endswith(".json"):
                items += _restorables(conn, container, obj["name"], settings, datacenter)
    finally:
        conn.close()
    return items


@hookimpl
def read_ovf(item, settings):
    if item.provider != settings.name:
        return None
    conn, container = connect(settings), container_name(settings)
    try:
        name = "ovf/" + _safe(item.ovf_hash, "ovf_hash")
        _, body = call(conn, container, f"reading the OVF of VM {item.name} ({name})",
                       "get_object", container, name)
    finally:
        conn.close()
    text = body.decode("utf-8", "surrogateescape")
    if ovf_hash(text) != item.ovf_hash:
        raise ProviderError(f"stored OVF of VM {item.name} in container {container} is "
                            "corrupted: hash mismatch")
    return text


@hookimpl
def restore_vm(request, engine, settings):
    if request.item.provider != settings.name:
        return None
    ovf = read_ovf(item=request.item, settings=settings)
    vm_id = engine.add_vm_from_ovf(ovf, name=request.name, cluster=request.cluster,
                                   regenerate_ids=request.regenerate_ids)
    return RestoreResult(provider=settings.name, vm_id=vm_id, name=request.name)


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------
def container_name(settings) -> str:
    name = settings.get("container") or f"ovirt-backup-{settings.system}"
    if "/" in name:
        raise ProviderError(f"swift provider {settings.name}: container {name!r} contains '/'")
    return name


def connect(settings):
    """A swiftclient Connection from the settings (no request is made yet)."""
    me = f"swift provider {settings.name}"
    try:
        from swiftclient.client import Connection
    except ImportError:
        raise ProviderError(f"{me}: python-swiftclient is not installed "
                            "(pip install 'ovirt-backup-plugin[swift]')") from None
    auth_url, user = settings.get("auth_url"), settings.get("user")
    version, timeout = settings.get("auth_version", "1"), settings.get("timeout", "30")
    try:
        key = settings.secret("key")
    except OSError as e:
        raise ProviderError(f"{me}: cannot read key_file {settings.get('key_file')}: "
                            f"{e.strerror}") from None
    if not (auth_url and user and key):
        raise ProviderError(f"{me}: auth_url, user and key_file or key_env (non-empty) must be set")
    if version not in ("1", "1.0", "3"):
        raise ProviderError(f"{me}: auth_version must be 1 or 3, not {version}")
    if version == "3":
        try:
            import keystoneclient.v3  # noqa: F401  (swiftclient's Keystone support)
        except ImportError:
            raise ProviderError(f"{me}: auth_version 3 needs python-keystoneclient, which is "
                                "not installed") from None
    try:
        timeout = float(timeout)
    except ValueError:
        raise ProviderError(f"{me}: timeout must be a number of seconds, not {timeout}") from None
    names = ("project_name", "project_domain_name", "user_domain_name", "region_name")
    options = {n: settings.get(n) for n in names if settings.get(n)}
    if settings.get("storage_url"):
        options["object_storage_url"] = settings.get("storage_url")
    return Connection(auth_url, user, key, retries=0, auth_version=version, os_options=options,
                      timeout=timeout, cacert=settings.get("cacert"))


def call(conn, container, what, method, *args, missing=..., **kwargs):
    """``conn.method(*args, **kwargs)``, every failure turned into a ProviderError naming the
    container (never the key). ``missing``: returned instead of raising on 404."""
    from requests import exceptions as rex
    from swiftclient.exceptions import ClientException

    retry_after = 0.0
    try:
        return getattr(conn, method)(*args, **kwargs)
    except ClientException as e:
        status = e.http_status
        if status == 404 and missing is not ...:
            return missing
        transient = bool(status) and (status >= 500 or status in _TRANSIENT)
        headers = {k.lower(): v for k, v in (e.http_response_headers or {}).items()}
        if str(headers.get("retry-after", "")).isdigit():   # 429/503 may say how long
            retry_after = float(headers["retry-after"])
        detail = {401: f"authentication failed for user {conn.user} at {conn.authurl}: check "
                       "user and key", 403: "access denied", 404: "not found"}.get(status)
        detail = detail or (f"HTTP {status} {e.http_reason or ''}".strip() if status
                            else " ".join(str(e).split()))
    except rex.SSLError as e:
        transient, detail = False, f"TLS error: {e}"
    except (rex.ConnectionError, rex.Timeout, rex.ChunkedEncodingError, OSError) as e:
        conn.close()   # drop the broken connection: the next call opens a new one
        transient, detail = True, f"Swift unreachable ({type(e).__name__})"
    except rex.RequestException as e:
        transient, detail = False, str(e)
    message = f"swift container {container}: {what} failed: {detail}"
    raise ProviderError(message.replace(conn.key, "***") if conn.key else message,
                        transient=transient, retry_after=retry_after)


def put(conn, container, name, data: bytes, content_type: str, what: str) -> None:
    md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()   # the ETag
    etag = call(conn, container, what, "put_object", container, name, data, etag=md5,
                content_type=content_type)
    if etag != md5:
        raise ProviderError(f"swift container {container}: {what}: stored ETag {etag} is not "
                            f"the md5 {md5} of what was sent", transient=True)


def _restorables(conn, container, name, settings, datacenter) -> list:
    """The VMs of one manifest that are in scope, as Restorable items."""
    _, body = call(conn, container, f"reading {name}", "get_object", container, name)
    try:
        manifest = json.loads(body)
        taken_at = dt.datetime.fromisoformat(manifest["started_at"])
        return [Restorable(
            provider=settings.name, vm_id=vm["id"], name=vm["name"], kind=vm["kind"],
            generation=manifest["run"], taken_at=taken_at, datacenter=vm["datacenter"],
            cluster=vm["cluster"], ovf_hash=vm["ovf_hash"], location="ovf/" + vm["ovf_hash"],
            identity=VmIdentity.from_dict(vm["identity"]))
            for vm in manifest["vms"]
            if _in_scope(vm["datacenter"], datacenter, settings.datacenter)]
    except (ValueError, TypeError, KeyError) as e:
        raise ProviderError(f"manifest {name} in container {container} is unreadable: "
                            f"{type(e).__name__}: {e}") from None


def _in_scope(vm_datacenter: str, *scopes) -> bool:
    return all(not scope or vm_datacenter == scope for scope in scopes)


def _safe(value: str, what: str) -> str:
    if not _SAFE_NAME.fullmatch(value or ""):
        raise ProviderError(f"swift: {what} {value!r} cannot be part of an object name")
    return value
