"""Google Directory records into syncd's values: pure functions, no I/O.

Shapes from the Admin SDK Directory API reference ("Resource: User", "Resource: Group",
"Resource: Member"):

* a user's ``id`` is immutable (the externalId); ``primaryEmail`` is the userName;
  ``suspended`` or ``archived`` users are synced with ``active=false``; department and cost
  centre come from the primary ``organizations[]`` entry (its ``title`` has no place in
  Identity Center's enterprise extension), the employee number from the
  ``externalIds[]`` entry of type ``organization``, the manager from the ``relations[]`` entry
  of type ``manager`` (the manager's email);
* member rows have a ``type``: USER, GROUP, CUSTOMER ("everyone in the domain": the customer id,
  no email) or EXTERNAL. With ``includeDerivedMembership=true`` the rows of nested groups'
  users come *with* the GROUP rows and may repeat, so GROUP rows are dropped and users
  de-duplicated by id (slashdevops/idp-scim-sync ``internal/idp/idp.go``). A USER or EXTERNAL
  row whose id has no user record is someone from outside the domain.
"""

from __future__ import annotations

import sys
from collections.abc import Container, Mapping
from dataclasses import dataclass, field
from typing import Any

from connectors.kit import shared
from syncd.model import NO_ATTRIBUTES, SkipKind, Skipped, SourceUser
from syncd.normalise import Scope


__all__ = [
    "GROUP_FIELDS",
    "MEMBER_FIELDS",
    "USER_FIELDS",
    "GroupHead",
    "Members",
    "expand",
    "fold",
    "pack_user",
    "parse_group",
    "reshare_user",
    "sort_members",
    "unpack_user",
    "wanted",
]

# Partial responses ("Performance Tips: Partial response"): only what a read uses comes back.
USER_FIELDS = (
    "nextPageToken,users(id,etag,primaryEmail,name(givenName,familyName,fullName),suspended,archived,"
    "organizations(primary,department,costCenter),externalIds(value,type),relations(value,type))"
)
GROUP_FIELDS = "nextPageToken,groups(id,etag,email,name,description)"
MEMBER_FIELDS = "nextPageToken,members(id,email,type)"

PackedUser = list[Any]
"""[email, given, family, full name, active, enterprise or None, manager email or None, etag]."""

