"""s3: OVF copies in an S3 bucket (boto3): AWS, Ceph RGW, MinIO, Swift's s3api.

Settings (``[provider:NAME]``):

``bucket``
    default ``ovirt-backup-<system>`` (lower-cased; characters S3 refuses become ``-``).
``prefix``
    keep everything under this prefix of the bucket (``engines/prod/``), so that several
    systems can share a bucket; default none.
``endpoint_url``
    ``https://rgw.example.com``, ``http://minio:9000``; none for AWS itself.
``region``
    default ``us-east-1``.
``access_key_id_file`` / ``access_key_id_env`` and ``secret_access_key_file`` /
``secret_access_key_env`` (``session_token_*`` for temporary credentials)
    never inline. With none of them the standard AWS credential chain applies
    (``AWS_ACCESS_KEY_ID``..., ``~/.aws/credentials`` with ``profile``, an instance role).
``addressing_style``
    ``path`` (default with an ``endpoint_url``: RGW, MinIO and s3api want it), ``virtual``
    or ``auto`` (default for AWS).
``ca_bundle``
    a CA bundle to verify the endpoint's TLS certificate with; ``verify = no`` turns the
    verification off (for tests only: it warns).
``sse``, ``sse_kms_key_id``
    server-side encryption asked of the service on every upload (``AES256``, ``aws:kms``
    with the key id), passed through as is. A service that does not implement it answers
    501, which is a permanent error naming the setting. Encryption at rest by *this* host
    (the sealing of every blob) is the host's, whatever the bucket does.
``timeout``
    seconds to connect and to read, per request (default 30).

The bucket holds the layout of :mod:`ovirt_backup_plugin.objectstore`, the same as the
``swift`` provider's container (store.json with its format, ``ovf/<hash>``,
``runs/<run id>.json`` manifests, ``index/current.z``): this module holds only the S3
primitives (:class:`_Bucket`) and how botocore's errors become ``ProviderError``.

The host owns retries: boto3's own are off (``total_max_attempts=1``) and every failure
becomes a ``ProviderError`` naming the bucket (never a credential): transient for
connection errors, timeouts, 5xx, throttling (``SlowDown``) and a body damaged on the way
(``BadDigest``); permanent for 403 (``AccessDenied``, ``InvalidAccessKeyId``,
``SignatureDoesNotMatch``), 404 (``NoSuchBucket``) and 501 (``NotImplemented``).
"""
import base64
import hashlib
import logging
import re

from ovirt_backup_plugin import hookimpl
from ovirt_backup_plugin.errors import ProviderError
from ovirt_backup_plugin.model import KEEPS_OVF, Option, ProviderDeclaration
from ovirt_backup_plugin.objectstore import Bucket, Store

log = logging.getLogger(__name__)

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_SSE = ("AES256", "aws:kms", "aws:kms:dsse")
_THROTTLED = {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded",
              "TooManyRequestsException", "RequestThrottled", "ServiceUnavailable",
              "InternalError", "RequestTimeout", "BadDigest", "OperationAborted"}
_DENIED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled",
           "InvalidToken", "ExpiredToken", "AccountProblem"}
_MISSING = {"NoSuchKey", "NoSuchBucket", "NotFound", "404"}
_insecure_warned: set = set()


@hookimpl
def declare_provider():
    text = "str"
    return ProviderDeclaration(
        keeps=KEEPS_OVF, off_host=True, description="an S3 bucket (AWS, Ceph RGW, MinIO)",
        options=(Option("bucket", text, help="default ovirt-backup-<system>"),
                 Option("prefix", text, "", help="keep everything under this prefix"),
                 Option("endpoint_url", text, help="the S3 endpoint (none: AWS)"),
                 Option("region", text, "us-east-1"),
                 Option("access_key_id", "secret", help="none: the AWS credential chain"),
                 Option("secret_access_key", "secret"),
                 Option("session_token", "secret", help="for temporary credentials"),
                 Option("profile", text, help="a profile of ~/.aws/credentials"),
                 Option("addressing_style", text, help="path, virtual or auto"),
                 Option("ca_bundle", "path", help="CA bundle to verify TLS with"),
                 Option("verify", "bool", True, help="no: do not verify TLS (tests only)"),
                 Option("sse", text, help="server-side encryption: AES256 or aws:kms"),
                 Option("sse_kms_key_id", text, help="the KMS key of sse = aws:kms"),
                 Option("timeout", "float", 30.0, help="seconds to connect / read")))


