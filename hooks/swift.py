"""swift: OVF copies in an OpenStack Swift container (python-swiftclient).

Settings (``[provider:NAME]``): ``auth_url`` (``http://HOST:8080/auth/v1.0`` for tempauth,
Keystone's ``.../v3``), ``user``, ``key_file`` / ``key_env`` (never inline),
``auth_version`` (``1`` or ``3``, with ``project_name``, ``project_domain_name``,
``user_domain_name``, ``region_name``), ``container`` (default ``ovirt-backup-<system>``),
``storage_url`` (instead of the one auth hands out), ``cacert``, ``timeout``.

The container holds the layout of :mod:`ovirt_backup_plugin.objectstore` (format 2: store.json,
``ovf/<hash>``, ``runs/<run id>.json`` manifests, ``index/current.z``, ``set-aside/``), shared
with the ``s3`` provider: this module holds only the Swift primitives (:class:`_Container`)
and how swiftclient's errors become ``ProviderError``.

The host owns retries: the client runs with ``retries=0`` and every failure becomes a
``ProviderError``, transient for connection errors, timeouts and 5xx.

One command asks the store several times (a listing, then each OVF it reads): the storage
URL and token the first login gave are kept in this process's memory (never written
anywhere) and handed to the next connection with the same auth URL, user and key, so it
logs in once; swiftclient logs in again by itself when the token has expired (401).
"""
import hashlib

from ovirt_backup_plugin import hookimpl
from ovirt_backup_plugin.errors import ProviderError
from ovirt_backup_plugin.model import KEEPS_OVF, Option, ProviderDeclaration
from ovirt_backup_plugin.objectstore import FORMAT, INDEX, Bucket, Index, Store

__all__ = ["FORMAT", "INDEX"]
_Index = Index                              # the index, under its former name
_TRANSIENT = {408, 422, 429, 498, 499}   # 422: the body did not match its ETag on the way
#: Names per listing request: at most Swift's default container_listing_limit (10,000).
LISTING_PAGE = 1000


@hookimpl
def declare_provider():
    text = "str"
    return ProviderDeclaration(
        keeps=KEEPS_OVF, off_host=True, description="an OpenStack Swift container",
        options=(Option("auth_url", text, help="tempauth .../auth/v1.0 or Keystone .../v3"),
                 Option("user", text, help="account:user (tempauth) or the Keystone user"),
                 Option("key", "secret", help="the Swift key (password)"),
                 Option("auth_version", text, "1", help="1 (tempauth) or 3 (Keystone v3)"),
                 Option("project_name", text), Option("project_domain_name", text),
                 Option("user_domain_name", text), Option("region_name", text),
                 Option("container", text, help="default ovirt-backup-<system>"),
                 Option("storage_url", text, help="use this storage URL, not auth's"),
                 Option("cacert", "path", help="CA bundle for https"),
                 Option("timeout", "float", 30.0, help="seconds per request")))


# --------------------------------------------------------------------------------------
# The container: the primitives of objectstore.Bucket
# --------------------------------------------------------------------------------------
class _Container(Bucket):
    """One open container: its connection and name."""

    def __init__(self, conn, container: str, login=None):
        self.conn, self.container, self.login = conn, container, login
        self.where = f"container {container}"
        self.identity = None if login is None else ("swift", login, container)

    def call(self, what, method, *args, missing=..., too_large=..., **kwargs):
        return call(self.conn, self.container, what, method, *args, missing=missing,
                    too_large=too_large, **kwargs)

    def get(self, name, what):
        found = self.call(what, "get_object", self.container, name, missing=None)
        return None if found is None else found[1]

    def put(self, name, data, content_type, what):
        put(self.conn, self.container, name, data, content_type, what)

    def delete(self, name, what):
        return self.call(what, "delete_object", self.container, name, missing=False) is not False

    def names(self, prefix):
        """Pages of LISTING_PAGE names, asked for by size: a short page is the last one, so
        a listing of fewer names is one request (swiftclient's full_listing asks once
        more, for the empty page that ends it). A cluster whose listing limit is lower
        answers 412 to the size: then full_listing does it."""
        what = f"listing {prefix or 'the container'}"
        found, marker = [], ""
        while True:
            page = self.call(what, "get_container", self.container, prefix=prefix,
                             marker=marker, limit=LISTING_PAGE, missing=None, too_large=False)
            if page is False:
                listing = self.call(what, "get_container", self.container, prefix=prefix,
                                    full_listing=True, missing=None)
                return sorted(o["name"] for o in listing[1]) if listing else []
            objects = page[1] if page else []
            found += [o["name"] for o in objects]
            if len(objects) < LISTING_PAGE:
                return sorted(found)
            marker = objects[-1]["name"]

    def copy(self, name, destination, what):
        self.call(what, "copy_object", self.container, name,
                  destination=f"/{self.container}/{destination}")

    def exists(self):
        return self.call("reading the container", "head_container", self.container,
                         missing=None) is not None

    def create(self):
        self.call("creating the container", "put_container", self.container)

    def close(self):
        if self.login is not None and self.conn.url and self.conn.token:
            _logins[self.login] = (self.conn.url, self.conn.token)
        self.conn.close()


