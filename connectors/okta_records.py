"""Okta's records in syncd's terms: a user or group object packed for the kept directory, and
unpacked into the :class:`~syncd.model.SourceUser` / :class:`~syncd.model.SourceGroup` a read returns.

A user as kept in state: ``[login, email, firstName, lastName, displayName, status, enterprise|null]``.
A group as kept in state: ``[name, description, lastUpdated, lastMembershipUpdated, [member ids]]``.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from typing import Any

from connectors.kit import PackedGroup, PackedUser, shared
from syncd.model import NO_ATTRIBUTES, SkipKind, Skipped, SourceGroup, SourceUser
from syncd.normalise import Scope


USER_WIDTH, GROUP_WIDTH = 7, 5  # the packed records below

ACTIVE_STATUSES = frozenset({"ACTIVE", "RECOVERY", "LOCKED_OUT", "PASSWORD_EXPIRED"})
INACTIVE_STATUSES = frozenset({"SUSPENDED", "DEPROVISIONED"})
STAGED_STATUSES = frozenset({"STAGED", "PROVISIONED"})

# Okta profile property -> key of SourceUser.enterprise (model.ENTERPRISE_ATTRIBUTES).
ENTERPRISE_PROPERTIES = {
    "employeeNumber": "employee_number",
    "costCenter": "cost_center",
    "organization": "organization",
    "division": "division",
    "department": "department",
    "manager": "manager",
}
_OWN_VALUE = "employee_number"  # the enterprise value unique to each user; the others are shared()


def profile_text(value: Any) -> str | None:
    """A profile value as text (numbers as their digits); None for anything else."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def pack_user(raw: Any, where: str) -> tuple[str, PackedUser] | Skipped:
    """An Okta user object in compact form, or why it is skipped."""
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str) or not raw["id"]:
        return Skipped(SkipKind.USER, "?", f"a user record {where} has no id")
    profile = raw.get("profile")
    if not isinstance(profile, dict):
        return Skipped(SkipKind.USER, raw["id"], "the record has no profile")
    enterprise = {
        key: text if key == _OWN_VALUE else shared(text)
        for prop, key in ENTERPRISE_PROPERTIES.items()
        if (text := profile_text(profile.get(prop))) is not None
    }
    # One copy of an id for the whole read, however many member listings name the user (sys.intern):
    # half a million memberships at 100k users would otherwise hold as many strings.
    return sys.intern(raw["id"]), [
        profile_text(profile.get("login")),
        profile_text(profile.get("email")),
        profile_text(profile.get("firstName")),
        profile_text(profile.get("lastName")),
        profile_text(profile.get("displayName")),
        shared(profile_text(raw.get("status"))) or "",
        enterprise or None,
    ]


def reshare_user(packed: PackedUser) -> None:
    """A kept user as loaded from the state: its status and enterprise values (but the employee
    number) one copy again, as :func:`pack_user` shares them."""
    if isinstance(packed[5], str):
        packed[5] = shared(packed[5])
    enterprise = packed[6]
    if isinstance(enterprise, dict):
        for key, value in enterprise.items():
            if key != _OWN_VALUE and isinstance(value, str):
                enterprise[key] = shared(value)


def unpack_user(user_id: str, packed: PackedUser, include_staged: bool) -> SourceUser | Skipped:
    login, email, first, last, display, status, enterprise = packed
    if status in ACTIVE_STATUSES:
        active = True
    elif status in INACTIVE_STATUSES:
        active = False
    elif status in STAGED_STATUSES:
        if not include_staged:
            return Skipped(
                SkipKind.USER,
                user_id,
                f"Okta status {status}: not activated yet (include_staged = true syncs such users disabled)",
            )
        active = False
    else:
        return Skipped(SkipKind.USER, user_id, f"unknown Okta status {status!r}")
    return SourceUser(
        id=user_id,
        user_name=login,
        email=email,
        given_name=first,
        family_name=last,
        display_name=display,
        active=active,
        enterprise=enterprise or NO_ATTRIBUTES,  # the packed record's own mapping: no copy per user
    )


@dataclass(frozen=True, slots=True)
class GroupHead:
    """A group as the group listing shows it."""

    id: str
    name: str
    description: str | None
    type: str
    last_updated: str | None
    last_membership_updated: str | None


def parse_group(raw: Any) -> GroupHead | Skipped:
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str) or not raw["id"]:
        return Skipped(SkipKind.GROUP, "?", "a group record has no id")
    profile = raw.get("profile")
    name = profile_text(profile.get("name")) if isinstance(profile, dict) else None
    if not isinstance(profile, dict) or not name:
        return Skipped(SkipKind.GROUP, raw["id"], "the record has no profile.name")
    return GroupHead(
        id=raw["id"],
        name=name,
        description=profile_text(profile.get("description")),
        type=profile_text(raw.get("type")) or "",
        last_updated=profile_text(raw.get("lastUpdated")),
        last_membership_updated=profile_text(raw.get("lastMembershipUpdated")),
    )


_GLOB = re.compile(r"[*?\[]")


def synced(scope: Scope, group: GroupHead) -> bool:
    """Whether a group is synced. BUILT_IN ("Everyone", all users) needs a pattern naming it
    exactly, without wildcards, so that ``groups = ["*"]`` does not pull in the whole org."""
    if group.type == "BUILT_IN":
        return scope.groups is not None and any(
            not _GLOB.search(p) and p.casefold() == group.name.casefold() for p in scope.groups
        )
    return scope.wants_group(group.name)


def pack_group(group: GroupHead, members: list[str]) -> PackedGroup:
    return [group.name, group.description, group.last_updated, group.last_membership_updated, list(members)]


def unpack_group(group_id: str, packed: PackedGroup) -> SourceGroup:
    name, description, _, _, members = packed
    return SourceGroup(id=group_id, name=name, description=description, members=tuple(members))