# --------------------------------------------------------------------------------------
# The bucket: the primitives of objectstore.Bucket
# --------------------------------------------------------------------------------------
class _Bucket(Bucket):
    """One bucket (and prefix) through one boto3 client."""

    def __init__(self, client, bucket: str, prefix: str, *, sse: dict, secrets: tuple,
                 region: str):
        self.client, self.bucket, self.prefix = client, bucket, prefix
        self.sse, self.secrets, self.region = sse, tuple(s for s in secrets if s), region
        self.where = f"bucket {bucket}" + (f" (prefix {prefix})" if prefix else "")
        self.identity = ("s3", client.meta.endpoint_url, bucket, prefix)

    def call(self, what, method, *, missing=..., **kwargs):
        return call(self, what, method, missing=missing, **kwargs)

    def get(self, name, what):
        def read():
            answer = self.client.get_object(Bucket=self.bucket, Key=self.prefix + name)
            return answer["Body"].read()       # inside call(): a cut body is transient too
        return call(self, what, read, missing=None)

    def put(self, name, data, content_type, what):
        digest = hashlib.md5(data, usedforsecurity=False)
        answer = self.call(what, "put_object", Bucket=self.bucket, Key=self.prefix + name,
                           Body=data, ContentType=content_type,
                           ContentMD5=base64.b64encode(digest.digest()).decode("ascii"),
                           **self.sse)
        etag = str(answer.get("ETag", "")).strip('"')
        # The service checked Content-MD5 (BadDigest otherwise). A simple PUT's ETag is the
        # md5, except under SSE-KMS (AWS documents another ETag there): checked when it is.
        if not self.sse.get("SSEKMSKeyId") and self.sse.get("ServerSideEncryption") \
                in (None, "AES256") and etag and etag != digest.hexdigest():
            raise ProviderError(f"{self.where}: {what}: stored ETag {etag} is not the md5 "
                                f"{digest.hexdigest()} of what was sent", transient=True)

    def delete(self, name, what):
        key = self.prefix + name
        if self.call(what, "head_object", Bucket=self.bucket, Key=key, missing=None) is None:
            return False
        self.call(what, "delete_object", Bucket=self.bucket, Key=key)
        return True

    def names(self, prefix):
        def listing():
            found = []
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix + prefix)
            for page in pages:
                found += [o["Key"][len(self.prefix):] for o in page.get("Contents", ())]
            return sorted(found)
        return call(self, f"listing {prefix or 'the bucket'}", listing, missing=[])

    def copy(self, name, destination, what):
        self.call(what, "copy_object", Bucket=self.bucket, Key=self.prefix + destination,
                  CopySource={"Bucket": self.bucket, "Key": self.prefix + name}, **self.sse)

    def exists(self):
        return self.call("reading the bucket", "head_bucket", Bucket=self.bucket,
                         missing=None) is not None

    def create(self):
        if self.exists():
            return
        where = {} if self.region in ("", "us-east-1") else {
            "CreateBucketConfiguration": {"LocationConstraint": self.region}}
        try:
            self.call("creating the bucket", "create_bucket", Bucket=self.bucket, **where)
        except ProviderError as e:
            if "BucketAlreadyOwnedByYou" in str(e):
                return
            raise ProviderError(f"{e} (the bucket does not exist: create it, or let these "
                                "credentials create buckets)", transient=e.transient,
                                retry_after=e.retry_after) from None

    def close(self):
        self.client.close()


def _open(settings) -> Store:
    return Store(connect(settings))


# --------------------------------------------------------------------------------------
# The hooks: each one line over objectstore.Store
# --------------------------------------------------------------------------------------
@hookimpl
def before_backup(run, settings, note):
    store = _open(settings)
    try:
        if not settings.get("verify", True):
            note("TLS verification is OFF (verify = no): for tests only")
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
        return store.describe(f"s3 {store.where}")


@hookimpl
def claim_store(settings, owner, fresh, note):
    with _open(settings) as store:
        store.claim(owner, fresh, note)


# --------------------------------------------------------------------------------------
# Settings, client, errors
# --------------------------------------------------------------------------------------
def bucket_name(settings) -> str:
    """The bucket: the setting, or ``ovirt-backup-<system>`` made a valid bucket name."""
    name = settings.get("bucket")
    if not name:
        name = re.sub(r"[^a-z0-9.-]+", "-", f"ovirt-backup-{settings.system}".lower())
        name = name.strip("-.")[:63].rstrip("-.")
    if not _BUCKET.fullmatch(name) or ".." in name:
        raise ProviderError(f"s3 provider {settings.name}: bucket {name!r} is not a valid "
                            "bucket name (3 to 63 of a-z, 0-9, '.' and '-')")
    return name


def _prefix(settings) -> str:
    prefix = str(settings.get("prefix", "") or "").strip("/")
    if prefix.startswith(".") or "//" in prefix:
        raise ProviderError(f"s3 provider {settings.name}: prefix {prefix!r} is not usable")
    return prefix + "/" if prefix else ""


def _sse(settings) -> dict:
    me = f"s3 provider {settings.name}"
    sse, key_id = settings.get("sse"), settings.get("sse_kms_key_id")
    if key_id and not sse:
        sse = "aws:kms"
    if sse and sse not in _SSE:
        raise ProviderError(f"{me}: sse = {sse!r}: use one of {', '.join(_SSE)}")
    if key_id and not sse.startswith("aws:kms"):
        raise ProviderError(f"{me}: sse_kms_key_id needs sse = aws:kms, not {sse}")
    out = {"ServerSideEncryption": sse} if sse else {}
    if key_id:
        out["SSEKMSKeyId"] = key_id
    return out


