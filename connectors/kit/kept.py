"""The kept incremental directory: what an incremental connector carries from one read to the next.

An incremental read asks the provider only for what changed (a ``lastUpdated`` filter, a delta
link, a USN) and merges that into the directory the last read left in ``SourceRead.state``, so
every read it returns is complete. The parts:

* :class:`KeptDirectory`: users and groups in a compact, connector-defined form (a user is a
  list of fields; a group is a list of fields whose *last* item is its member ids), with the
  scope digest it was read with, when the last full read was, and the connector's own ``marks``
  (watermarks, delta links). :meth:`KeptDirectory.dump` writes user ids once and members as
  indexes into them: memberships dominate the size otherwise.
* :class:`Delta`: what one incremental read found (users and groups upserted or removed, member
  changes), applied with :meth:`KeptDirectory.apply`.
* :func:`resume`: the kept directory to build on, or why a full read is needed (asked for, no
  state, state unusable, scope changed, ``full_read_every`` passed) — one rule for every connector.
* :func:`scope_digest`: a short digest of what a read covers; when it changes, the next read is full.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.base import ReadContext
from syncd.normalise import Scope


__all__ = ["Delta", "KeptDirectory", "format_time", "parse_time", "resume", "scope_digest", "shared"]

STATE_VERSION = 1
_FIXED = frozenset({"version", "scope", "last_full_read", "ids", "users", "groups"})

PackedUser = list[Any]
"""A user as kept: the connector's fields, in its own order."""
PackedGroup = list[Any]
"""A group as kept: the connector's fields, then the list of member ids last."""


def shared(text: str | None) -> str | None:
    """A value many users repeat (a status, a department, a user type), one copy for the whole read.

    Each record of a JSON page carries its own copy of such strings: at 100k users a status and
    a department alone are ~11 MB held by the kept directory. ``sys.intern`` makes equal values
    one object; CPython drops an interned string once nothing else refers to it. Not for values
    unique to one user (names, e-mail addresses): those only grow the intern table.
    """
    return sys.intern(text) if text is not None else None


