"""Writes during the read: the listener a source tells what is final, and the rounds that apply
the safe changes (:mod:`syncd.early` decides which) while the read goes on.

One round at a time: a round starts when the read has announced enough that is new (every user,
or enough newly complete groups, never more than a twentieth of them: :func:`syncd.early.round_due`)
and the last round has ended, never on a timer. A round builds the partial snapshot, plans it
against the cache (loaded once, at the first round, and kept in step by the run's
:class:`Mirror`) and, on a full resync, against what was read of Identity Center, and applies
what is safe. When the read ends the run lets the round in flight land, starts no other, and
plans everything again from the whole read
(:meth:`EarlyWriter.patch_live`, :meth:`EarlyWriter.adjust_base` keep that plan the one a run
without early writes would have made, minus what landed).

With ``filters.users = "members"`` a round needs no ``users_read``: the users found so far
(``users_found``) are enough (:func:`syncd.early.partial_snapshot`). A userName or email that a
user found later shares goes to the user Identity Center holds (one created early among them),
in each round as in the final snapshot.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from syncd.applier import Applier
from syncd.changes import Action, Change
from syncd.early import (
    complete_groups,
    early_changes,
    loses_members,
    member_snapshot,
    partial_snapshot,
    round_due,
)
from syncd.grace import Grace
from syncd.live import LiveGroup, LiveState, LiveUser
from syncd.matching import match_live
from syncd.memberset import MemberSet
from syncd.mirror import Mirror
from syncd.model import Snapshot, SourceGroup, SourceUser, User
from syncd.normalise import Scope
from syncd.plan import Plan, count_changes, make_plan
from syncd.ports import CacheLike, Progress
from syncd.state import UNCHANGED, CacheState, Current
from syncd.target.scim import ScimTarget


class CurrentUsers(Mapping[str, Current]):
    """The snapshot's users as :meth:`Cache.load` compares them, made one at a time as it asks
    (a dict of 100k ``Current`` would only live for the length of the load)."""

    def __init__(self, users: Mapping[str, User]) -> None:
        self._users = users

    def __getitem__(self, source_id: str) -> Current:
        user = self._users[source_id]
        return Current(user.source_id, user.user_name, user.digest())

    def __iter__(self) -> Iterator[str]:
        return iter(self._users)

    def __len__(self) -> int:
        return len(self._users)


class ReadNotes:
    """The :class:`connectors.base.ReadListener` of a run: takes note of what the read announced.

    It only keeps references to the records the read will return anyway, and wakes the writer.
    """

    def __init__(self) -> None:
        self.users: Sequence[SourceUser] | None = None
        self.listed: Sequence[SourceGroup] | None = None
        self.read: dict[str, SourceGroup] = {}
        self.found: dict[str, SourceUser] = {}
        """Users announced one listing at a time (``users_found``), by id."""
        self.changed = asyncio.Event()

    def users_read(self, users: Sequence[SourceUser]) -> None:
        """Every user of the read."""
        self.users = users
        self.changed.set()

    def users_found(self, users: Sequence[SourceUser]) -> None:
        """Some users of the read, final (with ``filters.users = "members"``, a group listing's members)."""
        for user in users:
            self.found[user.id] = user
        self.changed.set()

    def groups_listed(self, groups: Sequence[SourceGroup]) -> None:
        """Every group of the read, members not yet known."""
        self.listed = list(groups)
        self.changed.set()

    def group_read(self, group: SourceGroup) -> None:
        """One group with its final members."""
        self.read[group.id] = group
        self.changed.set()

    def forget(self) -> None:
        """Let the read's records go (the final snapshot is built from the read itself)."""
        self.users, self.listed, self.read, self.found = None, None, {}, {}


async def _first(*waits: Any) -> None:
    """Wait until the first of ``waits`` (awaitables) is done; the others are left running or cancelled."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            if isinstance(task, asyncio.Task) and not task.done() and task not in waits:
                task.cancel()


class EarlyWriter:
    """Applies, round by round during the read, the changes :func:`syncd.early.early_changes` keeps."""

    def __init__(
        self,
        *,
        notes: ReadNotes,
        cache: CacheLike,
        target: ScimTarget,
        scope: Scope,
        grace: Grace,
        log: Any,
        stop: asyncio.Event,
        progress: Progress | None = None,
        live: asyncio.Future[LiveState] | None = None,
    ) -> None:
        self.notes = notes
        self.cache = cache
        self.target = target
        self.scope = scope
        self.grace = grace
        self.log = log
        self.stop = stop
        self.progress = progress
        self.live = live
        self.ended = asyncio.Event()
        self._halt = asyncio.Event()
        self.counts = count_changes([])
        self.errors: list[str] = []
        self.rounds = 0
        self.loaded: tuple[int, int] | None = None
        """Users and groups the cache held before the first early write (the guard's base)."""
        self.adopted = [0, 0]
        """Users and groups adopted by match (counted in the guard's base as a run without early writes would)."""
        self.failed: set[str] = set()
        """Source ids whose early create failed: the final pass does not send it again."""
        self.made_users: dict[str, str] = {}
        self.made_groups: dict[str, str] = {}
        self._state: CacheState | None = None
        self._mirror: Mirror | None = None
        self._complete: tuple[set[str], bool] = (set(), False)
        self._settled: set[str] = set()
        """Users no round needs to plan again (:meth:`_unsettled`), for the users announced as ``_settled_of``."""
        self._settled_of: Sequence[SourceUser] | None = None

    async def run(self) -> None:
        """Rounds until the read ends (:meth:`end`) or the run is asked to stop."""
        live: LiveState | None = None
        if self.live is not None:
            await _first(asyncio.shield(self.live), self.ended.wait())
            if not self.live.done() or self.live.cancelled() or self.live.exception() is not None:
                return  # the read ended first, or Identity Center's read failed (the run reports it)
            live = self.live.result()
        while not self.ended.is_set() and not self.stop.is_set():
            await _first(self.notes.changed.wait(), self.ended.wait(), self.stop.wait())
            if self.ended.is_set() or self.stop.is_set():
                return
            self.notes.changed.clear()
            await self._round(live)

    def end(self) -> None:
        """The read is over: let the round in flight finish and start no other."""
        self.ended.set()

    def halt(self) -> None:
        """Stop now (asked to stop, or the read failed): the writes in flight land, no other starts."""
        self._halt.set()
        self.ended.set()

    def explain(self, refusal: str) -> str:
        """The guard's refusal, saying what was written during the read."""
        if not any(self.counts.values()):
            return refusal
        return refusal.replace(
            "Nothing was changed.",
            "Nothing was removed (the creates and member adds sent while the source was read have landed).",
        )

    def release(self) -> None:
        """Drop the partial state (before the final snapshot is built)."""
        self._state = None
        self._mirror = None
        self.target.manager_id = None  # it held the early mirror, and so the early state
        self.notes.forget()
        if self.live is None:  # only a full resync's final plan needs to know what was made
            self.made_users, self.made_groups = {}, {}

    async def _round(self, live: LiveState | None) -> None:
        notes = self.notes
        every = notes.users is not None
        if notes.listed is None or not (every or self.scope.users == "members"):
            return  # with filters.users = "all" every user must be known: any may be kept
        complete = complete_groups((g.id for g in notes.listed), notes.read)
        last, last_every = self._complete
        due = round_due(len(notes.listed), len(last), len(complete), users_known=every and not last_every)
        if self.rounds and not due:
            return  # users found alone change nothing: they enter with their complete groups
        self._complete = (complete, every)
        announced = notes.users if notes.users is not None else list(notes.found.values())
        # A shared userName or email goes to the user Identity Center holds, as in the final snapshot;
        # the loaded state holds those the rounds created too.
        held = self._state.users.keys() if self._state is not None else self.cache.user_ids()
        snapshot = partial_snapshot(announced, notes.listed, notes.read, self.scope, every=every, prefer=held)
        del announced, held
        if self._state is None:
            # Lean: no payload (a round sends no update or removal), which for the users not
            # announced yet would be held until the read ends.
            # On a full resync, with the Identity Center ids it has read: one string per id.
            self._state = self.cache.load(current=CurrentUsers(snapshot.users), lean=True, targets=self.target.user_ids)
            self.loaded = (len(self._state.users), len(self._state.groups))
            self._mirror = Mirror(self.cache, self._state, snapshot.groups)
        state, mirror = self._state, self._mirror
        assert mirror is not None
        mirror.desired = snapshot.groups
        view = self._view(live, snapshot) if live is not None else None
        planned, planned_state = self._unsettled(snapshot, state, every)
        # Matched against the whole cache: a live object it holds for a settled user stays that user's.
        matches = match_live(planned, state, view) if view is not None else None
        # No removal: a round sends none (syncd.early), and every object not announced yet looks gone.
        plan = make_plan(planned, planned_state, view, grace=self.grace, matches=matches, removals=False)
        if every:
            sent_early = {c.source_id for c in plan.changes if c.action in (Action.CREATE_USER, Action.ADOPT_USER)}
            self._settled.update(sid for sid in planned.users if sid not in sent_early)
        planned_users = len(planned.users)
        del planned, planned_state
        every_user = every and self.scope.users != "members"
        changes = early_changes(plan.changes, state, snapshot, every_user=every_user)
        self.rounds += 1
        if not changes:
            return
        # Member adds go to groups that will exist and whose members are known: those this round
        # creates, and cached ones (on a full resync, with their member list read).
        creating = {c.source_id for c in changes if c.action is Action.CREATE_GROUP}

        def members_known(gid: str) -> bool:
            if gid in creating:
                return True
            if gid not in state.groups or loses_members(state, snapshot, gid, every_user=every_user):
                # Its create waits, or it is adopted this round (members read after the read), or
                # it loses a member in the final pass, whose PATCH its adds then share.
                return False
            if matches is None or view is None:
                return True
            found = matches.groups.get(gid)
            return found is not None and found.target_id in view.members

        known = {gid for gid in snapshot.groups if members_known(gid)}
        changes = [c for c in changes if c.action is not Action.ADD_MEMBERS or c.source_id in known]
        early = Plan(changes)
        self.log.info(
            "early.round",
            round=self.rounds,
            users=len(snapshot.users),
            planned_users=planned_users,
            groups=len(snapshot.groups),
            writes=len(early.writes),
        )
        if self.progress is not None:
            self.progress.planned(early)
        self.target.manager_id = mirror.user_target
        applier = Applier(
            self.target,
            mirror,
            member_snapshot(snapshot, known),
            self.log,
            self._halt,
            None,
            self.progress,
            adds_only=True,
        )
        try:
            await applier.apply(early, view)
        finally:
            for key, value in applier.counts.items():
                self.counts[key] += value
            self.errors.extend(applier.errors)
            self._landed(changes, snapshot, known, live)

    def _unsettled(self, snapshot: Snapshot, state: CacheState, every: bool) -> tuple[Snapshot, CacheState]:
        """The round's snapshot and cache without the users settled by earlier rounds: to plan.

        Settled: made by an earlier round, or (once every user is known) planned by one with
        nothing to send early (unchanged, or an update that waits for the final pass). A user's
        plan depends only on its record, its cache entry and its live object, and the rounds
        change none of them for such a user, so planning it again would give the same answer:
        100k digests and as many deactivations of the users left out, a round, otherwise. Both
        sides leave them out, so that a settled user does not look gone from the source.
        """
        if self._settled_of is not self.notes.users:
            # The users were announced again (every user, after some found): their records may differ.
            self._settled, self._settled_of = set(), self.notes.users
        skip = self._settled | self.made_users.keys() if every else self.made_users.keys()
        if not skip:
            return snapshot, state
        users = {sid: u for sid, u in snapshot.users.items() if sid not in skip}
        cached = {sid: c for sid, c in state.users.items() if sid not in skip}
        return Snapshot(users=users, groups=snapshot.groups), CacheState(
            cached, state.groups, state.members, state.emails
        )

    def _landed(self, changes: list[Change], snapshot: Snapshot, known: set[str], live: LiveState | None) -> None:
        """Note what the round made, so that later rounds and the final plan see it in Identity Center."""
        state = self._state
        assert state is not None
        for change in changes:
            if change.action is Action.CREATE_USER:
                cached = state.users.get(change.source_id)
                if cached is None:
                    self.failed.add(change.source_id)
                else:
                    self.made_users.setdefault(change.source_id, cached.target_id)
            elif change.action is Action.CREATE_GROUP:
                group = state.groups.get(change.source_id)
                if group is None:
                    self.failed.add(change.source_id)
                else:
                    self.made_groups.setdefault(change.source_id, group.target_id)
            elif change.action is Action.ADOPT_USER:
                self.adopted[0] += 1
            elif change.action is Action.ADOPT_GROUP:
                self.adopted[1] += 1
        if live is None:
            return
        # Memberships as they now are in Identity Center, for the groups this run knows the members of.
        for gid in known & snapshot.groups.keys():
            cached_group = state.groups.get(gid)
            members = self._mirror.by_group.get(gid) if self._mirror is not None else None
            if cached_group is None or not members:
                continue
            tids = {c.target_id for sid in members if (c := state.users.get(sid)) is not None}
            have = live.members.get(cached_group.target_id, frozenset())
            if not tids <= have:
                live.members[cached_group.target_id] = MemberSet(set(have) | tids)

    def _view(self, live: LiveState, snapshot: Snapshot) -> LiveState:
        """Identity Center as read, plus what earlier rounds made in it."""
        users = [
            LiveUser(tid, sid, snapshot.users[sid].user_name, same=snapshot.users[sid])
            for sid, tid in self.made_users.items()
            if sid in snapshot.users
        ]
        groups = [
            LiveGroup(tid, sid, snapshot.groups[sid].display_name)
            for sid, tid in self.made_groups.items()
            if sid in snapshot.groups
        ]
        return LiveState(users=[*live.users, *users], groups=[*live.groups, *groups], members=live.members)

    def patch_live(self, live: LiveState, state: CacheState, users: Mapping[str, User]) -> None:
        """Add to ``live`` what the early rounds made, as the final plan must see Identity Center.

        ``state`` is the cache loaded after them: a user whose record equals the final one is
        kept as a reference to it; any other as what was pushed.
        """
        for sid, tid in self.made_users.items():
            cached = state.users.get(sid)
            if cached is None:
                continue
            user = users.get(sid)
            if cached.digest == UNCHANGED and user is not None:
                live.users.append(LiveUser(tid, sid, user.user_name, same=user))
            else:
                live.users.append(LiveUser(tid, sid, cached.user_name, dict(cached.data)))
        for sid, tid in self.made_groups.items():
            cached_group = state.groups.get(sid)
            if cached_group is not None:
                live.groups.append(LiveGroup(tid, sid, cached_group.display_name))

    def adjust_base(self, plan: Plan, state: CacheState) -> None:
        """Make the guard's base what it was before the early writes: the percentages a run without
        them would have used (the cache as loaded then, plus every adoption, and the memberships
        that were there, not those this run added)."""
        if self.loaded is None:
            return
        users, groups = self.loaded
        plan.managed_users = users + self.adopted[0] + (plan.managed_users - len(state.users))
        plan.managed_groups = groups + self.adopted[1] + (plan.managed_groups - len(state.groups))
        plan.managed_memberships = max(0, plan.managed_memberships - self.counts["members_added"])

    def not_again(self, plan: Plan) -> None:
        """Leave out of the final plan the creates that failed early (they were sent once)."""
        if self.failed:
            plan.changes = [
                c
                for c in plan.changes
                if not (c.action in (Action.CREATE_USER, Action.CREATE_GROUP) and c.source_id in self.failed)
            ]
