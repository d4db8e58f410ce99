"""The LDAP source: one read, full or incremental, on the connector kit's kept directory.

Incremental reads (``incremental = true``, the default) ask only for entries changed since the
last read, and merge them into the directory kept in ``SourceRead.state``:

* **Active Directory**: ``uSNChanged`` above the ``highestCommittedUSN`` the domain controller's
  rootDSE showed when the last read began ("Polling for changes using the USNChanged attribute",
  Microsoft Learn, Win32 AD DS docs). USNs belong to one DC: when the DC (``dsServiceName``) or
  its database (``invocationId``, new after a restore) is not the one the USN came from, the
  read is full.
* **OpenLDAP** (and any other server): ``modifyTimestamp`` (RFC 4512 §3.4.4) at or after the
  server's ``contextCSN`` when the last read began (its own clock: no skew to allow for); where the
  server keeps no contextCSN, the time the last read began less ``OVERLAP`` on our clock (the
  server's clock may be that much behind).

Neither shows deletions, nor an entry that stopped matching the filters; a full read every
``full_read_every`` (and on ``--full-resync``, or when the settings change) removes those.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from connectors.base import ReadContext
from connectors.kit.kept import KeptDirectory, resume, scope_digest
from connectors.kit.read import FullReadNeeded, assemble
from connectors.ldap.conn import Connect, open_ldap3
from connectors.ldap.read import (
    GROUP_WIDTH,
    USER_WIDTH,
    expired,
    group_from_kept,
    join_by_member_of,
    keep_groups,
    keep_users,
    read_groups,
    read_users,
    retry_pending,
    user_from_kept,
)
from connectors.ldap.session import Session
from connectors.ldap.settings import LdapSettings
from connectors.ldap.values import (
    dn_key,
    first_text,
    generalized_time,
    guid_text,
    to_generalized_time,
    under,
    values_of,
)
from syncd.errors import SourceError
from syncd.model import RequestStats, Skipped, SourceRead
from syncd.retry import Sleep


__all__ = ["OVERLAP", "LdapSource"]

log = structlog.get_logger(__name__)
OVERLAP = timedelta(minutes=5)
default_connect: Connect = open_ldap3  # the real server; a source built without a factory uses it
_SHAPE = {"preset", "user_base", "group_base", "user_filter", "group_filter", "disabled_filter"}
_SHAPE |= {"attributes", "nesting", "posix_groups"}


class LdapSource:
    """Reads users, groups and memberships from an LDAP directory or Active Directory.

    ``stats`` counts LDAP operations (binds and search requests, a page each) by LDAP result
    code: 0 success, 49 invalidCredentials... (RFC 4511 Appendix A), 81 when no answer came
    (the C API's LDAP_SERVER_DOWN).
    """

    def __init__(
        self,
        settings: LdapSettings,
        connect: Connect | None = None,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Sleep | None = None,
    ) -> None:
        self.settings = settings
        self._connect = connect
        self._clock = clock
        self._sleep = sleep
        self.stats = RequestStats()

    async def aclose(self) -> None:
        """Nothing is kept open between reads."""

    def _digest(self, ctx: ReadContext) -> str:
        # Everything that decides which entries are read and how they are taken (not where from:
        # the URLs are replicas of one directory; AD's per-DC USNs are checked on their own).
        return scope_digest(ctx.scope, **self.settings.model_dump(mode="json", include=_SHAPE))

    async def read(self, ctx: ReadContext) -> SourceRead:
        """Read the directory; any failure raises SourceError before anything is returned."""
        s = self.settings
        digest = self._digest(ctx)
        started = self._clock()
        kept, why = resume(ctx, digest, started, s.full_read_every, user_width=USER_WIDTH, group_width=GROUP_WIDTH)
        if not s.incremental:
            kept, why = None, "incremental = false"
        session = Session(s, self._connect or default_connect, self.stats, sleep=self._sleep)
        skipped: list[Skipped] = []
        await session.open()
        try:
            marks = await self._marks(session, started)
            directory: KeptDirectory | None = None
            if kept is not None:
                try:
                    directory = await self._incremental(session, kept, marks, skipped)
                except FullReadNeeded as exc:
                    why, skipped = str(exc), []
            if directory is None:
                log.info("ldap.read", mode="full", why=why)
                directory = await self._full(session, digest, started, marks, skipped)
        finally:
            await session.close()
        names_by_dn = {dn_key(p[0]): p[1] for p in directory.users.values() if p[1]}
        now = self._clock()  # an account may have expired since the last read with no change to its entry
        read = assemble(
            directory,
            user=lambda uid, packed: user_from_kept(uid, packed, names_by_dn, now),
            group=group_from_kept,
            skipped=skipped,
            requests=session.requests,
        )
        log.info(
            "ldap.read_done",
            users=len(read.users),
            groups=len(read.groups),
            skipped=len(read.skipped),
            expired=sum(expired(p, now) for p in directory.users.values()),
            requests=read.requests,
            referrals_not_followed=session.referrals,
        )
        return read

    async def _marks(self, session: Session, started: float) -> dict[str, Any]:
        """Where this read starts, for the next one: the DC's USN (AD) or the time (others)."""
        if self.settings.preset != "ad":
            csn = await self._context_csn(session)
            if csn is not None:
                return {"since": to_generalized_time(csn)}
            return {"since": to_generalized_time(datetime.fromtimestamp(started, UTC) - OVERLAP)}
        found = await session.search(
            "", "(objectClass=*)", ["highestCommittedUSN", "dsServiceName"], scope="base", what="the rootDSE"
        )
        usn = first_text(found[0], "highestCommittedUSN") if found else None
        service = first_text(found[0], "dsServiceName") if found else None
        if not usn or not usn.isdigit() or not service:
            return {}  # not a DC after all: the next read is full
        invocation = ""
        dc = await session.search(service, "(objectClass=*)", ["invocationId"], scope="base", what="the DC")
        raw = values_of(dc[0], "invocationId") if dc else ()
        if raw and len(raw[0]) == 16:
            invocation = guid_text(raw[0])
        return {"usn": int(usn), "dc": service, "invocation": invocation}

    async def _context_csn(self, session: Session) -> datetime | None:
        """The server's own time of its last write before this read: the ``contextCSN`` of the
        naming context holding the bases (kept by the syncprov overlay, slapo-syncprov(5); the
        same clock stamps ``modifyTimestamp``), or None where the server keeps none.

        With several providers there is one value per server id; the oldest is taken, so a change
        from any of them not yet replicated here is still ahead of it.
        """
        try:
            (root,) = await session.search("", "(objectClass=*)", ["namingContexts"], scope="base", what="the rootDSE")
        except (SourceError, ValueError):
            return None
        bases = [*self.settings.user_base, *self.settings.group_base]
        times: list[datetime] = []
        for raw in values_of(root, "namingContexts"):
            context = raw.decode("utf-8", errors="replace")
            if not context or not all(under(base, [context]) for base in bases):
                continue
            try:
                found = await session.search(
                    context, "(objectClass=*)", ["contextCSN"], scope="base", what="contextCSN"
                )
            except SourceError:
                return None
            for value in values_of(found[0], "contextCSN") if found else ():
                moment = generalized_time(value.decode("ascii", errors="replace").split("#", 1)[0])
                if moment is not None:
                    times.append(moment)
        return min(times) if times else None

    def _change_filter(self, kept: KeptDirectory, marks: dict[str, Any]) -> str:
        previous = kept.marks
        if self.settings.preset == "ad":
            if "usn" not in previous or "usn" not in marks:
                raise FullReadNeeded("the last read kept no USN from the domain controller")
            if (previous.get("dc"), previous.get("invocation")) != (marks["dc"], marks["invocation"]):
                raise FullReadNeeded(
                    "connected to another domain controller (or one restored from backup) than the last read; "
                    "USNs belong to one DC"
                )
            return f"(uSNChanged>={int(previous['usn']) + 1})"
        if "since" not in previous:
            raise FullReadNeeded("the last read kept no change time")
        return f"(modifyTimestamp>={previous['since']})"

    async def _full(
        self, session: Session, digest: str, started: float, marks: dict[str, Any], skipped: list[Skipped]
    ) -> KeptDirectory:
        directory = KeptDirectory(scope=digest, last_full_read=started, marks=marks)
        keep_users(directory, await read_users(session, self.settings), skipped)
        await keep_groups(session, self.settings, directory, await read_groups(session, self.settings), skipped)
        return directory

    async def _incremental(
        self, session: Session, kept: KeptDirectory, marks: dict[str, Any], skipped: list[Skipped]
    ) -> KeptDirectory:
        changes = self._change_filter(kept, marks)
        log.info("ldap.read", mode="incremental", changed=changes)
        ad = self.settings.preset == "ad" and self.settings.nesting != "in_chain"
        changed = await read_users(session, self.settings, changes, member_of=ad)
        users = keep_users(kept, changed, skipped)
        if self.settings.nesting == "in_chain":
            # A change to a nested group does not touch the groups above it: read every group.
            records = await read_groups(session, self.settings)
        else:
            records = await read_groups(session, self.settings, changes)
        reread = {r.id for r in records if not isinstance(r, Skipped)}
        groups = await keep_groups(session, self.settings, kept, records, skipped)
        resolved = retry_pending(self.settings, kept, reread)
        if ad:
            resolved += join_by_member_of(kept, changed, reread)
        kept.marks = marks
        log.info("ldap.incremental", changed_users=users, reread_groups=groups, members_found_later=resolved)
        return kept
