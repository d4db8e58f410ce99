"""What went wrong, in plain words, and which ``source.ldap`` setting fixes it.

Bind refusals: LDAP result 49 invalidCredentials (RFC 4511 Appendix A.2). Active Directory puts
a sub-code in the diagnostic message, ``... AcceptSecurityContext error, data 52e, v4563``
(Microsoft, "Troubleshoot LDAP error 49 sub-codes" / MS-ERREF §2.2 Win32 error codes).
"""

from __future__ import annotations

import re

from connectors.ldap.conn import LdapFailure
from syncd.errors import SourceAuthError, SourceError


__all__ = ["AD_BIND_SUB_CODES", "explain"]

# Win32 error codes in hex, as AD writes them after "data" (MS-ERREF §2.2).
AD_BIND_SUB_CODES = {
    "525": "the account does not exist; check source.ldap.bind_dn",
    "52e": "the password is wrong; check source.ldap.bind_password",
    "530": "the account may not log on at this time (logon hours); allow the service account all hours",
    "531": "the account may not log on from this computer (logon workstations); allow it on the DC",
    "532": "the account's password has expired; set a new one and update source.ldap.bind_password",
    "533": "the account is disabled; enable the service account in Active Directory",
    "701": "the account has expired; extend the service account's expiry date",
    "773": "the account must change its password before it can bind; set a new one and update "
    "source.ldap.bind_password",
    "775": "the account is locked out (too many wrong passwords); unlock it, and check "
    "source.ldap.bind_password is right before the next run",
}
_SUB_CODE = re.compile(r"\bdata ([0-9a-fA-F]{3,8})\b")

# Result codes (RFC 4511 Appendix A.2) a read can end with, and what to do.
_RESULTS = {
    1: "the server refused the operation ({message}); check that the service account is bound "
    "(source.ldap.bind_dn and bind_password)",
    3: "the search took longer than the server's time limit; narrow source.ldap.user_base/group_base or "
    "user_filter/group_filter, or raise the server's limit",
    4: "the search returned more entries than the service account may read (sizeLimitExceeded); lower "
    "source.ldap.page_size or raise the account's size limit on the server (OpenLDAP: limits size.prtotal; "
    "AD: MaxPageSize)",
    11: "an administrative limit was exceeded (adminLimitExceeded); narrow source.ldap.user_filter/group_filter",
    32: "a search base does not exist ({message}); check source.ldap.user_base and group_base",
    34: "a search base is not a valid DN; check source.ldap.user_base and group_base",
    50: "the service account may not read there (insufficientAccessRights); grant it read access",
    51: "the server is busy; the next run tries again",
    52: "the server is unavailable; the next run tries again (list more servers in source.ldap.url)",
    53: "the server is unwilling to perform the search ({message})",
    87: "a filter is not valid LDAP filter syntax; check source.ldap.user_filter, group_filter and disabled_filter",
}


def explain(failure: LdapFailure, url: str, during: str) -> SourceError:
    """A SourceError (SourceAuthError for a refused bind) that says what happened and what to change."""
    where = f"LDAP server {url}"
    if failure.kind == "tls":
        return SourceError(
            f"{where}: TLS failed: {failure.detail}; set source.ldap.ca_file to the CA that signed the server's "
            "certificate (or fix the host name in source.ldap.url)"
        )
    if failure.kind == "unreachable":
        return SourceError(
            f"{where} could not be reached while {during} ({failure.detail}); nothing was written. Check "
            "source.ldap.url, and that the server is up"
        )
    if failure.kind == "timeout":
        return SourceError(f"{where} did not answer while {during} within source.ldap.timeout; nothing was written")
    if failure.code == 49:
        match = _SUB_CODE.search(failure.message)
        if match and match[1].lower() in AD_BIND_SUB_CODES:
            reason = AD_BIND_SUB_CODES[match[1].lower()]
            return SourceAuthError(f"{where} refused the bind (AD sub-code {match[1].lower()}): {reason}")
        return SourceAuthError(
            f"{where} refused the bind (invalidCredentials): the DN or password is wrong; check "
            "source.ldap.bind_dn and source.ldap.bind_password"
        )
    template = _RESULTS.get(failure.code or -1)
    if template:
        return SourceError(f"{where} while {during}: {template.format(message=failure.message or failure.detail)}")
    return SourceError(f"{where} while {during}: {failure.detail}")
