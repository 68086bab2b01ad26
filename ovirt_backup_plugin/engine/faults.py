"""The engine-side error policy: SDK exceptions become :class:`EngineError` an admin can act on."""
from __future__ import annotations

import re
from typing import Optional

from ..errors import ConfigError, ConflictError, EngineError
from .sdk import ovirtsdk4
from .sso import unavailable
from .transport import ca_advice

__all__ = ["translate", "fault_text", "short", "not_xml", "splittable", "answered", "BACKUP_ROLE",
           "RESTORE_ROLE", "MSD_ROLE"]

# What a user needs, from the engine's sources (ovirt-engine @0111fc63036b): a query the
# REST API runs unfiltered (no ``Filter: true`` header, as this product asks) is allowed only
# for a user with an administrator role (QueriesCommandBase.validatePermissions ->
# DbUser.isAdmin, set from roleDao.getAnyAdminRoleForUserAndGroups in
# CreateUserSessionCommand); such a query sees every VM. POST /vms with an OVF runs
# ImportVmFromConfiguration (ActionGroup IMPORT_EXPORT_VM on the storage domains, CREATE_VM on
# the cluster: ImportVmCommand/ImportVmCommandBase.getPermissionCheckSubjects); updateovfstore
# needs MANIPULATE_STORAGE_DOMAIN (ActionType.UpdateOvfStoreForStorageDomain). Roles: packaging/
# dbscripts/data/00500_insert_roles.sql (ReadOnlyAdmin and SuperUser are of type Admin).
BACKUP_ROLE = ("a backup reads every VM with its OVF, which the engine allows only to a user "
               "with an administrator role: give the user ReadOnlyAdmin (or SuperUser) on "
               "the System object, or use admin@internal")
RESTORE_ROLE = ("a restore needs an administrator role with CREATE_VM on the target cluster "
                "and IMPORT_EXPORT_VM on the VM's storage domains: e.g. SuperUser or "
                "DataCenterAdmin, or ClusterAdmin plus VmImporterExporter")
MSD_ROLE = ("forcing an OVF_STORE update needs MANIPULATE_STORAGE_DOMAIN on the master domain: "
            "e.g. SuperUser, DataCenterAdmin or StorageAdmin")
_PERMISSION_WORDS = ("insufficient permissions", "not authorized")


#: libcurl's errors of a certificate that does not verify: 60 (issuer unknown), 51 (name
#: mismatch), 58/83/90/91 (client cert, issuer, pinned key, status), 77 (CA file unusable).
_TLS_VERIFY = re.compile(r"\((?:60|51|58|77|83|90|91), |SSL certificate problem|certificate "
                         r"verif|SSL: no alternative certificate|unable to get local issuer")


def not_xml(e: BaseException) -> bool:
    """The SDK got an answer that is not the API's XML (an HTML page of the web server in
    front of the engine, or no content type at all: engine-facts C.2); its status is lost."""
    return (type(e) is ovirtsdk4.Error and "isn't the expected XML" in str(e)) or (
        isinstance(e, TypeError) and "NoneType" in str(e))


def splittable(e: BaseException) -> bool:
    """A page that failed this way may be read in smaller pages: its answer did not parse,
    or it did not arrive (a timeout, a connection cut: transient, without an HTTP status).
    Never an answer of the engine (4xx refusals, 5xx failures, HTML pages: the run stops as
    before) or a setting."""
    if not isinstance(e, EngineError) or isinstance(e, ConflictError):
        return False
    return e.unreadable or (e.transient and e.code is None)


def answered(e: BaseException) -> bool:
    """The engine answered, but the answer could not be read."""
    return isinstance(e, EngineError) and e.unreadable


def translate(what: str, e: Exception, *, url: str, username: str, timeout: float,
              role: str = BACKUP_ROLE, status: Optional[int] = None,
              ca_file: Optional[str] = None) -> EngineError:
    """The :class:`EngineError` (transient or not) that ``e`` raised during ``what`` means.

    ``status``: the HTTP status of the engine's API root when ``e`` was an answer that is
    not XML (the SDK does not keep it; the adapter asks the root again to learn it).
    """
    if isinstance(e, ConfigError):
        raise e
    if isinstance(e, ovirtsdk4.Error) and _TLS_VERIFY.search(str(e)):
        return EngineError(f"{what}: cannot verify the TLS certificate of the engine at {url} "
                           f"({short(e)}); {ca_advice(url, ca_file)}")
    if not_xml(e):
        if status is None or 200 <= status < 300:   # the root answers again: a passing fault
            return EngineError(f"{what}: the engine at {url} answered with something that is "
                               f"not its API ({short(e)})", transient=True)
        return EngineError(f"{what}: {unavailable(status, url)}", code=status,
                           transient=status >= 500)
    if isinstance(e, ovirtsdk4.AuthError):
        code = e.code or 401
        if code == 403 or _says_permission(e):
            return EngineError(f"{what}: the engine refused it to {username!r} (HTTP {code}: "
                               f"{fault_text(e)}): {role}", code=code)
        return EngineError(
            f"{what}: the engine at {url} refused the session of {username!r} (HTTP {code}: "
            f"{fault_text(e)}). Check the user name and the password file.", code=code)
    text = str(e)
    if isinstance(e, ovirtsdk4.TimeoutError) or (
            type(e) is ovirtsdk4.Error and re.search(r"\b28, |timed out", text)):
        return EngineError(f"{what}: the engine at {url} did not answer within {timeout:g}s",
                           transient=True)
    if isinstance(e, ovirtsdk4.ConnectionError) or (
            type(e) is ovirtsdk4.Error and re.search(r"\b(6|7), |Failed to connect", text)):
        return EngineError(f"{what}: cannot reach the engine at {url}: {short(e)}",
                           transient=True)
    if isinstance(e, ovirtsdk4.NotFoundError):
        return EngineError(f"{what}: not found on the engine ({fault_text(e)})", code=404)
    if isinstance(e, ovirtsdk4.Error):
        code = getattr(e, "code", None)
        if code == 409:
            return ConflictError(f"{what}: the engine answered 409 conflict: {fault_text(e)}",
                                 code=409)
        if _says_permission(e):
            return EngineError(f"{what}: the engine refused it to {username!r} (HTTP "
                               f"{code or '?'}: {fault_text(e)}): {role}", code=code)
        transient = code is None or code >= 500
        return EngineError(f"{what}: the engine answered {code or 'an error'}: {fault_text(e)}",
                           code=code, transient=transient and code is not None)
    # Not an SDK error: its reader failed on the answer (e.g. the builtin Exception "Can't
    # move to next node" for a text node over 10,000,000 characters: engine-facts C.3).
    return EngineError(f"{what}: the engine's answer could not be read ({type(e).__name__}: "
                       f"{short(e)})", unreadable=True)


def _says_permission(e: BaseException) -> bool:
    text = fault_text(e).lower()
    return any(word in text for word in _PERMISSION_WORDS)


def fault_text(e: BaseException) -> str:
    """The engine's own words for a fault (its ``detail`` or ``reason``)."""
    fault = getattr(e, "fault", None)
    if fault is not None and (fault.detail or fault.reason):
        return str(fault.detail or fault.reason).strip()
    return short(e)


def short(e: BaseException) -> str:
    """One line of an exception's text, at most 300 characters, no password in it."""
    text = str(e).strip().replace("\n", " ")
    return re.sub(r"password=[^&\s]*", "password=***", text)[:300]