def _open(settings) -> Store:
    conn = connect(settings)
    return Store(_Container(conn, container_name(settings), login=_login_of(settings)))


# --------------------------------------------------------------------------------------
# The hooks: each one line over objectstore.Store
# --------------------------------------------------------------------------------------
@hookimpl
def before_backup(run, settings, note):
    store = _open(settings)
    try:
        return store.begin(run, note)
    except ProviderError:
        store.close()
        raise


@hookimpl
def write_ovf(vm, state):
    return state.store.write(state, vm)


@hookimpl
def carry_over(state, items):
    return state.store.carry(state, items)


@hookimpl
def after_backup(run, state, outcome, note):
    state.store.finish(run, state, outcome, note)


@hookimpl
def list_restorable(query, settings):
    with _open(settings) as store:
        return store.restorable(query, settings.name)


@hookimpl
def read_ovf(item, settings):
    with _open(settings) as store:
        return store.read(item)


@hookimpl
def list_generations(settings):
    with _open(settings) as store:
        return store.generations()


@hookimpl
def forget_generations(settings, generations):
    """Delete the manifests of ``generations``, update the index, then every ``ovf/``
    object no generation references (see :meth:`objectstore.Store.forget`: safe to
    interrupt, every unreferenced object is collected)."""
    with _open(settings) as store:
        return store.forget(generations)


@hookimpl
def inventory_store(settings):
    with _open(settings) as store:
        return store.inventory()


@hookimpl
def describe_store(settings):
    with _open(settings) as store:
        return store.describe(f"swift container {container_name(settings)}")


@hookimpl
def claim_store(settings, owner, fresh, note):
    with _open(settings) as store:
        store.claim(owner, fresh, note)


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
    version = str(settings.get("auth_version", "1"))
    key = settings.secret("key")
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
    names = ("project_name", "project_domain_name", "user_domain_name", "region_name")
    options = {n: settings.get(n) for n in names if settings.get(n)}
    if settings.get("storage_url"):
        options["object_storage_url"] = settings.get("storage_url")
    url, token = _logins.get(_login_of(settings), (None, None))
    return Connection(auth_url, user, key, retries=0, auth_version=version, os_options=options,
                      timeout=float(settings.get("timeout", 30.0)), cacert=settings.get("cacert"),
                      preauthurl=url, preauthtoken=token)


#: (storage URL, token) of each login this process made, by :func:`_login_of`.
_logins: dict = {}


def _login_of(settings) -> tuple:
    """What a login depends on; the key only as a digest (a wrong key never finds the
    token a right one was given)."""
    key = settings.secret("key") or ""
    return (settings.get("auth_url"), settings.get("user"), str(settings.get("auth_version", "1")),
            hashlib.sha256(key.encode()).hexdigest(), settings.get("storage_url"),
            *(settings.get(n) for n in ("project_name", "project_domain_name",
                                         "user_domain_name", "region_name")))


def call(conn, container, what, method, *args, missing=..., too_large=..., **kwargs):
    """``conn.method(*args, **kwargs)``, every failure turned into a ProviderError naming the
    container (never the key). ``missing``: returned instead of raising on 404;
    ``too_large``: on 412 (a listing limit above the cluster's)."""
    from requests import exceptions as rex
    from swiftclient.exceptions import ClientException

    retry_after = 0.0
    try:
        return getattr(conn, method)(*args, **kwargs)
    except ClientException as e:
        status = e.http_status
        if status == 404 and missing is not ...:
            return missing
        if status == 412 and too_large is not ...:
            return too_large
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

