"""The diff: from (source snapshot, cache[, live Identity Center]) to an ordered list of changes.

Pure functions, no I/O: the plan is a value that ``plan`` prints, ``--json`` counts, the guard
checks and the engine applies. Its steps are the typed changes of :mod:`syncd.changes`; a full
resync pairs source and live objects with :mod:`syncd.matching`.

Incremental runs trust the cache: an object whose digest equals the cached one needs no write,
so a run with no source change plans nothing. A full resync also takes the live state read from
Identity Center and reconciles against it: it adopts existing objects that match a source object
(externalId, then userName case-insensitively; groups by externalId, then displayName), repairs
drift (attributes edited, memberships removed or objects deleted by hand), and leaves every object
it does not own alone.

Objects gone from the source are deleted in two steps when ``safety.delete_after`` is set
(:mod:`syncd.grace`): a user is deactivated and a group emptied now, each deleted once the grace
period is over; one that comes back is updated in place. The time of the plan is passed in.

Order of application (``Phase``): adoptions and cache-only records → users → groups → member
adds → member removes → group deletes → user deletes. Renames are updates in place, never a
delete and a create, so Identity Center ids (and the account assignments that point at them)
survive.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any

from syncd.changes import Action, Change, GroupChange, GroupRemoval, MemberChange, UserChange, UserRemoval, members_of
from syncd.grace import GROUP_RETURNED, NO_GRACE, RETURNED, Grace, Step
from syncd.live import LiveState
from syncd.matching import Matches, live_by_group, match_live
from syncd.model import Group, Snapshot, User
from syncd.state import UNCHANGED, CachedGroup, CachedUser, CacheState


MAX_MEMBER_CHANGES = 100
"""Identity Center takes at most 100 membership changes per PATCH, and 100 members on
CreateGroup [DG:patchgroup, DG:creategroup]; more is a 400 (slashdevops/idp-scim-sync#62)."""


# ---------------------------------------------------------------------------------------------
# The plan


@dataclass(slots=True, repr=False)
class Plan:
    """The ordered changes of one run, with what the guard and the summary need."""

    changes: list[Change] = field(default_factory=list)
    managed_users: int = 0
    managed_groups: int = 0
    managed_memberships: int = 0
    managed_access: int = 0
    access: Any = None
    """Who gains and loses what (a :class:`syncd.access.Impact`), when syncd manages access."""
    """What the guard's percentages are of: the objects syncd manages once this run's adoptions
    are counted, and the memberships of managed users in managed groups before the run."""

    def __repr__(self) -> str:
        """How many changes of each action, not the changes themselves.

        A plan may hold 100k changes, and Python builds whole reprs before it shortens them:
        ``asyncio.run`` does, for the task that returned a run's result, when it restores its
        SIGINT handler (CPython 3.11). A repr of every change took a minute and a gigabyte.
        """
        actions = Counter(str(c.action) for c in self.changes)
        listed = ", ".join(f"{action}={n}" for action, n in sorted(actions.items()))
        return (
            f"Plan({listed or 'no changes'}; managed_users={self.managed_users}, managed_groups={self.managed_groups})"
        )

    def __iter__(self) -> Iterator[Change]:
        return iter(self.changes)

    def __len__(self) -> int:
        return len(self.changes)

    @property
    def writes(self) -> list[Change]:
        """The changes that send a request to Identity Center."""
        return [c for c in self.changes if c.is_write]

    def counts(self) -> dict[str, int]:
        """Counts by kind, with the keys of ``sync --json``."""
        return count_changes(self.changes)


COUNT_KEYS = (
    "users_created",
    "users_updated",
    "users_deactivated",
    "users_deleted",
    "users_adopted",
    "groups_created",
    "groups_updated",
    "groups_deleted",
    "groups_adopted",
    "members_added",
    "members_removed",
    "assignments_created",
    "assignments_deleted",
    "permission_sets_created",
    "permission_sets_updated",
    "permission_sets_provisioned",
    "permission_sets_deleted",
    "application_assignments_created",
    "application_assignments_deleted",
)


_COUNT_KEY = {
    Action.CREATE_USER: "users_created",
    Action.UPDATE_USER: "users_updated",
    Action.DEACTIVATE_USER: "users_deactivated",
    Action.DELETE_USER: "users_deleted",
    Action.CREATE_GROUP: "groups_created",
    Action.UPDATE_GROUP: "groups_updated",
    Action.DELETE_GROUP: "groups_deleted",
    Action.CREATE_PERMISSION_SET: "permission_sets_created",
    Action.UPDATE_PERMISSION_SET: "permission_sets_updated",
    Action.PROVISION_PERMISSION_SET: "permission_sets_provisioned",
    Action.DELETE_PERMISSION_SET: "permission_sets_deleted",
    Action.CREATE_APPLICATION_ASSIGNMENT: "application_assignments_created",
    Action.DELETE_APPLICATION_ASSIGNMENT: "application_assignments_deleted",
    Action.CREATE_ASSIGNMENT: "assignments_created",
    Action.DELETE_ASSIGNMENT: "assignments_deleted",
}


def count_changes(changes: Iterable[Change]) -> dict[str, int]:
    """Count changes by kind; member changes count members, not requests."""
    counts = dict.fromkeys(COUNT_KEYS, 0)
    for change in changes:
        tally(counts, change)
    return counts


ADOPTED = "matched"
"""The reason of an adoption: a source object matched to one Identity Center already held (the
other ADOPT_* changes, "already current", only record a write an earlier run made)."""


def tally(counts: dict[str, int], change: Change) -> None:
    """Add one change to ``counts`` (as made by :func:`count_changes`).

    Adoptions count on their own (``users_adopted``, ``groups_adopted``): nothing was created.
    """
    if change.action in (Action.ADOPT_USER, Action.ADOPT_GROUP):
        if change.reason.startswith(ADOPTED):
            counts["users_adopted" if change.action is Action.ADOPT_USER else "groups_adopted"] += 1
        return
    if change.action in _COUNT_KEY:
        counts[_COUNT_KEY[change.action]] += 1
    if change.action in (Action.ADD_MEMBERS, Action.CREATE_GROUP):
        counts["members_added"] += len(members_of(change))
    elif change.action is Action.REMOVE_MEMBERS:
        counts["members_removed"] += len(members_of(change))


def _user_change(user: User, cached_data: Mapping[str, Any] | None, target_id: str, reason: str) -> UserChange:
    was_active = bool(cached_data.get("active", True)) if cached_data else True
    action = Action.DEACTIVATE_USER if was_active and not user.active else Action.UPDATE_USER
    if not reason:
        reason = _describe_user_diff(cached_data or {}, user.payload())
    return UserChange(action, user, target_id, before=cached_data, reason=reason)


def _describe_user_diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> str:
    fields = sorted(k for k in after.keys() | before.keys() if before.get(k) != after.get(k))
    if "userName" in fields:
        return f"renamed from {before.get('userName')!r}"
    return "changed: " + ", ".join(fields) if fields else "changed"


def _same_user(cached: CachedUser, user: User) -> bool:
    """True when what was last pushed is ``user`` (the cache may have compared them already)."""
    return cached.digest == UNCHANGED or cached.digest == user.digest()


def _claimed(names: Iterable[str]) -> set[str]:
    return {name.casefold() for name in names}


def _user_changes(
    snapshot: Snapshot, cache: CacheState, matches: Matches | None, grace: Grace, *, removals: bool = True
) -> tuple[list[Change], set[str]]:
    """User changes (with ``removals``, those of users gone from the source too), and the source
    ids of users being deleted."""
    changes: list[Change] = []
    deleting: set[str] = set()
    for sid in sorted(snapshot.users):
        user = snapshot.users[sid]
        cached = cache.users.get(sid)
        returned = cached is not None and cached.gone_since is not None
        if matches is None:
            if cached is None:
                changes.append(UserChange(Action.CREATE_USER, user))
            elif returned or not _same_user(cached, user):
                changes.append(_user_change(user, cached.data, cached.target_id, RETURNED if returned else ""))
            continue
        live = matches.users.get(sid)
        if live is None:
            reason = "drift: deleted in Identity Center by hand" if cached else ""
            changes.append(UserChange(Action.CREATE_USER, user, before=cached.data if cached else None, reason=reason))
            continue
        if sid in matches.adopted_users:
            changes.append(UserChange(Action.ADOPT_USER, user, live.target_id, before=live.data, reason="matched"))
        if returned or not live.holds(user):
            reason = RETURNED if returned else ""
            if not reason and cached and _same_user(cached, user):
                reason = "drift: edited in Identity Center"
            changes.append(_user_change(user, live.data, live.target_id, reason))
        elif cached is not None and not _same_user(cached, user):
            # Identity Center already holds the new state (an earlier run died after the write):
            # record it without writing again.
            changes.append(
                UserChange(Action.ADOPT_USER, user, live.target_id, before=live.data, reason="already current")
            )

    gone = sorted(cache.users.keys() - snapshot.users.keys()) if removals else []
    claimed = _claimed(u.user_name for u in snapshot.users.values()) if gone and grace.enabled else set()
    retiring = grace.retire_reason("deactivated") if gone and grace.enabled else ""  # one string for all
    for sid in gone:
        cached_user = cache.users[sid]
        if matches is not None and sid not in matches.users:
            changes.append(
                UserRemoval(
                    Action.FORGET_USER,
                    sid,
                    cached_user.target_id,
                    before=cached_user.data,
                    reason="gone from both sides",
                )
            )
            continue
        name_claimed = cached_user.user_name.casefold() in claimed
        step = grace.step(cached_user.gone_since, name_claimed=name_claimed)
        if step is Step.DELETE:
            deleting.add(sid)
            changes.append(
                UserRemoval(
                    Action.DELETE_USER,
                    sid,
                    cached_user.target_id,
                    before=cached_user.data,
                    reason=grace.delete_reason(cached_user.gone_since, name_claimed=name_claimed, kind="user"),
                    gone_since=cached_user.gone_since,
                )
            )
        elif step is Step.RETIRE or (matches is not None and matches.users[sid].data.get("active")):
            # First seen gone; or, on a full resync, reactivated by hand while pending deletion.
            changes.append(
                UserRemoval(
                    Action.DEACTIVATE_USER,
                    sid,
                    cached_user.target_id,
                    before=cached_user.data,
                    reason=retiring if step is Step.RETIRE else "drift: reactivated by hand while pending deletion",
                    gone_since=cached_user.gone_since or grace.now,
                )
            )
    return changes, deleting


def _group_changes(
    snapshot: Snapshot, cache: CacheState, matches: Matches | None, grace: Grace, *, removals: bool = True
) -> tuple[list[Change], set[str], dict[str, tuple[str, ...]]]:
    """Group changes (with ``removals``, those of groups gone from the source too), the source
    ids of groups being deleted, and members sent with creates."""
    changes: list[Change] = []
    deleting: set[str] = set()
    inline: dict[str, tuple[str, ...]] = {}

    def create(group: Group, before: CachedGroup | None, reason: str) -> None:
        members = tuple(sorted(group.members)[:MAX_MEMBER_CHANGES])
        inline[group.source_id] = members
        changes.append(
            GroupChange(
                Action.CREATE_GROUP,
                group,
                members=members,
                before=_group_before(before),
                reason=reason,
            )
        )

    for sid in sorted(snapshot.groups):
        group = snapshot.groups[sid]
        cached = cache.groups.get(sid)
        returned = cached is not None and cached.gone_since is not None
        if matches is None:
            if cached is None:
                create(group, None, "")
            elif returned or cached.digest != group.digest():
                if returned:
                    reason = GROUP_RETURNED
                elif cached.display_name != group.display_name:
                    reason = f"renamed from {cached.display_name!r}"
                else:
                    reason = "changed"
                changes.append(
                    GroupChange(
                        Action.UPDATE_GROUP,
                        group,
                        cached.target_id,
                        before=_group_before(cached),
                        reason=reason,
                    )
                )
            continue
        live = matches.groups.get(sid)
        if live is None:
            create(group, cached, "drift: deleted in Identity Center by hand" if cached else "")
            continue
        live_before = {"externalId": live.external_id, "displayName": live.display_name}
        if sid in matches.adopted_groups:
            changes.append(GroupChange(Action.ADOPT_GROUP, group, live.target_id, before=live_before, reason="matched"))
        if returned or live_before != group.payload():
            renamed = "renamed" if live.display_name != group.display_name else "changed"
            reason = GROUP_RETURNED if returned else renamed
            changes.append(GroupChange(Action.UPDATE_GROUP, group, live.target_id, before=live_before, reason=reason))
        elif cached is not None and cached.digest != group.digest():
            changes.append(
                GroupChange(Action.ADOPT_GROUP, group, live.target_id, before=live_before, reason="already current")
            )

    gone = sorted(cache.groups.keys() - snapshot.groups.keys()) if removals else []
    claimed = _claimed(g.display_name for g in snapshot.groups.values()) if gone and grace.enabled else set()
    retiring = grace.retire_reason("members removed") if gone and grace.enabled else ""  # one string for all
    for sid in gone:
        cached_group = cache.groups[sid]
        if matches is not None and sid not in matches.groups:
            changes.append(
                GroupRemoval(
                    Action.FORGET_GROUP,
                    sid,
                    cached_group.target_id,
                    before=_group_before(cached_group),
                    reason="gone from both sides",
                )
            )
            continue
        name_claimed = cached_group.display_name.casefold() in claimed
        step = grace.step(cached_group.gone_since, name_claimed=name_claimed)
        if step is Step.DELETE:
            deleting.add(sid)
            changes.append(
                GroupRemoval(
                    Action.DELETE_GROUP,
                    sid,
                    cached_group.target_id,
                    before=_group_before(cached_group),
                    reason=grace.delete_reason(cached_group.gone_since, name_claimed=name_claimed, kind="group"),
                    gone_since=cached_group.gone_since,
                )
            )
        elif step is Step.RETIRE:
            # Its members are removed by the member phase (it is not in the snapshot any more).
            changes.append(
                GroupRemoval(
                    Action.RETIRE_GROUP,
                    sid,
                    cached_group.target_id,
                    before=_group_before(cached_group),
                    reason=retiring,
                    gone_since=grace.now,
                )
            )
    return changes, deleting, inline


def _group_before(cached: CachedGroup | None) -> dict[str, Any] | None:
    if cached is None:
        return None
    return {"externalId": cached.source_id, "displayName": cached.display_name}


def membership_changes(
    snapshot: Snapshot,
    current: Iterable[tuple[str, str]] | Mapping[str, AbstractSet[str]],
    *,
    deleting_users: Iterable[str] = (),
    deleting_groups: Iterable[str] = (),
    removes: bool = True,
) -> list[MemberChange]:
    """Member adds and (with ``removes``) removes, batched at most 100 per change, adds before removes.

    ``current`` is what Identity Center holds now (cached pairs, or live ones on a full resync,
    plus members sent inline with group creates), as (group, user) pairs or as each group's
    members (read, never changed). Removes are skipped for users and groups that are being
    deleted: deleting them drops their memberships without a request of its own.
    """
    current_by_group = current if isinstance(current, Mapping) else _by_group(current)
    gone_users = set(deleting_users)
    gone_groups = set(deleting_groups)

    adds: list[MemberChange] = []
    removed: list[MemberChange] = []
    for gsid in sorted(snapshot.groups.keys() | current_by_group.keys() if removes else snapshot.groups.keys()):
        if gsid in gone_groups:
            continue
        group = snapshot.groups.get(gsid)
        desired = group.members if group is not None else frozenset()
        have = current_by_group.get(gsid, frozenset())
        if desired == have:
            continue
        for batch in _batches(sorted(desired - have)):
            adds.append(MemberChange(Action.ADD_MEMBERS, gsid, batch, group=group))
        if not removes:
            continue
        for batch in _batches(sorted(have - desired - gone_users)):
            removed.append(MemberChange(Action.REMOVE_MEMBERS, gsid, batch, group=group))
    return adds + removed


def _by_group(pairs: Iterable[tuple[str, str]]) -> dict[str, set[str]]:
    by_group: dict[str, set[str]] = defaultdict(set)
    for gsid, usid in pairs:
        by_group[gsid].add(usid)
    return by_group


def _batches(items: list[str]) -> Iterator[tuple[str, ...]]:
    for start in range(0, len(items), MAX_MEMBER_CHANGES):
        yield tuple(items[start : start + MAX_MEMBER_CHANGES])


def current_memberships(
    cache: CacheState, inline: Mapping[str, tuple[str, ...]], recreated_groups: Iterable[str] = ()
) -> dict[str, AbstractSet[str]]:
    """Memberships Identity Center will hold before the member phase, by group: the cached ones,
    minus those of groups that are recreated, plus the members sent inline with group creates.

    The cached sets are shared, not copied (half a million memberships for 100k users: copies
    are what a big directory's memory goes on); only groups with inline members get a new set.
    """
    by_group: dict[str, AbstractSet[str]] = dict(cache.members)
    for gsid in recreated_groups:
        by_group.pop(gsid, None)
    for gsid, members in inline.items():
        by_group[gsid] = by_group.get(gsid, frozenset()) | set(members)
    return by_group


def make_plan(
    snapshot: Snapshot,
    cache: CacheState,
    live: LiveState | None = None,
    *,
    grace: Grace = NO_GRACE,
    matches: Matches | None = None,
    removals: bool = True,
) -> Plan:
    """Decide every change of a run.

    Without ``live`` (an incremental run) the cache is trusted; with it (``--full-resync``)
    Identity Center's state is reconciled as this module's docstring describes. ``grace`` is
    ``safety.delete_after`` and the time of the plan (:mod:`syncd.grace`); by default objects
    gone from the source are deleted at once.

    ``removals=False`` plans no removal of any kind (no deactivation, delete, forget or member
    removal): for the rounds of writes during the read (:mod:`syncd.early`), which send none,
    and whose partial snapshot makes every object not announced yet look gone (a removal
    planned for each of them cost tens of MB at 100k users, only to be filtered out).
    """
    if matches is None and live is not None:
        matches = match_live(snapshot, cache, live)  # the run passes the ones it made reading ``live``
    user_changes, _ = _user_changes(snapshot, cache, matches, grace, removals=removals)
    group_changes, deleting_groups, inline = _group_changes(snapshot, cache, matches, grace, removals=removals)
    # A user gone from the source keeps its memberships: deleting it drops them, and while it
    # waits for its delete (deactivated) they come back with it if it returns.
    gone_users = cache.users.keys() - snapshot.users.keys()

    if matches is not None and live is not None:
        # A user that is recreated has no memberships in Identity Center any more.
        recreated_users = {c.source_id for c in user_changes if c.action is Action.CREATE_USER}
        by_group = live_by_group(matches, live, recreated_users)
        memberships = sum(len(m) for m in by_group.values())
        for gsid, inline_members in inline.items():
            by_group[gsid] = by_group.get(gsid, frozenset()) | set(inline_members)
        current: Mapping[str, AbstractSet[str]] = by_group
    else:
        memberships = sum(len(m) for m in cache.members.values())
        current = current_memberships(cache, inline)

    members = membership_changes(
        snapshot, current, deleting_users=gone_users, deleting_groups=deleting_groups, removes=removals
    )
    changes: list[Change] = [*user_changes, *group_changes, *members]
    changes.sort(key=lambda c: c.phase)
    return Plan(
        changes=changes,
        # Objects this run adopts are managed from now on: they count in the guard's base.
        managed_users=len(cache.users) + (len(matches.adopted_users) if matches else 0),
        managed_groups=len(cache.groups) + (len(matches.adopted_groups) if matches else 0),
        managed_memberships=memberships,
    )


def manager_waves(changes: Iterable[Change]) -> list[list[Change]]:
    """The users phase in waves, so that a manager created in this run exists before the users
    who name them: Identity Center's ``manager.value`` is the manager's Identity Center id, which
    a user created in the same wave could not know yet. Without managers created in this run
    (the usual case) there is one wave; a chain of new managers adds one wave per level, and a
    cycle of managers ends the chain where it closes.
    """
    changes = list(changes)
    created = {c.source_id for c in changes if c.action is Action.CREATE_USER}

    def manager_of(source_id: str) -> str | None:
        change = by_id.get(source_id)
        user = change.user if isinstance(change, UserChange) else None
        manager = dict(user.enterprise).get("manager") if user is not None and user.enterprise else None
        return manager if manager in created and manager != source_id else None

    by_id = {c.source_id: c for c in changes}
    depth: dict[str, int] = {}
    for change in changes:
        chain: list[str] = []
        current: str | None = change.source_id
        while current is not None and current not in depth and current not in chain:
            chain.append(current)
            current = manager_of(current)
        level = depth.get(current, -1) if current is not None else -1
        for source_id in reversed(chain):
            level += 1
            depth[source_id] = level
    waves: dict[int, list[Change]] = {}
    for change in changes:
        waves.setdefault(depth[change.source_id], []).append(change)
    return [waves[level] for level in sorted(waves)]
