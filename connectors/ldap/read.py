"""The searches of a read, and what they leave in the kit's kept directory.

A full read searches, in order: the users under each ``user_base`` (one paged search per base),
those matching ``disabled_filter`` (only when set), the groups under each ``group_base``; then,
only for groups whose ``member`` came back as a range (AD, over 1,500 values), the rest of it;
with ``nesting = "in_chain"`` one search per group for its users, flattened by the DC.

An incremental read runs the same user and group searches with the change filter ANDed in
(``(uSNChanged>=N)`` or ``(modifyTimestamp>=T)``), so it reads only what changed; changed
groups have their members resolved again, and the members an earlier read could not resolve
(``pending``: a user who was outside the bases then) are tried again against the users now kept.

Kept records (``KeptDirectory``, :mod:`connectors.kit.kept`):

* user: ``[dn, userName, email, givenName, familyName, displayName, active, enterprise|None,
  manager DN, uid, expires]``: ``active`` as the entry said when read; ``expires`` AD's
  accountExpires in epoch seconds, or None (never, not AD, or unreadable). A kept user is handed
  on inactive once ``expires`` is at or before the source's clock, though the entry did not change
  (an account expires without a write, so ``uSNChanged`` does not move). State kept with another
  width (an earlier syncd's) is unusable, and the read after it is full.
* group: ``[dn, name, description, nested group ids, pending members, member user ids]``
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import structlog

from connectors.kit.kept import KeptDirectory
from connectors.ldap.records import (
    GroupRecord,
    Index,
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
from syncd.model import NO_ATTRIBUTES, Skipped, SourceGroup, SourceUser


__all__ = [
    "GROUP_WIDTH",
    "USER_WIDTH",
    "expired",
    "group_from_kept",
    "join_by_member_of",
    "keep_groups",
    "keep_users",
    "read_groups",
    "read_users",
    "retry_pending",
    "user_from_kept",
]

log = structlog.get_logger(__name__)
IN_CHAIN = "1.2.840.113556.1.4.1941"  # LDAP_MATCHING_RULE_IN_CHAIN (MS-ADTS §3.1.1.3.4.4)
USER_WIDTH = 11
_EXPIRES = 10  # where a packed user keeps its expiry: last, added after the first 10
GROUP_WIDTH = 6


async def read_users(
    session: Session, settings: LdapSettings, extra_filter: str = "", *, member_of: bool = False
) -> list[UserRecord | Skipped]:
    """Users under every user base (``extra_filter`` ANDed in: an incremental read's change filter;
    ``member_of``: also read AD's ``memberOf`` back-links)."""
    user_filter = settings.effective_user_filter
    wanted = f"(&{user_filter}{extra_filter})" if extra_filter else user_filter
    disabled: set[str] = set()
    if settings.disabled_filter:
        for base in settings.user_base:
            found = await session.search(
                base, f"(&{wanted}{settings.disabled_filter})", [], what="users matching disabled_filter"
            )
            disabled.update(dn_key(e.dn) for e in found)
    attributes = user_attributes(settings) + (["memberOf"] if member_of else [])
    frozen = frozenset(disabled)
    out: list[UserRecord | Skipped] = []
    seen: set[str] = set()
    for base in settings.user_base:
        for entry in await session.search(base, wanted, attributes, what=f"users under {base}"):
            if dn_key(entry.dn) not in seen:  # bases may overlap
                seen.add(dn_key(entry.dn))
                out.append(user_record(entry, settings, frozen))
    _log_unreadable(out)
    return out


def _log_unreadable(records: Iterable[UserRecord | Skipped]) -> None:
    """One event per attribute some users had a value of that could not be read (the DNs, not the values)."""
    dns_by_attribute: dict[str, list[str]] = {}
    for record in records:
        if isinstance(record, UserRecord):
            for name in record.unreadable:
                dns_by_attribute.setdefault(name, []).append(record.dn)
    for name, dns in dns_by_attribute.items():
        log.warning("ldap.value_unreadable", attribute=name, users=len(dns), first=dns[:5])


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


async def _in_chain_members(session: Session, settings: LdapSettings, group: GroupRecord) -> list[str]:
    """DNs of the users in ``group`` directly or through nested groups, as the DC computes them."""
    rule = f"(memberOf:{IN_CHAIN}:={escape_filter_value(group.dn)})"
    dns: list[str] = []
    for base in settings.user_base:
        found = await session.search(
            base, f"(&{settings.effective_user_filter}{rule})", [], what=f"the members of {group.dn}"
        )
        dns += [e.dn for e in found]
    return dns


def _pack_user(user: UserRecord) -> list[Any]:
    return [
        user.dn,
        user.user_name,
        user.email,
        user.given_name,
        user.family_name,
        user.display_name,
        user.active,
        user.enterprise or None,
        user.manager_dn,
        user.uid,
        user.expires,
    ]


def keep_users(kept: KeptDirectory, records: Iterable[UserRecord | Skipped], skipped: list[Skipped]) -> int:
    """Put users into ``kept`` (a renamed or moved user keeps its id); returns how many."""
    count = 0
    for record in records:
        if isinstance(record, Skipped):
            skipped.append(record)
            continue
        old = kept.users.get(record.id)
        if old is not None and dn_key(old[0]) != dn_key(record.dn):
            log.info("ldap.user_moved", id=record.id, old_dn=old[0], dn=record.dn)  # same id: an update
        kept.users[record.id] = _pack_user(record)
        count += 1
    return count


def _index(kept: KeptDirectory) -> Index:
    return Index(
        users_by_dn={dn_key(p[0]): uid for uid, p in kept.users.items()},
        groups_by_dn={dn_key(p[0]): gid for gid, p in kept.groups.items()},
        users_by_uid={str(p[9]).casefold(): uid for uid, p in kept.users.items() if p[9]},
    )


async def keep_groups(
    session: Session,
    settings: LdapSettings,
    kept: KeptDirectory,
    records: Iterable[GroupRecord | Skipped],
    skipped: list[Skipped],
) -> int:
    """Put groups into ``kept`` with their members resolved against the users kept; returns how many."""
    groups = []
    for record in records:
        if isinstance(record, Skipped):
            skipped.append(record)
        else:
            groups.append(record)
            kept.groups[record.id] = [record.dn, record.name, record.description, [], [], []]
    index = _index(kept)  # with the new groups, so that nested ones resolve
    totals = Resolution()
    for group in groups:
        if settings.nesting == "in_chain":
            group.member_dns = await _in_chain_members(session, settings, group)
        found = resolve_members(group.id, group.members, index, settings)
        kept.groups[group.id] = [group.dn, group.name, group.description, found.groups, found.pending, found.users]
        totals.outside += found.outside
        totals.unmatched += found.unmatched
    _log_ignored(totals)
    return len(groups)


def retry_pending(settings: LdapSettings, kept: KeptDirectory, skip: set[str]) -> int:
    """Resolve the pending members of kept groups (not in ``skip``) against the users kept now."""
    index = _index(kept)
    found_now = 0
    for group_id, packed in kept.groups.items():
        if group_id in skip or not packed[4]:
            continue
        found = Resolution(users=list(packed[5]), groups=list(packed[3]))
        before = len(found.users) + len(found.groups)
        resolve_members(group_id, packed[4], index, settings, found)
        found_now += len(found.users) + len(found.groups) - before
        kept.groups[group_id] = [*packed[:3], found.groups, found.pending, found.users]
    return found_now


def join_by_member_of(kept: KeptDirectory, records: Iterable[UserRecord | Skipped], skip: set[str]) -> int:
    """Add changed users to the kept groups their ``memberOf`` names (groups in ``skip`` were read again).

    On AD a user moved or renamed into a user base changes no group (``member`` is a link that
    follows the user, MS-ADTS §3.1.1.1.6), so the groups are not read again; the user's
    ``memberOf`` back-link says which groups hold them. Returns how many memberships were added.
    """
    groups_by_dn = {dn_key(p[0]): gid for gid, p in kept.groups.items() if gid not in skip}
    added = 0
    for record in records:
        if isinstance(record, Skipped):
            continue
        for group_dn in record.member_of:
            group_id = groups_by_dn.get(dn_key(group_dn))
            if group_id is not None and record.id not in kept.groups[group_id][5]:
                kept.groups[group_id][5].append(record.id)
                added += 1
    return added


def _log_ignored(totals: Resolution) -> None:
    if totals.outside or totals.unmatched:
        log.info(
            "ldap.members_ignored",
            outside_bases=totals.outside,
            not_users=totals.unmatched,
            hint="members outside source.ldap.user_base/group_base, or not matching user_filter, are not synced",
        )


def expired(packed: list[Any], now: float) -> bool:
    """Whether a kept user's account has expired by ``now`` (epoch seconds)."""
    expires = packed[_EXPIRES]
    return isinstance(expires, int | float) and expires <= now


def user_from_kept(user_id: str, packed: list[Any], names_by_dn: dict[str, str], now: float) -> SourceUser:
    """A kept user as the engine takes it at ``now``: inactive once expired; the manager's DN becomes
    the manager's userName."""
    _, user_name, email, given, family, display, active, enterprise, manager_dn, _, _ = packed
    fields: Mapping[str, str] = enterprise or NO_ATTRIBUTES  # shared with the kept record unless a manager joins
    manager = names_by_dn.get(dn_key(manager_dn)) if manager_dn else None
    if manager:
        fields = {**fields, "manager": manager}
    return SourceUser(
        id=user_id,
        user_name=user_name,
        email=email,
        given_name=given,
        family_name=family,
        display_name=display,
        active=bool(active) and not expired(packed, now),
        enterprise=fields,
    )


def group_from_kept(group_id: str, packed: list[Any]) -> SourceGroup:
    """A kept group as the engine takes it: direct user members and nested group ids."""
    _, name, description, nested, _, members = packed
    return SourceGroup(id=group_id, name=name, description=description, members=tuple(members), groups=tuple(nested))