USER_WIDTH = 8


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _entries(raw: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    found = raw.get(key)
    return [e for e in found if isinstance(e, dict)] if isinstance(found, list) else []


def _typed(raw: Mapping[str, Any], key: str, kind: str) -> str | None:
    """The value of the first ``{value, type}`` entry of ``raw[key]`` whose type is ``kind``."""
    return next((_text(e.get("value")) for e in _entries(raw, key) if e.get("type") == kind), None)


_SHARED_ENTERPRISE = ("department", "cost_center")
"""The enterprise values many users repeat: one string each (:func:`connectors.kit.shared`)."""


def pack_user(raw: Any) -> tuple[str, PackedUser] | Skipped:
    """A user record in compact form, or why it is skipped."""
    if not isinstance(raw, dict) or not _text(raw.get("id")):
        return Skipped(SkipKind.USER, "?", "a user record has no id")
    user_id = sys.intern(raw["id"])  # one copy per user, however many member listings name it
    email = _text(raw.get("primaryEmail"))
    if email is None:
        return Skipped(SkipKind.USER, user_id, "the record has no primaryEmail")
    name = raw["name"] if isinstance(raw.get("name"), dict) else {}
    organizations = _entries(raw, "organizations")
    org = next((o for o in organizations if o.get("primary") is True), organizations[0] if organizations else {})
    enterprise = {
        key: shared(value) if key in _SHARED_ENTERPRISE else value
        for key, value in (
            ("department", _text(org.get("department"))),
            ("cost_center", _text(org.get("costCenter"))),
            (
                "employee_number",
                next(
                    (_text(e.get("value")) for e in _entries(raw, "externalIds") if e.get("type") == "organization"),
                    None,
                ),
            ),
        )
        if value is not None
    }
    # A manager's address: one copy however many reports name it.
    manager = shared(
        next((_text(r.get("value")) for r in _entries(raw, "relations") if r.get("type") == "manager"), None)
    )
    active = raw.get("suspended") is not True and raw.get("archived") is not True
    return user_id, [
        email,
        _text(name.get("givenName")),
        _text(name.get("familyName")),
        _text(name.get("fullName")),
        active,
        enterprise or None,
        manager,
        _text(raw.get("etag")),
    ]


def reshare_user(packed: PackedUser) -> None:
    """A kept user as loaded from the state: the values :func:`pack_user` shares one copy again."""
    enterprise = packed[5]
    if isinstance(enterprise, dict):
        for key in _SHARED_ENTERPRISE:
            if isinstance(enterprise.get(key), str):
                enterprise[key] = shared(enterprise[key])
    if isinstance(packed[6], str):
        packed[6] = shared(packed[6])


def fold(email: str) -> str:
    """``email`` casefolded, as managers are matched; the very string when it is folded already
    (most addresses are), so that a map of 100k folded emails holds no second copy of them."""
    folded = email.casefold()
    return email if folded == email else folded


def unpack_user(user_id: str, packed: PackedUser, managers: Mapping[str, str]) -> SourceUser:
    """The SourceUser of a packed user; ``managers`` maps a synced user's folded email to its id,
    so that the manager relation names the manager's id (left out when the manager is not synced)."""
    email, given, family, full, active, enterprise, manager, _ = packed
    attributes: Mapping[str, str] = enterprise or NO_ATTRIBUTES  # shared with the packed record unless a manager joins
    manager_id = managers.get(manager.casefold()) if isinstance(manager, str) else None
    if manager_id is not None:
        attributes = {**attributes, "manager": manager_id}
    return SourceUser(
        id=user_id,
        user_name=email,
        email=email,
        given_name=given,
        family_name=family,
        display_name=full,
        active=bool(active),
        enterprise=attributes,
    )


@dataclass(frozen=True, slots=True)
class GroupHead:
    """A group as the group listing shows it."""

    id: str
    email: str
    name: str
    description: str | None


def parse_group(raw: Any) -> GroupHead | Skipped:
    """A group record, or why it is skipped."""
    if not isinstance(raw, dict) or not _text(raw.get("id")):
        return Skipped(SkipKind.GROUP, "?", "a group record has no id")
    email = _text(raw.get("email"))
    if email is None:
        return Skipped(SkipKind.GROUP, raw["id"], "the record has no email")
    return GroupHead(raw["id"], email, _text(raw.get("name")) or email, _text(raw.get("description")))


def wanted(scope: Scope, group: GroupHead) -> bool:
    """Whether ``[filters] groups`` takes the group: a glob matching its name or its email."""
    return scope.wants_group(group.name, group.email)


@dataclass(slots=True)
class Members:
    """One member listing, sorted: users (unique, in order), nested groups, and what was dropped."""

    users: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    everyone: int = 0
    outsiders: int = 0
    unreadable: int = 0


def sort_members(rows: list[Any], known: Container[str]) -> Members:
    """Sort member rows: GROUP rows apart, users de-duplicated, CUSTOMER rows and members
    without a user record (from outside the domain) counted and dropped."""
    out = Members()
    seen: set[str] = set()
    for row in rows:
        member_id = row.get("id") if isinstance(row, dict) else None
        kind = row.get("type") if isinstance(row, dict) else None
        if not isinstance(member_id, str) or not member_id:
            out.unreadable += 1
        elif kind == "GROUP":
            if member_id not in out.groups:
                out.groups.append(member_id)
        elif kind == "CUSTOMER":
            out.everyone += 1
        elif member_id not in known:
            out.outsiders += 1  # an EXTERNAL row, or a USER row with no user record
        elif member_id not in seen:
            seen.add(member_id)
            out.users.append(sys.intern(member_id))  # the user record's own copy of the id
    return out


def expand(group_id: str, direct: Mapping[str, Members]) -> list[str]:
    """The users of ``group_id`` and of every group nested below it (visited set: cycle-safe),
    from each group's direct members; a nested group not in ``direct`` adds nothing."""
    users: list[str] = []
    seen_users: set[str] = set()
    visited: set[str] = set()
    stack = [group_id]
    while stack:
        current = stack.pop()
        if current in visited or current not in direct:
            continue
        visited.add(current)
        listing = direct[current]
        for user in listing.users:
            if user not in seen_users:
                seen_users.add(user)
                users.append(user)
        stack.extend(reversed(listing.groups))
    return users
