"""The run's record of what landed: the cache and an in-memory index of ids and members, kept in step.

Every change the applier confirms goes through here, so the cache and the index never disagree.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import replace
from typing import Any

from syncd.changes import Action, Change, GroupChange, GroupRemoval, UserChange, UserRemoval
from syncd.live import LiveState
from syncd.model import Group, User, digest
from syncd.ports import CacheLike
from syncd.state import NO_DATA, AuditEntry, AuditKind, CachedGroup, CachedUser, CacheState


class Owners(Mapping[str, str]):
    """Identity Center id → source id of the cached users, indexed on first use (a full resync
    only asks when a live user names a manager)."""

    def __init__(self, state: CacheState) -> None:
        self._state = state
        self._index: dict[str, str] | None = None

    def _map(self) -> dict[str, str]:
        if self._index is None:
            self._index = {c.target_id: sid for sid, c in self._state.users.items()}
        return self._index

    def __getitem__(self, target_id: str) -> str:
        return self._map()[target_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._map())

    def __len__(self) -> int:
        return len(self._state.users)


class Mirror:
    """The cache, plus the run's in-memory copy of its state, kept equal as changes are recorded.

    The copy is the loaded :class:`CacheState` itself, changed in place: memberships stay one
    set per group (shared with the plan, so a set is replaced, never changed, once the plan
    may hold it; a group whose members reach what ``desired`` says holds the snapshot's own
    MemberSet), and the users a run deletes are indexed by group once, up front, so that
    forgetting one costs the size of its own memberships. Any other user dropped (recreated
    after a 404) is found by a scan of the groups, which is rare and cheap at 10k groups.
    """

    def __init__(self, cache: CacheLike, state: CacheState, desired: Mapping[str, Group]) -> None:
        self.cache = cache
        self.state = state
        self.desired = desired
        self.by_group = state.members
        self._groups_of: dict[str, list[str]] = {}
        self._user_owner: dict[str, str] | None = None
        self._group_owner = {c.target_id: sid for sid, c in state.groups.items()}

    def index_users(self, user_sids: AbstractSet[str]) -> None:
        """Index the groups of users the run will drop, in one pass over the memberships."""
        if not user_sids:
            return
        for group_sid, members in self.by_group.items():
            small, large = (user_sids, members) if len(user_sids) < len(members) else (members, user_sids)
            for user_sid in small:
                if user_sid in large:
                    self._groups_of.setdefault(user_sid, []).append(group_sid)

    def members_of(self, group_sid: str) -> set[str]:
        """The cached members of one group (a copy)."""
        return set(self.by_group.get(group_sid, ()))

    def _settle(self, group_sid: str, members: set[str]) -> None:
        """Hold the snapshot's MemberSet instead of ``members`` once they are equal (a run
        that creates 10k groups would otherwise end with 10k sets of its own)."""
        group = self.desired.get(group_sid)
        if group is not None and len(group.members) == len(members) and group.members == members:
            self.by_group[group_sid] = group.members

    def user_target(self, source_id: str) -> str | None:
        cached = self.state.users.get(source_id)
        return cached.target_id if cached else None

    def group_target(self, source_id: str) -> str | None:
        cached = self.state.groups.get(source_id)
        return cached.target_id if cached else None

    def owner_of_user(self, target_id: str) -> str | None:
        return self._user_owners().get(target_id)

    def owner_of_group(self, target_id: str) -> str | None:
        return self._group_owner.get(target_id)

    def user_by_target(self) -> Mapping[str, str]:
        """Identity Center user id → source id, for every managed user (a live view: read it, do
        not keep it across changes)."""
        return self._user_owners()

    def _user_owners(self) -> dict[str, str]:
        # Built when first asked (conflicts, full resyncs): most runs never need it.
        if self._user_owner is None:
            self._user_owner = {c.target_id: sid for sid, c in self.state.users.items()}
        return self._user_owner

    def put_user(self, user: CachedUser, audit: AuditEntry) -> None:
        previous = self.state.users.get(user.source_id)
        if previous is not None and previous.target_id != user.target_id:
            self.forget_memberships(user_source_id=user.source_id)
            if self._user_owner is not None:
                self._user_owner.pop(previous.target_id, None)
        self.cache.put_user(user, audit)
        # The payload and digest are what the next run's plan compares against, read from the
        # cache then; nothing in this run reads them again, so the copy in memory leaves them
        # out (100k created users would otherwise hold 100k payloads until the run ends).
        self.state.users[user.source_id] = replace(user, digest="", data=NO_DATA)
        self.state.emails.pop(user.source_id, None)  # it holds the email just pushed: the snapshot's
        if self._user_owner is not None:
            self._user_owner[user.target_id] = user.source_id

    def forget_user(self, source_id: str, audit: AuditEntry) -> None:
        self.cache.forget_user(source_id, audit)
        previous = self.state.users.pop(source_id, None)
        self.state.emails.pop(source_id, None)
        if previous is not None and self._user_owner is not None:
            self._user_owner.pop(previous.target_id, None)
        self._drop_user(source_id)

    def put_group(self, group: CachedGroup, audit: AuditEntry) -> None:
        previous = self.state.groups.get(group.source_id)
        if previous is not None and previous.target_id != group.target_id:
            self.forget_memberships(group_source_id=group.source_id)
            self._group_owner.pop(previous.target_id, None)
        self.cache.put_group(group, audit)
        self.state.groups[group.source_id] = group
        self._group_owner[group.target_id] = group.source_id

    def forget_group(self, source_id: str, audit: AuditEntry) -> None:
        self.cache.forget_group(source_id, audit)
        previous = self.state.groups.pop(source_id, None)
        if previous is not None:
            self._group_owner.pop(previous.target_id, None)
        self._drop_group(source_id)

    def add_members(self, group_sid: str, user_sids: list[str], audit: AuditEntry | None) -> None:
        self.cache.add_memberships(group_sid, user_sids, audit)
        members = self._mutable(group_sid)
        members.update(user_sids)
        self._settle(group_sid, members)

    def remove_members(self, group_sid: str, user_sids: list[str], audit: AuditEntry | None) -> None:
        self.cache.remove_memberships(group_sid, user_sids, audit)
        members = self._mutable(group_sid)
        members.difference_update(user_sids)
        self._settle(group_sid, members)

    def forget_memberships(self, *, group_source_id: str | None = None, user_source_id: str | None = None) -> None:
        self.cache.forget_memberships(group_source_id=group_source_id, user_source_id=user_source_id)
        if group_source_id is not None:
            self._drop_group(group_source_id)
        if user_source_id is not None:
            self._drop_user(user_source_id)

    def _mutable(self, group_sid: str) -> set[str]:
        """The group's set, as a set of the mirror's own: a set the plan read (a loaded
        MemberSet, or the snapshot's after :meth:`_settle`) is copied before it is changed."""
        members = self.by_group.get(group_sid)
        if not isinstance(members, _OwnSet):
            members = self.by_group[group_sid] = _OwnSet(members or ())
        return members

    def _drop_user(self, user_sid: str) -> None:
        groups = self._groups_of.pop(user_sid, None)
        if groups is None:
            groups = [g for g, members in self.by_group.items() if user_sid in members]
        for group_sid in groups:
            if user_sid in self.by_group.get(group_sid, ()):
                self._mutable(group_sid).discard(user_sid)

    def _drop_group(self, group_sid: str) -> None:
        self.by_group.pop(group_sid, None)

    def set_members(self, group_sid: str, user_sids: set[str]) -> None:
        """Make the cached members of a group exactly ``user_sids`` (what a full resync read)."""
        have = self.members_of(group_sid)
        if have - user_sids:
            self.remove_members(group_sid, sorted(have - user_sids), None)
        if user_sids - have:
            self.add_members(group_sid, sorted(user_sids - have), None)

    def record_only(self, change: Change) -> None:
        """Record a change that needs no request (an adoption, a record dropped or retired)."""
        before = dict(change.before) if change.before else None
        if change.action is Action.ADOPT_USER and isinstance(change, UserChange) and change.target_id:
            record = user_record(change.user, change.target_id, "adopted", before)
            self.put_user(
                record,
                AuditEntry(
                    Action.ADOPT_USER,
                    AuditKind.USER,
                    change.source_id,
                    change.target_id,
                    None,
                    before,
                    f"ok: {change.reason}",
                ),
            )
        elif change.action is Action.ADOPT_GROUP and isinstance(change, GroupChange) and change.target_id:
            record_g = group_record(change.group, change.target_id, "adopted", before)
            self.put_group(
                record_g,
                AuditEntry(
                    Action.ADOPT_GROUP,
                    AuditKind.GROUP,
                    change.source_id,
                    change.target_id,
                    None,
                    before,
                    f"ok: {change.reason}",
                ),
            )
        elif change.action is Action.FORGET_USER and isinstance(change, UserRemoval):
            self.forget_gone_user(change, "ok: gone from both sides")
        elif change.action is Action.RETIRE_GROUP:
            cached = self.state.groups.get(change.source_id)
            if cached is not None and isinstance(change, GroupRemoval):
                self.put_group(
                    replace(cached, gone_since=change.gone_since),
                    AuditEntry(
                        Action.RETIRE_GROUP,
                        AuditKind.GROUP,
                        change.source_id,
                        change.target_id,
                        before,
                        None,
                        f"ok: {change.reason}",
                    ),
                )
        elif change.action is Action.FORGET_GROUP:
            self.forget_group(
                change.source_id,
                AuditEntry(
                    Action.FORGET_GROUP,
                    AuditKind.GROUP,
                    change.source_id,
                    change.target_id,
                    before,
                    None,
                    "ok: gone from both sides",
                ),
            )

    def forget_gone_user(self, change: UserRemoval, result: str) -> None:
        """Drop the record of a user gone from the source and from Identity Center (``result`` says how)."""
        before = dict(change.before) if change.before else None
        audit = AuditEntry(Action.FORGET_USER, AuditKind.USER, change.source_id, change.target_id, before, None, result)
        self.forget_user(change.source_id, audit)

    def refresh_memberships(self, live: LiveState) -> None:
        """Make the cached memberships of managed groups what Identity Center really holds."""
        by_target = self.user_by_target()
        for gsid, cached in list(self.state.groups.items()):
            if cached.target_id not in live.members:
                continue
            present = {by_target[t] for t in live.members[cached.target_id] if t in by_target}
            self.set_members(gsid, present)

    def origin_user(self, source_id: str) -> Any:
        cached = self.state.users.get(source_id)
        return cached.origin if cached else "created"

    def create_answered(self, change: UserChange | GroupChange, after: dict[str, Any], result: str) -> None:
        """Audit a create of a user or group sent (before its answer), or answered with a conflict."""
        before = dict(change.before) if change.before else None
        kind, action = (
            (AuditKind.USER, Action.CREATE_USER)
            if isinstance(change, UserChange)
            else (AuditKind.GROUP, Action.CREATE_GROUP)
        )
        self.cache.record(AuditEntry(action, kind, change.source_id, None, before, after, result))

    def adopted_after_409(self, kind: AuditKind, source_id: str) -> str:
        """The audit result of an adoption after a 409, naming the earlier run that made the object."""
        run = self.cache.unanswered_create(kind, source_id)
        if run is None:
            return "ok: adopted after 409"
        return f"ok: adopted after 409; created by run {run}, which sent the create and stopped before its answer"

    def inline_members(self, group: Group) -> tuple[list[str], list[str]]:
        """Up to 100 members that already have Identity Center ids: (source ids, target ids)."""
        sids: list[str] = []
        tids: list[str] = []
        for sid in sorted(group.members):
            tid = self.user_target(sid)
            if tid is not None:
                sids.append(sid)
                tids.append(tid)
            if len(sids) == 100:
                break
        return sids, tids


class _OwnSet(set[str]):
    """A group's members as the mirror changes them (see :meth:`Mirror._mutable`)."""

    __slots__ = ()


def user_record(user: User, target_id: str, origin: str = "created", data: dict[str, Any] | None = None) -> CachedUser:
    payload = data if data is not None else user.payload()
    return CachedUser(user.source_id, target_id, user.user_name, digest(payload), payload, origin)  # type: ignore[arg-type]


def group_record(
    group: Group, target_id: str, origin: str = "created", data: dict[str, Any] | None = None
) -> CachedGroup:
    payload = data if data is not None else group.payload()
    return CachedGroup(group.source_id, target_id, group.display_name, digest(payload), origin)  # type: ignore[arg-type]
