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
    store.json           the engine this container serves (EngineIdentity), see ``attach``
    set-aside/<time>/runs/<run id>.json   manifests set aside by ``attach --fresh``
    runs/<run id>.json   one manifest per committed run: run id, start and commit times,
                         system, engine URL, data-center scope, and per VM: id, name, kind,
                         data center, cluster, ovf_hash and identity (VmIdentity.to_dict())

A run becomes visible with its manifest, the one object ``after_backup`` writes when the run
succeeded; listing reads manifests only. An abandoned run writes no manifest: the blobs it
uploaded are harmless (content-addressed) and the next run reuses them. ``prune`` deletes
manifests first, then the blobs no manifest references (see ``forget_generations``). The
host owns retries: the client runs with ``retries=0`` and every failure becomes a
``ProviderError``, transient for connection errors, timeouts and 5xx.
"""
import datetime as dt
import hashlib
import json
import re
import threading

from ovirt_backup_plugin import hookimpl
from ovirt_backup_plugin.errors import ProviderError
from ovirt_backup_plugin.model import (EngineIdentity, PruneResult, Restorable,
                                       StoreInfo, VmIdentity, utcnow)
from ovirt_backup_plugin.ovf import ovf_hash, verified

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
    return verified(text, item, f"container {container}")


@hookimpl
def restore_vm(request, engine, settings):
    if request.item.provider == settings.name:
        return engine.restore_from_ovf(request, read_ovf(request.item, settings),
                                       provider=settings.name)


@hookimpl
def forget_generations(settings, generations):
    """Delete the manifests ``runs/<id>.json`` of ``generations`` first, then list the
    manifests that remain and delete every ``ovf/<hash>`` none of them references.

    The order makes an interruption safe. A manifest *is* its generation (one object: the
    generation goes as a whole), and a blob is deleted only once the manifests that
    referenced it are gone and none listed *after* those deletions (a run committed
    meanwhile included) references it. A failure part-way therefore never leaves a manifest
    pointing at a missing blob, only unreferenced blobs, which the next prune deletes;
    blobs first would leave listed generations whose OVF is gone.

    Blobs stored after the newest manifest was committed are kept: they may belong to a
    backup still running, whose manifest is not written yet (the host also holds the
    system's backup lock while it prunes). Every ``*.json`` outside ``ovf/`` counts as a
    manifest, so a history set aside under another prefix keeps its blobs.
    """
    conn, container = connect(settings), container_name(settings)
    gone = blobs = 0
    try:
        for run_id in generations:
            name = f"runs/{_safe(run_id, 'run id')}.json"
            if call(conn, container, f"deleting {name}", "delete_object", container, name,
                    missing=False) is not False:
                gone += 1
        _, objects = call(conn, container, "listing the container", "get_container",
                          container, full_listing=True)
        manifests = [o for o in objects
                     if o["name"].endswith(".json") and not o["name"].startswith("ovf/")]
        referenced = set()
        for obj in manifests:
            referenced |= _referenced(conn, container, obj["name"])
        newest = max((o["last_modified"] for o in manifests if o["name"].startswith("runs/")),
                     default="")
        for obj in objects:
            if (obj["name"].startswith("ovf/") and obj["name"] not in referenced
                    and obj["last_modified"] < newest):
                call(conn, container, f"deleting {obj['name']}", "delete_object", container,
                     obj["name"], missing=None)
                blobs += 1
    finally:
        conn.close()
    return PruneResult(generations=gone, blobs=blobs)


@hookimpl
def describe_store(settings):
    conn, container = connect(settings), container_name(settings)
    try:
        listing = call(conn, container, "listing the container", "get_container", container,
                       full_listing=True, missing=None)
        names = [o["name"] for o in listing[1]] if listing else []
        owner = None
        if "store.json" in names:
            _, body = call(conn, container, "reading store.json", "get_object", container,
                           "store.json")
            owner = EngineIdentity.from_dict(json.loads(body))
    finally:
        conn.close()
    runs = sorted(n[5:-5] for n in names if n.startswith("runs/") and n.endswith(".json"))
    last = dt.datetime.strptime(runs[-1][:16], "%Y%m%dT%H%M%SZ").replace(
        tzinfo=dt.timezone.utc) if runs else None
    aside = sorted({"/".join(n.split("/")[:2]) for n in names if n.startswith("set-aside/")})
    return StoreInfo(location=f"swift container {container}", owner=owner, generations=len(runs),
                     last_run=last, set_aside=tuple(aside))


@hookimpl
def claim_store(settings, owner, fresh):
    conn, container = connect(settings), container_name(settings)
    messages = []
    try:
        call(conn, container, "creating the container", "put_container", container)
        if fresh:
            aside = f"set-aside/{utcnow():%Y%m%dT%H%M%SZ}"
            _, objects = call(conn, container, "listing runs/", "get_container", container,
                              prefix="runs/", full_listing=True)
            for obj in objects:      # copy first, then delete: a manifest is never lost
                call(conn, container, f"setting {obj['name']} aside", "copy_object", container,
                     obj["name"], destination=f"/{container}/{aside}/{obj['name']}")
                call(conn, container, f"removing {obj['name']}", "delete_object", container,
                     obj["name"])
            messages.append(f"{len(objects)} generation(s) set aside under {aside}/ in "
                            f"container {container}")
        put(conn, container, "store.json", json.dumps(owner.to_dict()).encode("utf-8"),
            "application/json", "recording the owner")
    finally:
        conn.close()
    return messages + [f"container {container} now serves {owner.system} ({owner.url})"]


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


def _manifest(conn, container, name):
    """A manifest's JSON, or None when it is gone (a prune deleted it since the listing)."""
    found = call(conn, container, f"reading {name}", "get_object", container, name,
                 missing=None)
    try:
        return None if found is None else json.loads(found[1])
    except ValueError as e:
        raise ProviderError(f"manifest {name} in container {container} is unreadable: "
                            f"{type(e).__name__}: {e}") from None


def _referenced(conn, container, name) -> set:
    """The blob names a manifest references; an unreadable one stops the pruning."""
    try:
        manifest = _manifest(conn, container, name) or {}
        return {"ovf/" + vm["ovf_hash"] for vm in manifest.get("vms", ())}
    except ProviderError as e:
        if e.transient:
            raise
        raise ProviderError(f"{e}; no stored OVF was deleted") from None
    except (AttributeError, TypeError, KeyError) as e:
        raise ProviderError(f"manifest {name} in container {container} is unreadable "
                            f"({type(e).__name__}: {e}); no stored OVF was deleted") from None


def _restorables(conn, container, name, settings, datacenter) -> list:
    """The VMs of one manifest that are in scope, as Restorable items."""
    manifest = _manifest(conn, container, name)
    if manifest is None:
        return []
    try:
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