def format_time(epoch: float) -> str:
    """``yyyy-MM-ddTHH:mm:ss.SSSZ`` (UTC, milliseconds), as kept in state."""
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_time(text: str) -> float:
    """The epoch seconds of a :func:`format_time` string; ValueError otherwise."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def scope_digest(scope: Scope, **settings: Any) -> str:
    """16 hex digits naming the groups and users in scope and the ``settings`` that shape a read."""
    raw = json.dumps(
        {"groups": list(scope.groups) if scope.groups is not None else None, "users": scope.users, **settings},
        sort_keys=True,
    )
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


@dataclass(slots=True)
class Delta:
    """What an incremental read changed: applied in the order removals, upserts, member changes.

    ``members`` maps a kept group id to (ids added, ids removed), for providers that report
    membership changes (Graph's ``members@delta``); a group in ``groups`` gets its member list
    from there instead.
    """

    users: dict[str, PackedUser] = field(default_factory=dict)
    removed_users: set[str] = field(default_factory=set)
    groups: dict[str, PackedGroup] = field(default_factory=dict)
    removed_groups: set[str] = field(default_factory=set)
    members: dict[str, tuple[list[str], list[str]]] = field(default_factory=dict)

    def change_members(self, group_id: str, added: Iterable[str] = (), removed: Iterable[str] = ()) -> None:
        """Note member changes of one group; a group repeated across pages adds up."""
        have_added, have_removed = self.members.setdefault(group_id, ([], []))
        have_added.extend(added)
        have_removed.extend(removed)

    def __bool__(self) -> bool:
        return bool(self.users or self.removed_users or self.groups or self.removed_groups or self.members)


@dataclass(slots=True)
class KeptDirectory:
    """A directory kept between reads; see the module docstring.

    ``last_full_read``: our clock when the last full read ran. ``marks``: the connector's own
    JSON values (e.g. ``{"watermark": "2026-…Z"}``, a delta link), kept beside the directory
    (any name but ``version``, ``scope``, ``last_full_read``, ``ids``, ``users`` and ``groups``).
    """

    scope: str
    last_full_read: float
    marks: dict[str, Any] = field(default_factory=dict)
    users: dict[str, PackedUser] = field(default_factory=dict)
    groups: dict[str, PackedGroup] = field(default_factory=dict)

    def apply(self, delta: Delta) -> None:
        """Merge an incremental read's changes; removed users also leave every member list."""
        for user_id in delta.removed_users:
            self.users.pop(user_id, None)
        for group_id in delta.removed_groups:
            self.groups.pop(group_id, None)
        self.users.update(delta.users)
        self.groups.update(delta.groups)
        for group_id, (added, removed) in delta.members.items():
            packed = self.groups.get(group_id)
            if packed is None:
                continue
            gone = set(removed)
            members = [m for m in packed[-1] if m not in gone]
            present = set(members)
            for member in added:
                if member not in present:
                    present.add(member)
                    members.append(member)
            packed[-1] = members
        if delta.removed_users:
            for packed in self.groups.values():
                if any(m in delta.removed_users for m in packed[-1]):
                    packed[-1] = [m for m in packed[-1] if m not in delta.removed_users]

    def prune_users(self, keep: Iterable[str]) -> None:
        """Keep only the users in ``keep`` (e.g. members of synced groups)."""
        wanted = set(keep)
        self.users = {uid: packed for uid, packed in self.users.items() if uid in wanted}

    def member_ids(self) -> set[str]:
        """Every user id some kept group lists."""
        return {uid for packed in self.groups.values() for uid in packed[-1]}

    def dump(self) -> dict[str, Any]:
        """The JSON form: user ids once, in ``ids``; ``users`` parallel to its start; members as indexes."""
        ids = sorted(self.users)
        index = {user_id: i for i, user_id in enumerate(ids)}

        def ref(user_id: str) -> int:
            if user_id not in index:  # a member without a kept record (e.g. created mid-read)
                index[user_id] = len(ids)
                ids.append(user_id)
            return index[user_id]

        groups = {gid: [*packed[:-1], [ref(uid) for uid in packed[-1]]] for gid, packed in self.groups.items()}
        clash = _FIXED & self.marks.keys()
        if clash:
            raise ValueError(f"marks may not be named {', '.join(sorted(clash))}: the directory uses those keys")
        return {
            "version": STATE_VERSION,
            "scope": self.scope,
            "last_full_read": format_time(self.last_full_read),
            **self.marks,
            "ids": ids,
            "users": [self.users[user_id] for user_id in sorted(self.users)],
            "groups": groups,
        }

    @classmethod
    def load(
        cls,
        data: Mapping[str, Any],
        *,
        user_width: int,
        group_width: int,
        reshare: Callable[[PackedUser], None] | None = None,
    ) -> KeptDirectory:
        """Rebuild from state; raise ValueError when it is not what :meth:`dump` wrote.

        ``user_width`` and ``group_width`` are the lengths of the connector's packed records.
        ``reshare``: the connector's own pass over each loaded record, in place, making the values
        it :func:`shared` as it packed them one copy again (JSON decoding gives each record its own).
        """
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"state version {data.get('version')!r} is not {STATE_VERSION}")
        ids, users, groups = data.get("ids"), data.get("users"), data.get("groups")
        if not isinstance(ids, list) or not isinstance(users, list) or not isinstance(groups, dict):
            raise ValueError("state has no ids, users or groups")
        if len(users) > len(ids) or not all(isinstance(i, str) for i in ids):
            raise ValueError("the kept user ids are malformed")
        # Interned, as the connectors intern the ids they read: a user this read lists again (a
        # re-read group's members, a record whose etag stands) is named by this very string.
        ids = [sys.intern(i) for i in ids]
        kept_users: dict[str, PackedUser] = {}
        for user_id, packed in zip(ids, users, strict=False):
            if not isinstance(packed, list) or len(packed) != user_width:
                raise ValueError("a kept user is malformed")
            if reshare is not None:
                reshare(packed)
            kept_users[user_id] = packed  # the parsed state's own list: nothing else reads it
        kept_groups: dict[str, PackedGroup] = {}
        for group_id, packed in groups.items():
            if not isinstance(packed, list) or len(packed) != group_width or not isinstance(packed[-1], list):
                raise ValueError("a kept group is malformed")
            members = packed[-1]
            if not all(isinstance(i, int) and 0 <= i < len(ids) for i in members):
                raise ValueError("a kept group refers to unknown members")
            kept_groups[str(group_id)] = [*packed[:-1], [ids[i] for i in members]]
        return cls(
            scope=str(data.get("scope")),
            last_full_read=parse_time(str(data.get("last_full_read"))),
            marks={k: v for k, v in data.items() if k not in _FIXED},
            users=kept_users,
            groups=kept_groups,
        )


def resume(
    ctx: ReadContext,
    digest: str,
    now: float,
    full_read_every: timedelta | None,
    *,
    user_width: int,
    group_width: int,
    reshare: Callable[[PackedUser], None] | None = None,
) -> tuple[KeptDirectory | None, str]:
    """The kept directory to build on, or None and why a full read is needed (``reshare``: see
    :meth:`KeptDirectory.load`)."""
    if ctx.full:
        return None, "a full read was asked for"
    if not ctx.state:
        return None, "no state from an earlier run"
    try:
        previous = KeptDirectory.load(ctx.state, user_width=user_width, group_width=group_width, reshare=reshare)
    except (ValueError, TypeError) as exc:
        return None, f"the kept state is unusable ({exc})"
    if isinstance(ctx.state, MutableMapping):
        # Consumed: the directory holds what it needs of it, and the rest (500k member indexes at
        # 100k users) would otherwise be held beside it for the whole read.
        ctx.state.clear()
    if previous.scope != digest:
        return None, "the scope or settings changed since the last read"
    if full_read_every is not None and now - previous.last_full_read >= full_read_every.total_seconds():
        return None, "full_read_every has passed since the last full read"
    return previous, ""
