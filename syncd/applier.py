"""Applying a plan: phase by phase, each change recorded as it lands (see :mod:`syncd.engine` for the rules).

Member adds and removes are planned again from what the cache holds after the creates and
recreations (:func:`syncd.members.member_requests`), so a group created with its members inline
or recreated after a delete by hand gets exactly the PATCHes still needed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from collections.abc import Set as AbstractSet
from dataclasses import replace
from typing import Any, NamedTuple

from syncd.aio import bounded_landing
from syncd.changes import Action, Change, GroupChange, GroupRemoval, MemberChange, Phase, UserChange, UserRemoval
from syncd.errors import (
    TargetAuthError,
    TargetConflict,
    TargetError,
    TargetNotFound,
    TargetUnavailable,
)
from syncd.live import LiveState
from syncd.members import MemberRequest, member_requests
from syncd.mirror import Mirror, group_record, user_record
from syncd.model import Group, Snapshot, User, digest
from syncd.plan import ADOPTED, Plan, count_changes, manager_waves, membership_changes, tally
from syncd.ports import Assigner, Progress
from syncd.state import AuditEntry, AuditKind, CachedUser
from syncd.target.scim import ScimTarget


CONCURRENCY = 16
"""Requests in flight at once; the pacer, not this, sets the rate."""


def _adopted(create: UserChange | GroupChange, target_id: str) -> Change:
    """A create that met a 409 and adopted the object that was there: counted as an adoption."""
    reason = f"{ADOPTED} after 409"
    if isinstance(create, UserChange):
        return replace(create, action=Action.ADOPT_USER, target_id=target_id, reason=reason)
    return replace(create, action=Action.ADOPT_GROUP, target_id=target_id, members=(), reason=reason)


class _Holder(NamedTuple):
    """The Identity Center object that holds a name a create met a 409 on."""

    target_id: str
    name: str
    data: dict[str, Any]


def _held_by_another(change: UserChange | GroupChange, holder: _Holder, owner: str) -> str:
    """Why a create cannot adopt the object holding its name: syncd manages it for ``owner``."""
    if isinstance(change, UserChange):
        return (
            f"create user {change.user.user_name!r}: the name is held by {holder.name!r}, which syncd manages for"
            f" source id {owner!r}; it will be freed when that change lands, so the next run can finish this one"
        )
    return (
        f"create group {change.group.display_name!r}: the name is held by a group syncd manages"
        f" for source id {owner!r};"
        " the next run can finish this once that change lands"
    )


class Applier:
    """Applies a plan phase by phase, recording each change as it lands."""

    def __init__(
        self,
        target: ScimTarget,
        mirror: Mirror,
        snapshot: Snapshot,
        log: Any,
        stop: asyncio.Event,
        assigner: Assigner | None = None,
        progress: Progress | None = None,
        *,
        access_only: bool = False,
        adds_only: bool = False,
    ) -> None:
        self.assigner = assigner
        self.access_only = access_only
        self.adds_only = adds_only
        """Member adds only, no removes (writes during the read: :mod:`syncd.during_read`)."""
        self.progress = progress
        self.kept_groups: set[str] = set()
        self.target = target
        self.mirror = mirror
        self.snapshot = snapshot
        self.log = log
        self.stop = stop
        self.counts = count_changes([])  # what landed; the changes themselves are not kept
        self.errors: list[str] = []
        self.deferred: list[Change] = []
        self.deleting_users: set[str] = set()
        self.deleting_groups: set[str] = set()

    # ----- driver

    async def apply(self, plan: Plan, live: LiveState | None) -> None:
        by_phase: dict[Phase, list[Change]] = {}
        for change in plan:
            by_phase.setdefault(change.phase, []).append(change)
        self.deleting_users = {c.source_id for c in by_phase.get(Phase.DELETE_USERS, [])}
        self.deleting_groups = {c.source_id for c in by_phase.get(Phase.DELETE_GROUPS, [])}
        deleting_groups = set(self.deleting_groups)
        # Users gone from the source keep their memberships: deleting one drops them, and one
        # waiting for its delete (deactivated) gets them back if it returns (syncd.grace).
        deleting_users = self.mirror.state.users.keys() - self.snapshot.users.keys()
        forgotten = {c.source_id for c in by_phase.get(Phase.RECORD, []) if c.action is Action.FORGET_USER}
        self.mirror.index_users(self.deleting_users | forgotten)

        for change in by_phase.get(Phase.RECORD, []):
            self.mirror.record_only(change)
            self._done(change)
        if live is not None:
            self.mirror.refresh_memberships(live)
        for wave in manager_waves(by_phase.get(Phase.USERS, [])):
            await self._run_all(wave, self._user)
        await self._run_all(by_phase.get(Phase.GROUPS, []), self._group)
        if not self.access_only:  # members are re-planned from the cache: not in an access-only run
            await self._member_phases(deleting_users, deleting_groups)
        await self._assignments(by_phase.get(Phase.ASSIGNMENTS, []))
        group_deletes = [c for c in by_phase.get(Phase.DELETE_GROUPS, []) if c.source_id not in self.kept_groups]
        await self._run_all(group_deletes, self._delete)
        await self._run_all(by_phase.get(Phase.DELETE_USERS, []), self._delete)

        if self.deferred:
            # Creates and updates whose userName or group name was still held by an object this
            # run deleted (a rehire under the same name, a group recreated at the source, a login
            # or group renamed onto a freed name): retry them now, once; a second conflict is a
            # real one and fails.
            deferred, self.deferred = self.deferred, []
            self.deleting_users, self.deleting_groups = set(), set()
            for wave in manager_waves(c for c in deferred if c.phase is Phase.USERS):
                await self._run_all(wave, self._user)
            await self._run_all([c for c in deferred if c.phase is Phase.GROUPS], self._group)
            await self._member_phases(deleting_users, deleting_groups)

    async def _assignments(self, changes: list[Change]) -> None:
        """Create and delete account assignments (sso-admin), recording each as it ends.

        A group whose syncd-made assignment could not be deleted is kept this run: deleting it
        would leave an assignment pointing at a principal that no longer exists.
        """
        if not changes or self.assigner is None or self.stop.is_set():
            return
        assigner = self.assigner

        def on_done(change: Change, error: str | None) -> None:
            assigner.record(change, error)
            if error is None:
                self._done(change)
                return
            message = f"{change.action} {change.label()}: {error}"
            self.errors.append(message)
            self.log.error("change.failed", action=str(change.action), object=change.label(), error=error)
            # An account or application assignment's source id is its group's.
            deleting = change.action in (Action.DELETE_ASSIGNMENT, Action.DELETE_APPLICATION_ASSIGNMENT)
            if deleting and change.source_id in self.deleting_groups:
                self.kept_groups.add(change.source_id)

        targets = {sid: g.target_id for sid, g in self.mirror.state.groups.items()}
        await assigner.apply(changes, targets, on_done)

    async def _member_phases(self, deleting_users: set[str], deleting_groups: set[str]) -> None:
        """Member adds, then removes, planned again from what the cache now holds.

        A user or group recreated above has lost its memberships, and group creates sent up to
        100 members inline; planning from the cache accounts for both. The packing into PATCHes
        is :func:`syncd.members.member_requests`, the one the plan view counts.
        """
        changes = membership_changes(
            self.snapshot,
            self.mirror.by_group,
            deleting_users=deleting_users,
            deleting_groups=deleting_groups,
        )
        if self.adds_only:
            changes = [c for c in changes if c.action is Action.ADD_MEMBERS]
        first, then = member_requests(changes)
        await self._run_all(first, self._member_batches)
        await self._run_all(then, self._member_batches)

    async def _run_all(self, items: list[Any], worker: Callable[[Any], Awaitable[None]]) -> None:
        """Run ``worker`` on every item, ``CONCURRENCY`` at a time, until done or asked to stop.

        :func:`syncd.aio.bounded_landing`'s pool holds ``CONCURRENCY`` coroutines, not one task per
        change, and waits for every worker, even after one failed, so nothing writes after the run ends.
        """
        await bounded_landing(items, lambda item: self._guarded(item, worker), CONCURRENCY, stop=self.stop)

    async def _guarded(self, item: Any, worker: Callable[[Any], Awaitable[None]]) -> None:
        try:
            await worker(item)
        except (TargetAuthError, TargetUnavailable):
            # Every later request would fail the same way: stop the run, keep what landed.
            self.stop.set()
            raise
        except TargetError as exc:
            first = item[0] if isinstance(item, list) else item  # a group's member requests come as a list
            self._failed(first.as_change() if isinstance(first, MemberRequest) else first, str(exc))

    def _failed(self, change: Change, message: str) -> None:
        if self.progress is not None and change.is_write:
            self.progress.advance(change, ok=False)
        self.errors.append(message)
        self.log.error("change.failed", action=str(change.action), object=change.label(), error=message)
        kind = AuditKind.USER if isinstance(change, UserChange | UserRemoval) else AuditKind.GROUP
        self.mirror.cache.record(
            AuditEntry(
                change.action,
                kind,
                change.source_id,
                change.target_id,
                dict(change.before) if change.before else None,
                None,
                f"failed: {message}",
            )
        )

    def _done(self, change: Change, **extra: Any) -> None:
        tally(self.counts, change)
        if self.progress is not None and (change.is_write or extra.get("adopted")):
            self.progress.advance(change, ok=True)
        self.log.info(
            "change.applied", action=str(change.action), object=change.label(), reason=change.reason or None, **extra
        )

    # ----- cache-only changes

    # ----- users

    async def _user(self, change: UserChange | UserRemoval) -> None:
        if isinstance(change, UserRemoval):
            await self._retire_user(change)
            return
        user = change.user
        if change.action is Action.CREATE_USER:
            await self._create_user(change, user, drift=bool(change.reason.startswith("drift")))
            return
        assert change.target_id is not None
        try:
            await self.target.replace_user(change.target_id, user)
        except TargetConflict:
            if self._defer_until_deleted(change, self.deleting_users):
                return
            raise
        except TargetNotFound:
            # Deleted by hand since the last run: make it again (its memberships follow below).
            self.log.warning("drift.user_missing", user=user.user_name, target_id=change.target_id)
            await self._create_user(
                UserChange(
                    Action.CREATE_USER, user, before=change.before, reason="drift: deleted in Identity Center by hand"
                ),
                user,
                drift=True,
            )
            return
        self.mirror.put_user(
            user_record(user, change.target_id, self.mirror.origin_user(user.source_id)),
            AuditEntry(
                change.action,
                AuditKind.USER,
                user.source_id,
                change.target_id,
                dict(change.before) if change.before else None,
                user.payload(),
                f"ok: {change.reason}" if change.reason else "ok",
            ),
        )
        self._done(change)

    async def _retire_user(self, change: UserRemoval) -> None:
        """The first step of a two-step delete: deactivate a user gone from the source (syncd.grace)."""
        cached = self.mirror.state.users.get(change.source_id)
        assert cached is not None
        before = dict(change.before) if change.before else None
        try:
            await self.target.deactivate_user(change.target_id)
        except TargetNotFound:
            self.mirror.forget_gone_user(change, "ok: already gone")
            return
        data = {**(before or {}), "active": False}
        self.mirror.put_user(
            CachedUser(
                cached.source_id,
                cached.target_id,
                cached.user_name,
                digest(data),
                data,
                cached.origin,
                gone_since=change.gone_since,
            ),
            AuditEntry(
                Action.DEACTIVATE_USER,
                AuditKind.USER,
                change.source_id,
                change.target_id,
                before,
                data,
                f"ok: {change.reason}",
            ),
        )
        self._done(change)

    def _defer_until_deleted(self, change: Change, deleting: AbstractSet[str]) -> bool:
        """Put off an update that met a 409 while this run still has deletes to make.

        The name (or, for a user, the email) it takes may be held by an object this run deletes:
        a login changed onto a leaver's userName, a group renamed onto a deleted group's name.
        It is tried again once those deletes have landed, as creates are; a second 409 is real.
        """
        if not deleting:
            return False
        self.log.info("change.deferred", action=str(change.action), object=change.label(), until="this run's deletes")
        self.deferred.append(change)
        return True

    def _create_sent(self, change: UserChange | GroupChange, after: dict[str, Any]) -> None:
        """Audit a create before its POST: if the run dies before the answer is recorded, the
        adoption after 409 that follows is tied to this run (see :meth:`Mirror.adopted_after_409`)."""
        self.mirror.create_answered(change, after, "sent")

    async def _create_user(self, change: UserChange, user: User, *, drift: bool) -> None:
        self._create_sent(change, user.payload())
        try:
            created = await self.target.create_user(user)
        except TargetConflict:
            self.mirror.create_answered(change, user.payload(), "conflict: 409, already exists")
            await self._adopt_after_conflict(change)
            return
        result = "ok: recreated (drift: deleted in Identity Center by hand)" if drift else "ok"
        self.mirror.put_user(
            user_record(user, created.target_id),
            AuditEntry(
                Action.CREATE_USER,
                AuditKind.USER,
                user.source_id,
                created.target_id,
                dict(change.before) if change.before else None,
                user.payload(),
                result,
            ),
        )
        self._done(change, target_id=created.target_id)

    # ----- groups

    async def _group(self, change: GroupChange) -> None:
        group = change.group
        if change.action is Action.CREATE_GROUP:
            await self._create_group(change, group, drift=change.reason.startswith("drift"))
            return
        assert change.target_id is not None
        try:
            await self.target.update_group(change.target_id, group, change.before)
        except TargetConflict:
            if self._defer_until_deleted(change, self.deleting_groups):
                return
            raise
        except TargetNotFound:
            self.log.warning("drift.group_missing", group=group.display_name, target_id=change.target_id)
            await self._create_group(change, group, drift=True)
            return
        cached = self.mirror.state.groups.get(group.source_id)
        self.mirror.put_group(
            group_record(group, change.target_id, cached.origin if cached else "created"),
            AuditEntry(
                Action.UPDATE_GROUP,
                AuditKind.GROUP,
                group.source_id,
                change.target_id,
                dict(change.before) if change.before else None,
                group.payload(),
                f"ok: {change.reason}" if change.reason else "ok",
            ),
        )
        self._done(change)

    async def _create_group(self, change: GroupChange, group: Group, *, drift: bool) -> None:
        sids, tids = self.mirror.inline_members(group)
        self._create_sent(change, {**group.payload(), "members": len(sids)})
        try:
            created = await self.target.create_group(group, tids)
        except TargetConflict:
            self.mirror.create_answered(change, group.payload(), "conflict: 409, already exists")
            await self._adopt_after_conflict(change)
            return
        result = "ok: recreated (drift: deleted in Identity Center by hand)" if drift else "ok"
        self.mirror.put_group(
            group_record(group, created.target_id),
            AuditEntry(
                Action.CREATE_GROUP,
                AuditKind.GROUP,
                group.source_id,
                created.target_id,
                dict(change.before) if change.before else None,
                {**group.payload(), "members": len(sids)},
                result,
            ),
        )
        if sids:
            self.mirror.add_members(group.source_id, sids, None)
        done = GroupChange(Action.CREATE_GROUP, group, created.target_id, members=tuple(sids), reason=change.reason)
        self._done(done, target_id=created.target_id, members=len(sids))

    # ----- users and groups alike: adoption after a 409, deletes

    async def _adopt_after_conflict(self, change: UserChange | GroupChange) -> None:
        """A 409 on create: find the user or group that holds the name and adopt it (ssosync#13, #104).

        One that syncd manages for another source id is not taken: if this run deletes that one,
        the create waits for the delete (deferred); otherwise the next run can finish it.
        """
        user = isinstance(change, UserChange)
        kind, adopt, update = (
            (AuditKind.USER, Action.ADOPT_USER, Action.UPDATE_USER)
            if user
            else (AuditKind.GROUP, Action.ADOPT_GROUP, Action.UPDATE_GROUP)
        )
        holder = await self._holder(change)
        owners, deleting = (
            (self.mirror.owner_of_user, self.deleting_users)
            if user
            else (self.mirror.owner_of_group, self.deleting_groups)
        )
        owner = owners(holder.target_id)
        if owner is not None and owner in deleting:
            self.log.info(f"{kind}.deferred", **{str(kind): change.label()}, until_deleted=owner)
            self.deferred.append(change)
            return
        if owner is not None and owner != change.source_id:
            raise TargetError(_held_by_another(change, holder, owner))
        target_id, data = holder.target_id, holder.data
        adopted = self.mirror.adopted_after_409(kind, change.source_id)
        self._put(change, target_id, data, AuditEntry(adopt, kind, change.source_id, target_id, None, data, adopted))
        payload = await self._after_adoption(change, target_id)
        if data != payload:
            await self._update(change, target_id, data)
            audit = AuditEntry(update, kind, change.source_id, target_id, data, payload, "ok: after adoption")
            self._put(change, target_id, None, audit)
        self._done(_adopted(change, target_id), target_id=target_id, adopted=True)

    async def _holder(self, change: UserChange | GroupChange) -> _Holder:
        """The Identity Center object holding ``change``'s name, found after a 409 on its create."""
        if isinstance(change, UserChange):
            user = change.user
            found = await self.target.find_user(external_id=user.source_id, user_name=user.user_name)
            if found is None:
                raise TargetError(
                    f"create user {user.user_name!r}: Identity Center says it already exists (409), but no user with"
                    f" externalId {user.source_id!r} or that userName was found;"
                    f" another user may hold its email {user.email!r}"
                )
            return _Holder(found.target_id, found.user_name, dict(found.data))
        group = change.group
        held = await self.target.find_group(external_id=group.source_id, display_name=group.display_name)
        if held is None:
            raise TargetError(
                f"create group {group.display_name!r}: Identity Center says it exists (409) but it cannot be found"
            )
        data = {"externalId": held.external_id, "displayName": held.display_name}
        return _Holder(held.target_id, held.display_name, data)

    def _put(
        self, change: UserChange | GroupChange, target_id: str, data: dict[str, Any] | None, audit: AuditEntry
    ) -> None:
        """Record ``change``'s user or group as adopted at ``target_id`` (holding ``data``, else its payload)."""
        if isinstance(change, UserChange):
            self.mirror.put_user(user_record(change.user, target_id, "adopted", data), audit)
        else:
            self.mirror.put_group(group_record(change.group, target_id, "adopted", data), audit)

    async def _after_adoption(self, change: UserChange | GroupChange, target_id: str) -> dict[str, Any]:
        """What an adoption learns of the object besides its attributes; returns the payload it should hold."""
        if isinstance(change, UserChange):
            self.log.info("user.adopted", user=change.user.user_name, target_id=target_id)
            return change.user.payload()
        # Its members are unknown: read them so the member phase adds only what is missing.
        by_target = self.mirror.user_by_target()
        present = await self.target.list_member_ids(target_id)
        self.mirror.set_members(change.source_id, {by_target[t] for t in present if t in by_target})
        return change.group.payload()

    async def _update(self, change: UserChange | GroupChange, target_id: str, data: dict[str, Any]) -> None:
        """Write ``change``'s user or group over ``data``, what Identity Center holds at ``target_id``."""
        if isinstance(change, UserChange):
            await self.target.replace_user(target_id, change.user)
        else:
            await self.target.update_group(target_id, change.group, data)

    async def _delete(self, change: UserRemoval | GroupRemoval) -> None:
        """Delete a user or group gone from the source, and its record; one already gone counts as deleted."""
        user = isinstance(change, UserRemoval)
        try:
            await (self.target.delete_user if user else self.target.delete_group)(change.target_id)
            result = f"ok: {change.reason}" if change.reason else "ok"
        except TargetNotFound:
            result = "ok: already gone from Identity Center"
        before = dict(change.before) if change.before else None
        audit = AuditEntry(
            change.action,
            AuditKind.USER if user else AuditKind.GROUP,
            change.source_id,
            change.target_id,
            before,
            None,
            result,
        )
        (self.mirror.forget_user if user else self.mirror.forget_group)(change.source_id, audit)
        self._done(change)

    # ----- members

    async def _member_batches(self, requests: list[MemberRequest]) -> None:
        """One group's member PATCHes, in order (those of different groups run side by side)."""
        for request in requests:
            if self.stop.is_set():
                return
            try:
                await self._member_request(request)
            except TargetNotFound:
                group = self.snapshot.groups.get(request.group)
                if group is None or not request.add:
                    self._failed(
                        request.as_change(),
                        f"group {request.group} is gone from Identity Center; run `syncd sync --full-resync`",
                    )
                    return
                # The group was deleted by hand: make it again and add every member.
                self.log.warning("drift.group_missing", group=group.display_name)
                await self._create_group(
                    GroupChange(Action.CREATE_GROUP, group, reason="drift: deleted in Identity Center by hand"),
                    group,
                    drift=True,
                )
                current = {(group.source_id, u) for u in self.mirror.members_of(group.source_id)}
                single = Snapshot(users=self.snapshot.users, groups={group.source_id: group})
                for again in membership_changes(single, current):
                    if again.action is Action.ADD_MEMBERS:
                        await self._member_request(MemberRequest(group.source_id, again.members))
                return

    async def _member_request(self, request: MemberRequest) -> None:
        group_tid = self.mirror.group_target(request.group)
        if group_tid is None and any(c.source_id == request.group for c in self.deferred):
            return  # its create waits for a delete later in the run; members follow it then
        if group_tid is None:
            self._failed(
                request.as_change(),
                f"group {request.as_change().label()!r} has no Identity Center id (its create failed);"
                " members not changed",
            )
            return
        add = [(sid, tid) for sid in request.add if (tid := self.mirror.user_target(sid)) is not None]
        remove = [(sid, tid) for sid in request.remove if (tid := self.mirror.user_target(sid)) is not None]
        if not add and not remove:
            return
        await self.target.patch_members(group_tid, add=[t for _, t in add], remove=[t for _, t in remove])
        group = self.snapshot.groups.get(request.group)
        for action, pairs in ((Action.ADD_MEMBERS, add), (Action.REMOVE_MEMBERS, remove)):
            if not pairs:
                continue
            sids = [sid for sid, _ in pairs]
            audit = AuditEntry(action, AuditKind.MEMBERSHIP, request.group, group_tid, None, {"members": sids}, "ok")
            if action is Action.ADD_MEMBERS:
                self.mirror.add_members(request.group, sids, audit)
            else:
                self.mirror.remove_members(request.group, sids, audit)
            self._done(MemberChange(action, request.group, tuple(sids), group_tid, group=group), members=len(sids))
