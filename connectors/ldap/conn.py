"""The LDAP seam: one small blocking interface to a directory server, and its ldap3 adapter.

The connector talks to a server only through :data:`Connect` and :class:`LdapConnection`;
tests put a fake behind the same two names (an Active Directory fake speaks AD's dialect
there). Everything here blocks: the connector calls it from a worker thread, never on the
event loop.

Values cross the seam raw, as the server sent them: attribute names as returned (AD's range
retrieval answers ``member;range=0-1499``, RFC 4511 §4.1.4 attribute options), every value as
bytes (``objectGUID`` is binary; text is UTF-8, RFC 4511 §4.1.2).

Why ldap3: it is pure Python (wheel ``py2.py3-none-any``, needing only pyasn1), so ``pip
install`` works on a fresh machine without OpenLDAP's headers or a compiler, which
python-ldap and bonsai both need. It has been quiet since 2.9.1 (2021) and, with pyasn1 ≥ 0.6.1,
warns about ``tagMap``/``typeMap`` on import (cannatag/ldap3#1159; harmless, the fix is merged
upstream but unreleased). It is used only in this module, so replacing it touches nothing else.
"""

from __future__ import annotations

import contextlib
import math
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import SecretStr


__all__ = ["Connect", "Endpoint", "Entry", "LdapConnection", "LdapFailure", "Page", "SearchScope", "open_ldap3"]

SearchScope = Literal["base", "one", "subtree"]
PAGED_RESULTS = "1.2.840.113556.1.4.319"  # RFC 2696 §2: the paged results control's OID

