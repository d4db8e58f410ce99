"""The LDAP source: one read, full or incremental, turned into a ``SourceRead``."""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog

from connectors.base import ReadContext
from connectors.ldap.conn import Connect, open_ldap3
from connectors.ldap.read import Directory, keep, read_groups, read_users, resolve
from connectors.ldap.session import Session
from connectors.ldap.settings import LdapSettings
from connectors.ldap.values import dn_key
from syncd.model import SourceGroup, SourceRead, SourceUser


__all__ = ["LdapSource"]

log = structlog.get_logger(__name__)
default_connect: Connect = open_ldap3  # the real server; a source built without a factory uses it


class LdapSource:
    """Reads users, groups and memberships from an LDAP directory or Active Directory."""

    def __init__(
        self,
        settings: LdapSettings,
        connect: Connect | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._connect = connect
        self._clock = clock

    async def aclose(self) -> None:
        """Nothing is kept open between reads."""

    async def read(self, ctx: ReadContext) -> SourceRead:
        """Read the directory; any failure raises SourceError before anything is returned."""
        session = Session(self.settings, self._connect or default_connect)
        await session.open()
        try:
            directory = await self._full_read(session)
        finally:
            await session.close()
        read = assemble(directory)
        read.requests = session.counts.requests
        log.info(
            "ldap.read_done",
            mode="full",
            users=len(read.users),
            groups=len(read.groups),
            skipped=len(read.skipped),
            searches=session.counts.requests,
            referrals_not_followed=session.counts.referrals,
        )
        return read

    async def _full_read(self, session: Session) -> Directory:
        directory = Directory()
        keep(directory, await read_users(session, self.settings))
        keep(directory, await read_groups(session, self.settings))
        await resolve(session, self.settings, directory, list(directory.groups))
        return directory


def assemble(directory: Directory) -> SourceRead:
    """The directory as the engine takes it: users (manager DNs resolved to user names) and groups."""
    names_by_dn = {dn_key(u.dn): u.user_name for u in directory.users.values() if u.user_name}
    read = SourceRead(skipped=list(directory.skipped))
    for user_id in sorted(directory.users):
        user = directory.users[user_id]
        enterprise = dict(user.enterprise)
        manager = names_by_dn.get(dn_key(user.manager_dn)) if user.manager_dn else None
        if manager:
            enterprise["manager"] = manager
        read.users.append(
            SourceUser(
                id=user.id,
                user_name=user.user_name,
                email=user.email,
                given_name=user.given_name,
                family_name=user.family_name,
                display_name=user.display_name,
                active=user.active,
                enterprise=enterprise,
            )
        )
    for group_id in sorted(directory.groups):
        group = directory.groups[group_id]
        members = directory.members.get(group_id)
        read.groups.append(
            SourceGroup(
                id=group.id,
                name=group.name,
                description=group.description,
                members=tuple(members.users) if members else (),
                groups=tuple(members.groups) if members else (),
            )
        )
    return read
