"""Pairing source objects with live Identity Center objects, for a full resync.

Pure functions, no I/O. A full resync reads Identity Center (:mod:`syncd.live`), pairs each
source user and group with the live object syncd manages for it or one it may adopt
(:func:`match_live`, made once per run: the plan, the member read and the access plan share
the result), and reads the live memberships in source ids (:func:`live_by_group`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Protocol, TypeVar

from syncd.live import LiveGroup, LiveState, LiveUser
from syncd.memberset import MemberSet
from syncd.model import Snapshot
from syncd.state import CacheState


@dataclass(frozen=True, slots=True)
class Matches:
    """Source ids matched to live objects by a full resync (cached or adopted)."""

    users: Mapping[str, LiveUser]
    groups: Mapping[str, LiveGroup]
    adopted_users: frozenset[str]
    adopted_groups: frozenset[str]


class _LiveObject(Protocol):
    @property
    def target_id(self) -> str: ...
    @property
    def external_id(self) -> str | None: ...


class _Cached(Protocol):
    @property
    def target_id(self) -> str: ...


LiveT = TypeVar("LiveT", bound=_LiveObject)
WantedT = TypeVar("WantedT")


def _match_kind(
    wanted: Mapping[str, WantedT],
    wanted_name: Callable[[WantedT], str],
    cached: Mapping[str, _Cached],
    live: Iterable[LiveT],
    live_name: Callable[[LiveT], str],
) -> tuple[dict[str, LiveT], set[str]]:
    """Match one kind of object: ``wanted`` and ``cached`` by source id, ``live`` as read.

    Returns the matches by source id and the source ids that were adopted (not cached). Reads
    its inputs where they are (no copies of 100k-entry maps): only the cached ids are indexed.
    """
    owner = {c.target_id: sid for sid, c in cached.items()}
    matched: dict[str, LiveT] = {}
    free: list[LiveT] = []
    for obj in live:
        sid = owner.get(obj.target_id)
        if sid is None:
            free.append(obj)
        else:
            matched[sid] = obj
    del owner
    adopted: set[str] = set()
    if not free:
        return matched, adopted
    by_ext = {o.external_id: o for o in free if o.external_id}
    by_name = {live_name(o).casefold(): o for o in free}
    taken: set[str] = set()
    for sid, want in wanted.items():
        if sid in cached:
            continue
        candidate = by_ext.get(sid) or by_name.get(wanted_name(want).casefold())
        if candidate is not None and candidate.target_id not in taken:
            taken.add(candidate.target_id)
            matched[sid] = candidate
            adopted.add(sid)
    return matched, adopted


def match_live(snapshot: Snapshot, cache: CacheState, live: LiveState) -> Matches:
    """Pair each source user and group with its live Identity Center object, if any.

    Cached objects match by their recorded id. A source object not in the cache is adopted when
    a live object has its id as externalId, else (users) the same userName ignoring case, or
    (groups) the same displayName ignoring case; a live object already managed for another
    source id is never taken.
    """
    users, adopted_users = _match_kind(
        snapshot.users, lambda u: u.user_name, cache.users, live.users, lambda u: u.user_name
    )
    groups, adopted_groups = _match_kind(
        snapshot.groups, lambda g: g.display_name, cache.groups, live.groups, lambda g: g.display_name
    )
    return Matches(users, groups, frozenset(adopted_users), frozenset(adopted_groups))


def live_by_group(
    matches: Matches, live: LiveState, leave_out: AbstractSet[str] = frozenset()
) -> dict[str, AbstractSet[str]]:
    """Memberships present in Identity Center, by group, as source ids, for managed users and
    groups, without the users in ``leave_out``.

    A member that syncd does not manage (a user made by hand) is not listed, so it is never
    removed: syncd does not touch objects it does not own.
    """
    user_sid = {m.target_id: sid for sid, m in matches.users.items()}
    by_group: dict[str, AbstractSet[str]] = {}
    for gsid, group in matches.groups.items():
        members = [
            usid
            for member in live.members.get(group.target_id, ())
            if (usid := user_sid.get(member)) is not None and usid not in leave_out
        ]
        if members:
            by_group[gsid] = MemberSet(members)
    return by_group
