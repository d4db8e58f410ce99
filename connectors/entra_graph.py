"""Microsoft Graph's facts for the Entra connector, as pure functions and values.

* the properties read (``$select``) and how a user is kept and becomes a :class:`SourceUser`;
* :class:`GraphLimits`: ``Retry-After`` on 429, 503 and 504 (from :class:`Limits`), and slowing
  down once ``x-ms-throttle-limit-percentage`` passes 1.0 ("Microsoft Graph service-specific
  throttling limits", https://learn.microsoft.com/graph/throttling-limits);
* merging a groups delta round (``members@delta`` slices of one group spread over pages, in no
  particular order, replays included: "Get incremental changes for groups",
  https://learn.microsoft.com/graph/delta-query-groups);
* :class:`Nesting`: which group is a direct member of which, to find the synced groups a
  changed group is nested into (delta reports direct members only).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx2

from connectors.kit import Limits, PackedGroup, PackedUser, shared
from syncd.model import SkipKind, Skipped, SourceGroup, SourceUser


if TYPE_CHECKING:
    from connectors.entra_settings import EntraSettings

__all__ = [
    "GROUP_SELECT",
    "USER_SELECT",
    "GraphLimits",
    "GroupChange",
    "GroupChanges",
    "Nesting",
    "merge_group_changes",
    "pack_user",
    "reshare_user",
    "unpack_group",
    "unpack_user",
    "user_update",
]

# Kept in this order after the id; "List users": accountEnabled and userType need $select.
USER_FIELDS = (
    "userPrincipalName",
    "mail",
    "givenName",
    "surname",
    "displayName",
    "accountEnabled",
    "userType",
    "employeeId",
    "department",
    "jobTitle",
    "companyName",
)
USER_SELECT = ("id", *USER_FIELDS)
GROUP_SELECT = "displayName,description,members"
_MANAGER = len(USER_FIELDS)  # the packed user's last field: the manager's object id
_SHARED = frozenset({"userType", "department", "jobTitle", "companyName"})  # values many users repeat
_SHARED_AT = tuple(index for index, name in enumerate(USER_FIELDS) if name in _SHARED)


class GraphLimits(Limits):
    """Graph's throttling policy; see the module docstring.

    ``x-ms-throttle-limit-percentage`` is sent only above 80 % of the app's resource-unit budget
    for the tenant (per 10 s); past 1.0 the next request waits the share of the window that was
    overspent, so the budget refills instead of every listing meeting a 429.
    """

    window = 10.0

    def __init__(self) -> None:
        self.percentage = 0.0

    def observe(self, bucket: str, response: httpx2.Response) -> None:
        """Keep the latest throttle percentage (none sent: below 80 %)."""
        try:
            self.percentage = float(response.headers.get("x-ms-throttle-limit-percentage", "0"))
        except ValueError:
            self.percentage = 0.0

    def forget(self, bucket: str) -> None:
        """A retry wait already let the budget refill."""
        self.percentage = 0.0

    def pace(self, bucket: str, server_now: float, in_flight: int) -> tuple[float, str, dict[str, int]]:
        """Wait ``(percentage - 1) × 10 s`` once the budget is overspent."""
        if self.percentage <= 1.0:
            return 0.0, "", {}
        return (
            min(self.window, (self.percentage - 1.0) * self.window),
            "throttle limit passed",
            {"percent": round(self.percentage * 100)},
        )


# -- users ------------------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def pack_user(item: Any, previous: PackedUser | None) -> tuple[str, PackedUser] | Skipped:
    """A user record (a listing's or a delta entry's) merged over what was kept; fields the
    record does not carry keep their kept values (delta with ``return=minimal`` sends only changes)."""
    if not isinstance(item, dict) or not _text(item.get("id")):
        return Skipped(SkipKind.USER, "?", "a user record without an id")
    packed: PackedUser = list(previous) if previous is not None else [None] * (len(USER_FIELDS) + 1)
    for index, name in enumerate(USER_FIELDS):
        if name in item:
            value = item[name]
            if name == "accountEnabled":
                packed[index] = value
            else:
                packed[index] = shared(_text(value)) if name in _SHARED else _text(value)
    if "manager" in item:  # $expand=manager($select=id) on the listing
        manager = item["manager"]
        packed[_MANAGER] = _text(manager.get("id")) if isinstance(manager, dict) else None
    if "manager@delta" in item:  # the users delta with manager selected
        links = item["manager@delta"]
        current = [m for m in links if isinstance(m, dict) and "@removed" not in m] if isinstance(links, list) else []
        packed[_MANAGER] = _text(current[0].get("id")) if current else None
    if isinstance(packed[_MANAGER], str):
        packed[_MANAGER] = sys.intern(packed[_MANAGER])  # a user id: the manager's own, interned below
    return sys.intern(str(item["id"])), packed  # one copy per user, however many listings name it


def reshare_user(packed: PackedUser) -> None:
    """A kept user as loaded from the state: the values :func:`pack_user` shares one copy again."""
    for index in _SHARED_AT:
        if isinstance(packed[index], str):
            packed[index] = shared(packed[index])
    if isinstance(packed[_MANAGER], str):
        packed[_MANAGER] = sys.intern(packed[_MANAGER])


def user_update(entry: Any, kept: Mapping[str, PackedUser]) -> tuple[str, PackedUser | None] | Skipped:
    """A users delta entry: (id, the merged record), or (id, None) for an ``@removed`` user."""
    if isinstance(entry, dict) and "@removed" in entry and _text(entry.get("id")):
        return str(entry["id"]), None
    user_id = entry.get("id") if isinstance(entry, dict) else None
    return pack_user(entry, kept.get(user_id) if isinstance(user_id, str) else None)


def unpack_user(user_id: str, packed: PackedUser, settings: EntraSettings) -> SourceUser | Skipped:
    """A kept user as the engine wants it, or why it is left out."""
    upn, mail, given, surname, display, enabled, user_type, employee_id, department, _title, company, manager = packed
    guest = user_type == "Guest" or (isinstance(upn, str) and "#EXT#" in upn)
    if guest and not settings.include_guests:
        return Skipped(SkipKind.USER, user_id, "a guest (userType Guest); set include_guests = true to sync guests")
    attribute = "mail" if guest or settings.username_attribute == "mail" else "userPrincipalName"
    user_name = mail if attribute == "mail" else upn
    if not user_name:
        return Skipped(SkipKind.USER, user_id, f"the user has no {attribute}, which is its userName here")
    enterprise = {
        key: value
        for key, value in (
            ("employee_number", employee_id),
            ("department", department),
            ("organization", company),
            # The manager's object id, which is their source id: syncd sends their Identity Center id.
            ("manager", manager),
        )
        if value
    }
    return SourceUser(
        id=user_id,
        user_name=user_name,
        email=mail,
        given_name=given,
        family_name=surname,
        display_name=display,
        active=enabled is True,  # accountEnabled = false is a disabled user; unknown is not let in either
        enterprise=enterprise,
    )


def unpack_group(group_id: str, packed: PackedGroup) -> SourceGroup:
    """A kept synced group: name, description, and its transitive user members."""
    name, description, members = packed
    return SourceGroup(id=group_id, name=name, description=description, members=tuple(members))


# -- groups delta --------------------------------------------------------------------------------


@dataclass(slots=True)
class GroupChange:
    """One group's changes in a delta round: the properties sent, the direct members added and removed."""

    props: dict[str, Any] = field(default_factory=dict)
    added: dict[str, str] = field(default_factory=dict)  # member id -> its type ("user", "group", ...)
    removed: dict[str, str] = field(default_factory=dict)

    @property
    def members_changed(self) -> bool:
        """Whether any direct member came or went."""
        return bool(self.added or self.removed)


