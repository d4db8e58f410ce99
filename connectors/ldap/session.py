"""One read's connection: failover across URLs, paged searches, range retrieval, all off the event loop.

Every call into the seam blocks, so each runs in a worker thread (``asyncio.to_thread``); the
searches of one read run one after another on one connection, as paged-results cookies are
bound to their connection (RFC 2696 §3).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import structlog

from connectors.ldap.advice import explain
from connectors.ldap.conn import Connect, Endpoint, Entry, LdapConnection, LdapFailure, SearchScope
from connectors.ldap.settings import LdapSettings
from connectors.ldap.values import ranged
from syncd.errors import SourceError
from syncd.model import RequestStats
from syncd.retry import Backoff, RetryPolicy, Sleep


__all__ = ["Session"]

log = structlog.get_logger(__name__)
RANGE_STEPS = 10_000  # range slices of one attribute before giving up (15 million values at AD's 1,500)
NO_ANSWER = 81  # LDAP_SERVER_DOWN in the C API (RFC 1823 §9): counted when no result came
TRANSIENT = frozenset({51, 52})  # busy, unavailable (RFC 4511 Appendix A.2): another try may work
# Connecting is retried when no server could be reached; a read already under way is not (its
# paged-results cookies belong to the connection that broke): it fails, and the next run reads again.
CONNECT_RETRY = RetryPolicy(attempts=3, backoff=Backoff(initial=2.0, maximum=30.0))


class _NoServer(SourceError):
    """No URL of ``source.ldap.url`` answered (or each was busy): worth another round."""


class Session:
    """A bound connection to the first server of ``source.ldap.url`` that answers.

    Every bind and search request is counted in ``stats`` by its LDAP result code.
    """

    def __init__(
        self,
        settings: LdapSettings,
        connect: Connect,
        stats: RequestStats | None = None,
        *,
        sleep: Sleep | None = None,
    ) -> None:
        self.settings = settings
        self._sleep = sleep
        self._connect = connect
        self._conn: LdapConnection | None = None
        self.url = settings.url[0]
        self.stats = stats if stats is not None else RequestStats()
        self._before = self.stats.total
        self.referrals = 0

    @property
    def requests(self) -> int:
        """Binds and search requests this session sent."""
        return self.stats.total - self._before

    def _count(self, operation: str, failure: LdapFailure | None = None) -> None:
        if failure is None:
            self.stats.count(operation, 0)
        else:
            self.stats.count(operation, failure.code if failure.kind == "result" and failure.code else NO_ANSWER)

    def _endpoint(self, url: str) -> Endpoint:
        s = self.settings
        return Endpoint(
            url=url,
            start_tls=s.start_tls,
            ca_file=s.ca_file,
            tls_verify=s.tls_verify,
            bind_dn=s.bind_dn,
            password=s.bind_password,
            timeout=s.timeout.total_seconds(),
            follow_referrals=s.follow_referrals,
        )

    async def open(self) -> None:
        """Connect and bind, trying each URL in turn while servers are unreachable or busy, and
        the whole list again (the retry policy's backoff) when none answered.

        A refused bind or a TLS failure ends it at once: another server of the same directory
        would refuse the same way (and each wrong password counts towards AD's lockout).
        """
        try:
            await CONNECT_RETRY.run(
                self._open_once,
                on=lambda exc: isinstance(exc, _NoServer),
                sleep=self._sleep,
                before_retry=lambda seconds, exc: log.warning("ldap.connect_retry", wait=seconds, reason=str(exc)),
            )
        except _NoServer as exc:
            raise SourceError(str(exc)) from None  # only the retry policy needs to tell it apart

    async def _open_once(self) -> None:
        if not self.settings.tls_verify:
            log.warning(
                "ldap.tls_verify_off",
                message="source.ldap.tls_verify = false: the server certificate is NOT checked; anyone on the "
                "network path can read the bind password and change what is synced",
            )
        last: SourceError | None = None
        for url in self.settings.url:
            self.url = url
            try:
                self._conn = await asyncio.to_thread(self._connect, self._endpoint(url))
            except LdapFailure as failure:
                self._count("BIND", failure)
                last = explain(failure, url, "connecting")
                if failure.kind in {"unreachable", "timeout"} or failure.code in TRANSIENT:
                    log.warning("ldap.server_unreachable", url=url, reason=failure.detail)
                    continue
                raise last from None
            self._count("BIND")
            log.info("ldap.connected", url=url)
            return
        assert last is not None
        raise _NoServer(str(last))

    async def close(self) -> None:
        """Unbind (never raises)."""
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await asyncio.to_thread(conn.close)

    async def search(
        self, base: str, filter_: str, attributes: Sequence[str], *, scope: SearchScope = "subtree", what: str
    ) -> list[Entry]:
        """Every entry of a search, a page of ``page_size`` at a time (RFC 2696); referrals counted, not chased."""
        assert self._conn is not None, "open() first"
        entries: list[Entry] = []
        cookie = b""
        seen: set[bytes] = set()
        page_size = self.settings.page_size if scope != "base" else 0
        while True:
            try:
                page = await asyncio.to_thread(
                    self._conn.search, base, filter_, attributes, scope=scope, page_size=page_size, cookie=cookie
                )
            except LdapFailure as failure:
                self._count("SEARCH", failure)
                raise explain(failure, self.url, f"reading {what}") from None
            self._count("SEARCH")
            entries.extend(page.entries)
            if page.referrals:
                self.referrals += len(page.referrals)
                log.info("ldap.referrals_not_followed", base=base, referrals=list(page.referrals))
            log.debug("ldap.page", what=what, base=base, entries=len(page.entries), more=bool(page.cookie))
            if not page.cookie:
                return entries
            if page.cookie in seen:
                raise SourceError(f"LDAP server {self.url} repeated a paged-results cookie reading {what}")
            seen.add(page.cookie)
            cookie = page.cookie

    async def all_values(self, entry: Entry, name: str, what: str) -> list[bytes]:
        """Every value of ``name``, fetching the rest when AD sent a range (MS-ADTS §3.1.1.3.1.3.3)."""
        values, low = ranged(entry.attributes, name)
        for _ in range(RANGE_STEPS):
            if low is None:
                return values
            (more,) = await self.search(
                entry.dn, "(objectClass=*)", [f"{name};range={low}-*"], scope="base", what=what
            ) or [Entry(entry.dn, {})]
            chunk, low = ranged(more.attributes, name)
            if not chunk and low is None:
                return values
            values.extend(chunk)
        raise SourceError(f"LDAP server {self.url}: {name} of {entry.dn} did not end after {RANGE_STEPS} ranges")