FailureKind = Literal["result", "unreachable", "tls", "timeout"]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where and how to connect: one server URL and the session settings that go with it."""

    url: str
    start_tls: bool = False
    ca_file: Path | None = None
    tls_verify: bool = True
    bind_dn: str | None = None
    password: SecretStr | None = field(default=None, repr=False)
    timeout: float = 30.0
    follow_referrals: bool = False


@dataclass(frozen=True, slots=True)
class Entry:
    """One search result entry: its DN and its attributes, each a list of raw values."""

    dn: str
    attributes: Mapping[str, Sequence[bytes]]


@dataclass(frozen=True, slots=True)
class Page:
    """One search response: entries, the paged-results cookie (empty when done, RFC 2696 §3)
    and the referrals the server sent instead of entries (continuation references, RFC 4511 §4.5.3,
    or a referral result, §4.1.10)."""

    entries: list[Entry]
    cookie: bytes = b""
    referrals: tuple[str, ...] = ()


class LdapFailure(Exception):
    """What came back instead of a result: an LDAP result code, or a network/TLS failure.

    ``kind``: ``result`` (the server answered with ``code``, e.g. 49 invalidCredentials, and its
    diagnostic ``message``), ``unreachable`` (no connection, or it was lost), ``tls`` (the
    certificate was refused), ``timeout``. Never carries the password.
    """

    def __init__(self, kind: FailureKind, detail: str, *, code: int | None = None, message: str = "") -> None:
        super().__init__(detail)
        self.kind: FailureKind = kind
        self.detail = detail
        self.code = code
        self.message = message


class LdapConnection(Protocol):
    """An open, bound connection."""

    def search(
        self,
        base: str,
        filter_: str,
        attributes: Sequence[str],
        *,
        scope: SearchScope = "subtree",
        page_size: int = 0,
        cookie: bytes = b"",
    ) -> Page:
        """One search request (one page of it when ``page_size`` > 0); raises LdapFailure."""
        ...

    def close(self) -> None:
        """Unbind and close the socket; never raises."""
        ...


Connect = Callable[[Endpoint], LdapConnection]
"""Open a connection to ``endpoint.url``, start TLS if asked, and bind; raises LdapFailure."""


# --- the ldap3 adapter ---------------------------------------------------------------------------


def open_ldap3(endpoint: Endpoint) -> LdapConnection:
    """The real :data:`Connect`: an ldap3 connection (SAFE_SYNC strategy, thread-safe)."""
    import ldap3  # imported here: only LDAP sources pay for it
    from ldap3.core import exceptions as lx

    tls = _tls(ldap3, endpoint)
    server = ldap3.Server(endpoint.url, tls=tls, get_info=ldap3.NONE, connect_timeout=endpoint.timeout)
    conn = ldap3.Connection(
        server,
        user=endpoint.bind_dn,
        password=endpoint.password.get_secret_value() if endpoint.password else None,
        client_strategy=ldap3.SAFE_SYNC,
        auto_bind=ldap3.AUTO_BIND_NONE,
        raise_exceptions=False,
        read_only=True,
        receive_timeout=max(1, math.ceil(endpoint.timeout)),  # ldap3 packs it as an integer (SO_RCVTIMEO)
        auto_referrals=endpoint.follow_referrals,
        check_names=False,
        return_empty_attributes=False,
    )
    try:
        conn.open()
        if endpoint.start_tls:
            conn.start_tls()
        ok, result, _, _ = conn.bind()
    except lx.LDAPException as exc:
        _close(conn)
        raise _failure(exc, lx) from None
    if not ok:
        _close(conn)
        raise _result_failure(result, "bind")
    return _Ldap3Connection(conn, endpoint.timeout, lx)


def _tls(ldap3: Any, endpoint: Endpoint) -> Any:
    """ldap3's Tls, but with Python's own certificate and host-name checks.

    ldap3's Tls turns checks off unless asked (``validate`` defaults to CERT_NONE) and checks host
    names itself after the handshake with ``ssl.match_hostname``, deprecated since Python 3.7 and
    gone in 3.12 (ldap3/core/tls.py). This one wraps the socket with ``check_hostname`` on, so the
    handshake itself refuses a certificate for another name.
    """

    class _VerifyingTls(ldap3.Tls):  # type: ignore[misc]
        def wrap_socket(self, connection: Any, do_handshake: bool = False) -> None:
            context = ssl.create_default_context(cafile=str(endpoint.ca_file) if endpoint.ca_file else None)
            if not endpoint.tls_verify:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            raw = connection.socket
            try:
                connection.socket = context.wrap_socket(
                    raw, server_hostname=connection.server.host, do_handshake_on_connect=do_handshake
                )
            except BaseException:
                raw.close()  # ldap3 leaves the plain socket open when wrapping fails
                raise

    return _VerifyingTls()


def _close(conn: Any) -> None:
    with contextlib.suppress(Exception):  # closing a connection that may already be broken
        conn.unbind()
    sock = getattr(conn, "socket", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.close()


def _failure(exc: Exception, lx: Any) -> LdapFailure:
    text = str(exc)
    if isinstance(exc, lx.LDAPCertificateError) or "mismatch, certificate is not valid for" in text:
        return LdapFailure("tls", "the server's certificate does not name the host in the URL")
    if isinstance(exc, lx.LDAPStartTLSError | lx.LDAPSocketOpenError) and (
        "ssl" in text.lower() or "certificate" in text.lower()
    ):
        return LdapFailure("tls", _ssl_reason(text))
    if isinstance(exc, lx.LDAPStartTLSError):
        return LdapFailure("tls", f"StartTLS failed ({text})")
    if isinstance(exc, lx.LDAPResponseTimeoutError):
        return LdapFailure("timeout", "the server did not answer in time")
    if isinstance(exc, lx.LDAPInvalidFilterError):
        return LdapFailure("result", f"the filter is not valid LDAP filter syntax ({text})", code=87)
    if isinstance(exc, lx.LDAPCommunicationError):
        return LdapFailure("unreachable", _socket_reason(text))
    return LdapFailure("unreachable", f"{type(exc).__name__}: {text}")


_PUNCTUATION = "()\"',"


def _ssl_reason(text: str) -> str:
    if "CERTIFICATE_VERIFY_FAILED" in text:
        why = text.split("certificate verify failed:", 1)[-1].split("(_ssl", 1)[0].strip()
        return f"the server's certificate is not trusted ({why or 'verify failed'})"
    return f"the TLS handshake failed ({text.strip(_PUNCTUATION)})"


def _socket_reason(text: str) -> str:
    for known, words in (
        ("Connection refused", "connection refused"),
        ("timed out", "connection timed out"),
        ("Name or service not known", "the host name does not resolve"),
        ("session terminated by server", "the server closed the connection"),
        ("Connection reset", "the connection was reset"),
        ("Broken pipe", "the connection was closed"),
    ):
        if known.lower() in text.lower():
            return words
    return text.strip(_PUNCTUATION) or "the connection failed"


def _result_failure(result: Mapping[str, Any] | None, operation: str) -> LdapFailure:
    result = result or {}
    code = result.get("result")
    name = str(result.get("description") or "error")
    message = str(result.get("message") or "")
    detail = f"{operation} answered {code} {name}" + (f": {message}" if message else "")
    return LdapFailure("result", detail, code=code if isinstance(code, int) else None, message=message)


_SCOPES = {"base": 0, "one": 1, "subtree": 2}  # RFC 4511 §4.5.1.2


class _Ldap3Connection:
    def __init__(self, conn: Any, timeout: float, lx: Any) -> None:
        self._conn = conn
        self._time_limit = max(1, int(timeout))
        self._lx = lx

    def search(
        self,
        base: str,
        filter_: str,
        attributes: Sequence[str],
        *,
        scope: SearchScope = "subtree",
        page_size: int = 0,
        cookie: bytes = b"",
    ) -> Page:
        try:
            _, result, response, _ = self._conn.search(
                base,
                filter_,
                search_scope=_SCOPES[scope],
                attributes=list(attributes) or ["1.1"],  # RFC 4511 §4.5.1.8: "1.1" asks for no attributes
                paged_size=page_size or None,
                paged_cookie=cookie or None,
                time_limit=self._time_limit,
            )
        except self._lx.LDAPException as exc:
            raise _failure(exc, self._lx) from None
        entries: list[Entry] = []
        referrals: list[str] = []
        for item in response or ():
            if item.get("type") == "searchResEntry":
                raw = item.get("raw_attributes") or {}
                entries.append(Entry(str(item["dn"]), {str(k): list(v) for k, v in raw.items()}))
            elif item.get("type") == "searchResRef":
                referrals.extend(str(uri) for uri in item.get("uri") or ())
        code = (result or {}).get("result")
        if code != 0:  # ldap3 also reports "not ok" for a search that found nothing
            if code == 10:  # referral (RFC 4511 §4.1.10): the base is elsewhere
                referrals.extend(str(uri) for uri in result.get("referrals") or ())
                return Page(entries, b"", tuple(referrals))
            raise _result_failure(result, "search")
        control = ((result or {}).get("controls") or {}).get(PAGED_RESULTS) or {}
        next_cookie = (control.get("value") or {}).get("cookie") or b""
        return Page(entries, bytes(next_cookie), tuple(referrals))

    def close(self) -> None:
        _close(self._conn)