@dataclass(slots=True)
class GroupChanges:
    """A whole groups delta round, merged per group."""

    groups: dict[str, GroupChange] = field(default_factory=dict)
    removed: set[str] = field(default_factory=set)


def merge_group_changes(
    entries: Iterable[Any], into: GroupChanges | None = None, *, nesting_only: bool = False
) -> GroupChanges:
    """Merge the entries of a groups delta round (into ``into``, a page at a time): a group
    repeated on several pages, each with another slice of ``members@delta``, becomes one change;
    a member's last word counts. With ``nesting_only`` (a full read, whose user members come from
    the transitive listings) only the members that are groups are kept: 500k user memberships
    of a 100k-user org would be held for nothing."""
    out = into if into is not None else GroupChanges()
    for entry in entries:
        group_id = entry.get("id") if isinstance(entry, dict) else None
        if not isinstance(group_id, str) or not group_id:
            continue
        if "@removed" in entry:
            out.removed.add(group_id)
            out.groups.pop(group_id, None)
            continue
        change = out.groups.setdefault(group_id, GroupChange())
        change.props.update({k: v for k, v in entry.items() if k in {"displayName", "description"}})
        members = entry.get("members@delta")
        for member in members if isinstance(members, list) else ():
            member_id = member.get("id") if isinstance(member, dict) else None
            if not isinstance(member_id, str):
                continue
            kind = str(member.get("@odata.type", "")).removeprefix("#microsoft.graph.")
            if nesting_only and kind != "group":
                continue
            if "@removed" in member:
                change.added.pop(member_id, None)
                change.removed[member_id] = kind
            else:
                change.removed.pop(member_id, None)
                change.added[member_id] = kind
    return out


@dataclass(slots=True)
class Nesting:
    """Direct group-in-group membership: parent group id -> the ids of the groups directly in it."""

    children: dict[str, set[str]]

    @classmethod
    def load(cls, data: Any) -> Nesting:
        """From :meth:`dump`'s form; anything else is an empty graph."""
        if not isinstance(data, dict):
            return cls({})
        return cls({str(k): {str(c) for c in v} for k, v in data.items() if isinstance(v, list)})

    def dump(self) -> dict[str, list[str]]:
        """JSON: parents with at least one child, children sorted."""
        return {parent: sorted(kids) for parent, kids in sorted(self.children.items()) if kids}

    def apply(self, changes: GroupChanges) -> set[str]:
        """Apply a delta round's nesting changes; return the groups whose members changed
        (including the groups a deleted group was directly nested into)."""
        changed = {gid for gid, change in changes.groups.items() if change.members_changed}
        for group_id in changes.removed:
            self.children.pop(group_id, None)
            for parent, kids in self.children.items():
                if group_id in kids:
                    kids.discard(group_id)
                    changed.add(parent)
        for group_id, change in changes.groups.items():
            kids = self.children.setdefault(group_id, set())
            kids.difference_update(m for m, kind in change.removed.items() if kind == "group")
            kids.update(m for m, kind in change.added.items() if kind == "group")
        return changed

    def affected(self, changed: Iterable[str], synced: Iterable[str]) -> set[str]:
        """The synced groups that are, or transitively contain, a changed group (cycle-safe)."""
        parents: dict[str, set[str]] = {}
        for parent, kids in self.children.items():
            for kid in kids:
                parents.setdefault(kid, set()).add(parent)
        seen: set[str] = set()
        stack = list(changed)
        while stack:
            group_id = stack.pop()
            if group_id in seen:
                continue
            seen.add(group_id)
            stack.extend(parents.get(group_id, ()))
        return seen & set(synced)
