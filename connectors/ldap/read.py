"""A full read of the directory: users, the disabled among them, groups and their members.

Searches, in order: the users under each ``user_base`` (one paged search per base), those
matching ``disabled_filter`` (only when set), the groups under each ``group_base``; then, only
for groups whose ``member`` came back as a range (AD, over 1,500 values), the rest of it; with
``nesting = "in_chain"`` one search per group for its users, flattened by the DC.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import structlog

from connectors.ldap.records import (
    GroupRecord,
    Resolution,
    UserRecord,
    group_attributes,
    group_record,
    resolve_members,
    user_attributes,
    user_record,
)
from connectors.ldap.session import Session
from connectors.ldap.settings import LdapSettings
from connectors.ldap.values import dn_key, escape_filter_value
from syncd.model import Skipped


__all__ = ["Directory", "read_groups", "read_users", "resolve"]

log = structlog.get_logger(__name__)
IN_CHAIN = "1.2.840.113556.1.4.1941"  # LDAP_MATCHING_RULE_IN_CHAIN (MS-ADTS §3.1.1.3.4.4)


@dataclass(slots=True)
class Directory:
    """Users and groups by id, with groups' members resolved (user ids, nested group ids)."""

    users: dict[str, UserRecord] = field(default_factory=dict)
    groups: dict[str, GroupRecord] = field(default_factory=dict)
    members: dict[str, Resolution] = field(default_factory=dict)
    skipped: list[Skipped] = field(default_factory=list)


async def read_users(session: Session, settings: LdapSettings, extra_filter: str = "") -> list[UserRecord | Skipped]:
    """Users under every user base (``extra_filter`` ANDed in: an incremental read's change filter)."""
    user_filter = settings.effective_user_filter
    wanted = f"(&{user_filter}{extra_filter})" if extra_filter else user_filter
    disabled: set[str] = set()
    if settings.disabled_filter:
        for base in settings.user_base:
            found = await session.search(
                base, f"(&{wanted}{settings.disabled_filter})", [], what="users matching disabled_filter"
            )
            disabled.update(dn_key(e.dn) for e in found)
    attributes = user_attributes(settings)
    frozen = frozenset(disabled)
    out: list[UserRecord | Skipped] = []
    seen: set[str] = set()
    for base in settings.user_base:
        for entry in await session.search(base, wanted, attributes, what=f"users under {base}"):
            if dn_key(entry.dn) not in seen:  # bases may overlap
                seen.add(dn_key(entry.dn))
                out.append(user_record(entry, settings, frozen))
    return out


async def read_groups(session: Session, settings: LdapSettings, extra_filter: str = "") -> list[GroupRecord | Skipped]:
    """Groups under every group base, with every member value (AD ranges fetched)."""
    group_filter = settings.effective_group_filter
    wanted = f"(&{group_filter}{extra_filter})" if extra_filter else group_filter
    attributes = group_attributes(settings)
    out: list[GroupRecord | Skipped] = []
    seen: set[str] = set()
    for base in settings.group_base:
        for entry in await session.search(base, wanted, attributes, what=f"groups under {base}"):
            if dn_key(entry.dn) in seen:
                continue
            seen.add(dn_key(entry.dn))
            members: list[bytes] = []
            if settings.nesting != "in_chain":
                for name in settings.member_attributes:
                    members += await session.all_values(entry, name, f"the members of {entry.dn}")
            out.append(group_record(entry, settings, members))
    return out


async def in_chain_members(session: Session, settings: LdapSettings, group: GroupRecord) -> list[str]:
    """DNs of the users in ``group`` directly or through nested groups, as the DC computes them."""
    rule = f"(memberOf:{IN_CHAIN}:={escape_filter_value(group.dn)})"
    dns: list[str] = []
    for base in settings.user_base:
        found = await session.search(
            base, f"(&{settings.effective_user_filter}{rule})", [], what=f"the members of {group.dn}"
        )
        dns += [e.dn for e in found]
    return dns


async def resolve(session: Session, settings: LdapSettings, directory: Directory, group_ids: list[str]) -> None:
    """Resolve the members of ``group_ids`` into ``directory.members``; log what was left out."""
    users_by_dn = {dn_key(u.dn): u.id for u in directory.users.values()}
    groups_by_dn = {dn_key(g.dn): g.id for g in directory.groups.values()}
    users_by_uid = {u.uid.casefold(): u.id for u in directory.users.values() if u.uid}
    outside = unmatched = 0
    for group_id in group_ids:
        group = directory.groups[group_id]
        if settings.nesting == "in_chain":
            group.member_dns = await in_chain_members(session, settings, group)
        resolution = resolve_members(group, users_by_dn, groups_by_dn, users_by_uid, settings)
        directory.members[group_id] = resolution
        outside += resolution.outside
        unmatched += resolution.unmatched
    if outside or unmatched:
        log.info(
            "ldap.members_ignored",
            outside_bases=outside,
            not_users=unmatched,
            hint="members outside source.ldap.user_base/group_base, or not matching user_filter, are not synced",
        )


def keep(directory: Directory, records: list[UserRecord | Skipped] | list[GroupRecord | Skipped]) -> None:
    """Put read records into ``directory`` (a repeated id is skipped with a reason)."""
    for record in records:
        if isinstance(record, Skipped):
            directory.skipped.append(record)
        elif isinstance(record, UserRecord):
            if record.id in directory.users and dn_key(directory.users[record.id].dn) != dn_key(record.dn):
                directory.skipped.append(Skipped("user", record.id, f"{record.dn} repeats the id of another entry"))
                continue
            directory.users[record.id] = record
        else:
            if record.id in directory.groups and dn_key(directory.groups[record.id].dn) != dn_key(record.dn):
                directory.skipped.append(Skipped("group", record.id, f"{record.dn} repeats the id of another entry"))
                continue
            directory.groups[record.id] = record