def connect(settings) -> _Bucket:
    """A boto3 client from the settings (no request is made yet)."""
    me = f"s3 provider {settings.name}"
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise ProviderError(f"{me}: boto3 is not installed "
                            "(pip install 'ovirt-backup-plugin[s3]')") from None
    bucket, prefix, sse = bucket_name(settings), _prefix(settings), _sse(settings)
    access, secret = settings.secret("access_key_id"), settings.secret("secret_access_key")
    token = settings.secret("session_token")
    if bool(access) != bool(secret):
        raise ProviderError(f"{me}: give both access_key_id and secret_access_key (as _file "
                            "or _env), or neither to use the AWS credential chain")
    endpoint = settings.get("endpoint_url")
    style = settings.get("addressing_style") or ("path" if endpoint else "auto")
    if style not in ("path", "virtual", "auto"):
        raise ProviderError(f"{me}: addressing_style must be path, virtual or auto, not {style}")
    verify = settings.get("ca_bundle") or True
    if not settings.get("verify", True):
        verify = False
        if settings.name not in _insecure_warned:
            _insecure_warned.add(settings.name)
            log.warning("%s: verify = no: the TLS certificate of %s is NOT verified (for "
                        "tests only)", me, endpoint or "AWS")
    timeout = float(settings.get("timeout", 30.0))
    options = dict(signature_version="s3v4", s3={"addressing_style": style},
                   retries={"total_max_attempts": 1, "mode": "standard"},
                   connect_timeout=timeout, read_timeout=timeout)
    for name in ("request_checksum_calculation", "response_checksum_validation"):
        if name in Config.OPTION_DEFAULTS:   # botocore >= 1.36: no CRC unless required
            options[name] = "when_required"
    region = settings.get("region") or "us-east-1"
    try:
        session = boto3.session.Session(profile_name=settings.get("profile") or None)
        client = session.client("s3", endpoint_url=endpoint or None, region_name=region,
                                aws_access_key_id=access or None,
                                aws_secret_access_key=secret or None,
                                aws_session_token=token or None, verify=verify,
                                config=Config(**options))
    except Exception as e:     # botocore's ProfileNotFound, a bad endpoint URL, ...
        raise ProviderError(f"{me}: cannot set up the S3 client: {type(e).__name__}: "
                            f"{_scrub(str(e), (access, secret, token))}") from None
    return _Bucket(client, bucket, prefix, sse=sse, secrets=(access, secret, token),
                   region=region)


def call(bucket: _Bucket, what, method, *, missing=..., **kwargs):
    """``client.method(**kwargs)`` (or ``method()`` when it is a function), every failure
    turned into a ProviderError naming the bucket (never a credential). ``missing``:
    returned instead of raising when the key or the bucket does not exist."""
    from botocore import exceptions as bex

    retry_after = 0.0
    try:
        if callable(method):
            return method()
        return getattr(bucket.client, method)(**kwargs)
    except bex.ClientError as e:
        error = e.response.get("Error", {})
        meta = e.response.get("ResponseMetadata", {})
        code = str(error.get("Code", ""))
        status = int(meta.get("HTTPStatusCode") or 0)
        if (status == 404 or code in _MISSING) and missing is not ...:
            return missing
        headers = {k.lower(): v for k, v in (meta.get("HTTPHeaders") or {}).items()}
        if str(headers.get("retry-after", "")).isdigit():
            retry_after = float(headers["retry-after"])
        transient = code in _THROTTLED or status in (408, 429) or (
            status >= 500 and status != 501)
        message = str(error.get("Message", "")) or code
        if code in _DENIED or status == 403:
            detail = (f"access denied ({code or status}): check access_key_id and "
                      "secret_access_key, and what they may do in this bucket")
        elif code == "NoSuchBucket":
            detail = "the bucket does not exist (NoSuchBucket)"
        elif status == 501 or code == "NotImplemented":
            detail = f"the service does not implement this request (501 NotImplemented): {message}"
            if bucket.sse:
                detail += "; it may not support server-side encryption: remove sse / " \
                          "sse_kms_key_id from the provider's settings"
        else:
            detail = f"HTTP {status} {code}: {message}".strip()
    except bex.SSLError as e:
        transient, detail = False, f"TLS error: {e} (ca_bundle names the CA to trust)"
    except (bex.ConnectionError, bex.HTTPClientError, bex.IncompleteReadError,
            bex.ResponseStreamingError) as e:
        transient, detail = True, f"S3 unreachable ({type(e).__name__})"
    except (bex.NoCredentialsError, bex.PartialCredentialsError) as e:
        transient, detail = False, (f"no credentials ({type(e).__name__}): set "
                                    "access_key_id_file / secret_access_key_file (or _env), "
                                    "or configure the AWS credential chain")
    except bex.BotoCoreError as e:
        transient, detail = False, f"{type(e).__name__}: {e}"
    except OSError as e:
        transient, detail = True, f"S3 unreachable ({type(e).__name__})"
    raise ProviderError(_scrub(f"s3 {bucket.where}: {what} failed: {detail}", bucket.secrets),
                        transient=transient, retry_after=retry_after)


def _scrub(text: str, secrets) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text
