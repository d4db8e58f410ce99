"""One run: read the source, plan, guard, apply, record. Knows nothing of a given IdP.

Fail-safe rules this module keeps:

* a source read that fails or says it is incomplete ends the run before any write;
* the guard (:mod:`syncd.guard`) refuses plans that remove too much, before any write;
* each change is recorded in the cache in the same step that confirms it landed, so a run that
  dies midway resumes with no duplicates (a create whose record was lost meets a 409 next time
  and adopts the object it made, found by externalId);
* an authentication failure or an Identity Center that stays unavailable ends the run at once;
  any other failed change is logged, audited and counted, and the run goes on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import structlog

from connectors.base import ReadContext, Source
from syncd.access import AccessRules, access_entries, directory_of
from syncd.access import impact as access_impact
from syncd.aio import bounded, bounded_landing
from syncd.errors import (
    ConfigError,
    SourceError,
    SyncdError,
    TargetAuthError,
    TargetConflict,
    TargetError,
    TargetNotFound,
    TargetUnavailable,
)
from syncd.grace import Grace
from syncd.guard import DEFAULT_MEMBER_LIMIT, Limit, check
from syncd.live import LiveState
from syncd.model import ApplicationAssignment, Assignment, Group, Snapshot, User, digest
from syncd.normalise import Scope, build_snapshot
from syncd.plan import (
    ADOPTED,
    MAX_MEMBER_CHANGES,
    Action,
    Change,
    Phase,
    Plan,
    count_changes,
    make_plan,
    match_live,
    membership_changes,
    tally,
)
from syncd.results import RunResult
from syncd.state import NO_DATA, AuditEntry, CachedGroup, CachedUser, CacheState, Current, RunRecord
from syncd.target.scim import ScimTarget


log = structlog.get_logger("syncd.engine")

CONCURRENCY = 16
"""Requests in flight at once; the pacer, not this, sets the rate."""


class CacheLike(Protocol):
    """What the engine needs of :class:`syncd.cache.Cache` (a seam for tests)."""

    def load(self, *, current: Mapping[str, Current] | None = None) -> CacheState: ...
    def put_user(self, user: CachedUser, audit: AuditEntry | None = None) -> None: ...
    def forget_user(self, source_id: str, audit: AuditEntry | None = None) -> None: ...
    def put_group(self, group: CachedGroup, audit: AuditEntry | None = None) -> None: ...
    def forget_group(self, source_id: str, audit: AuditEntry | None = None) -> None: ...
    def add_memberships(
        self, group_source_id: str, user_source_ids: Iterable[str], audit: AuditEntry | None = None
    ) -> None: ...
    def remove_memberships(
        self, group_source_id: str, user_source_ids: Iterable[str], audit: AuditEntry | None = None
    ) -> None: ...
    def forget_memberships(self, *, group_source_id: str | None = None, user_source_id: str | None = None) -> None: ...
    def record(self, audit: AuditEntry) -> None: ...
    def unanswered_create(self, object_type: str, source_id: str) -> int | None: ...
    def start_run(self, mode: str, dry_run: bool) -> int: ...
    def finish_run(
        self, run_id: int, status: str, counts: dict[str, int], requests: dict[str, int], error: str | None
    ) -> None: ...
    def interrupt_stale_runs(self) -> int: ...
    def get_value(self, key: str) -> Any | None: ...
    def set_value(self, key: str, value: Any) -> None: ...
    def runs(self, limit: int = 10) -> list[RunRecord]: ...
    def assignments(self) -> set[Assignment]: ...
    def application_assignments(self) -> set[ApplicationAssignment]: ...
    def record_all(self, entries: Iterable[AuditEntry]) -> None: ...


class Assigner(Protocol):
    """Turns synced groups into AWS access (see :mod:`syncd.assignments`).

    ``plan`` resolves the rules (an unknown permission set, account, OU or application raises
    :class:`~syncd.errors.AssignmentError` before any write) and returns access changes
    (:data:`syncd.plan.ACCESS`: account and application assignments, permission sets).
    ``made`` holds the assignments syncd created (from the cache);
    ``group_targets`` maps group source ids to Identity Center ids where they exist already.
    ``apply`` runs those changes once groups exist, calling ``on_done(change, error)`` as each
    operation ends (``error`` None on success) so that the engine records it as it lands.
    """

    async def plan(
        self, snapshot: Snapshot, made: set[Assignment], group_targets: Mapping[str, str]
    ) -> list[Change]: ...

    async def apply(
        self,
        changes: list[Change],
        group_targets: Mapping[str, str],
        on_done: Callable[[Change, str | None], None],
    ) -> None: ...

    def record(self, change: Change, error: str | None) -> None:
        """Write one outcome of ``apply`` to the cache, with its audit entry."""
        ...

    def request_stop(self) -> None:
        """Start no new operation; let those in flight end."""
        ...


class Progress(Protocol):
    """Told how far a run's writes are (the CLI's progress bar; tests record it)."""

    def planned(self, plan: Plan) -> None:
        """The guard let ``plan`` through and its writes start now."""
        ...

    def advance(self, change: Change, *, ok: bool) -> None:
        """One change landed (``ok``) or failed."""
        ...


Approve = Callable[[Plan, Snapshot], str | None]
"""Asked after the guard with the plan and the source snapshot it came from, before any write:
None to go on, or why the run must not (it is then refused)."""


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How to run: ``full_resync`` reconciles with live Identity Center state.

    A run on an empty cache (the first) reads Identity Center as a full resync does, so that it
    adopts what is there instead of planning a create for everything. A dry run is not recorded
    as a run. ``approve`` (a saved plan's check, a prompt) and ``progress`` are the CLI's hooks.
    """

    full_resync: bool = False
    dry_run: bool = False
    allow_deletions: bool = False
    only_assignments: bool = False
    """Plan and apply access only (permission sets, account and application assignments) for the
    groups syncd already manages; no identity is written and the source's state does not advance."""
    approve: Approve | None = None
    progress: Progress | None = None


class _CurrentUsers(Mapping[str, Current]):
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


class _Mirror:
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
        if self._user_owner is not None:
            self._user_owner[user.target_id] = user.source_id

    def forget_user(self, source_id: str, audit: AuditEntry) -> None:
        self.cache.forget_user(source_id, audit)
        previous = self.state.users.pop(source_id, None)
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


def _adopted(create: Change, target_id: str) -> Change:
    """A create that met a 409 and adopted the object that was there: counted as an adoption."""
    action = Action.ADOPT_USER if create.action is Action.CREATE_USER else Action.ADOPT_GROUP
    return replace(create, action=action, target_id=target_id, members=(), reason=f"{ADOPTED} after 409")


class _OwnSet(set[str]):
    """A group's members as the mirror changes them (see :meth:`_Mirror._mutable`)."""

    __slots__ = ()


def _user_record(user: User, target_id: str, origin: str = "created", data: dict[str, Any] | None = None) -> CachedUser:
    payload = data if data is not None else user.payload()
    return CachedUser(user.source_id, target_id, user.user_name, digest(payload), payload, origin)  # type: ignore[arg-type]


def _group_record(
    group: Group, target_id: str, origin: str = "created", data: dict[str, Any] | None = None
) -> CachedGroup:
    payload = data if data is not None else group.payload()
    return CachedGroup(group.source_id, target_id, group.display_name, digest(payload), origin)  # type: ignore[arg-type]


class Engine:
    """Runs syncs of one source into one Identity Center, recording them in one cache."""

    def __init__(
        self,
        *,
        source: Source,
        source_type: str,
        target: ScimTarget,
        cache: CacheLike,
        scope: Scope,
        limit: Limit,
        member_limit: Limit = DEFAULT_MEMBER_LIMIT,
        delete_after: timedelta = timedelta(0),
        assigner: Assigner | None = None,
        access_rules: AccessRules | None = None,
    ) -> None:
        self.assigner = assigner
        self.access_rules = access_rules or AccessRules()
        self.member_limit = member_limit
        self.delete_after = delete_after
        self.source = source
        self.source_type = source_type
        self.target = target
        self.cache = cache
        self.scope = scope
        self.limit = limit
        self._stop = asyncio.Event()

    def request_stop(self) -> None:
        """Finish the changes in flight, start no new one, end the run as interrupted."""
        self._stop.set()
        if self.assigner is not None:
            self.assigner.request_stop()

    @property
    def _state_key(self) -> str:
        return f"source_state:{self.source_type}"

    async def run(self, options: RunOptions = RunOptions()) -> RunResult:
        """One whole run; never raises for a failure it can report in the result."""
        started = time.monotonic()
        mode = "assignments" if options.only_assignments else "full" if options.full_resync else "incremental"
        run_id: int | None = None
        if not options.dry_run:
            # A plan is not a run: it is not recorded, and it does not close another's.
            self.cache.interrupt_stale_runs()
            run_id = self.cache.start_run(mode, options.dry_run)
        bound = log.bind(run_id=run_id, mode=mode, dry_run=options.dry_run, source=self.source_type)
        bound.info("run.start")
        result = RunResult(
            "failed", options.dry_run, mode, Plan(), dict.fromkeys(count_changes([]), 0), {}, 0.0, run_id=run_id
        )
        read_requests = 0
        target_requests_before = self.target.stats.total
        # A source's stats count what it sent even when its read raises (a file source sends nothing).
        source_stats = getattr(self.source, "stats", None)
        source_requests_before = source_stats.total if source_stats is not None else 0
        try:
            source_state = self.cache.get_value(self._state_key) or {}
            try:
                read = await self.source.read(
                    ReadContext(scope=self.scope, full=options.full_resync or not source_state, state=source_state)
                )
            except SourceError:
                raise
            except Exception as exc:  # a connector bug must not look like an empty directory
                raise SourceError(f"the {self.source_type} source failed: {exc!r}") from exc
            read_requests = read.requests
            if not read.complete:
                raise SourceError(f"the {self.source_type} source returned an incomplete read; nothing was changed")
            snapshot = build_snapshot(read, self.scope)
            # The snapshot holds all the run needs: let the raw records go (tens of MB at 100k users).
            read.users, read.groups = [], []
            result.skipped = snapshot.skipped
            for skip in snapshot.skipped:
                bound.warning("record.skipped", kind=skip.kind, id=skip.id, reason=skip.reason)
            bound.info(
                "source.read",
                users=len(snapshot.users),
                groups=len(snapshot.groups),
                memberships=sum(len(g.members) for g in snapshot.groups.values()),
                skipped=len(snapshot.skipped),
                requests=read.requests,
            )

            # Loaded after the read: a user whose digest is unchanged needs no write, so the cache
            # leaves out what was last pushed for it (about half the memory of 100k users).
            state = self.cache.load(current=_CurrentUsers(snapshot.users))
            if self._stop.is_set():
                # Asked to stop during a long read: nothing was written, so nothing is lost.
                result.status = "interrupted"
                return result
            only = options.only_assignments
            if only and self.assigner is None:
                raise ConfigError(
                    "--only assignments: the config has no [[assignments]], [[permission_sets]] or"
                    " [[applications]] to apply"
                )
            # Reconcile against live Identity Center (a full resync); not to be confused with a
            # connector's full read of the IdP (ReadContext.full).
            reconcile = (options.full_resync or not (state.users or state.groups)) and not only
            if reconcile and not options.full_resync:
                bound.info("run.first", reason="the cache is empty: reading Identity Center to adopt what it holds")
            live = await self._read_live(snapshot, state) if reconcile else None
            # --only assignments writes no identity: access goes only to groups Identity Center holds.
            # "Now" is read once, here: the plan is a pure value of its inputs (syncd.grace).
            grace = Grace(self.delete_after, datetime.now(UTC))
            plan = make_plan(snapshot, state, live, grace=grace) if not only else Plan()
            if self.assigner is not None:
                groups = snapshot if not only else Snapshot(groups=_known_groups(snapshot, state))
                assignment_changes = _keep_pending_access(
                    plan, await self._plan_assignments(groups, state, live), state, snapshot
                )
                plan.changes = sorted(plan.changes + assignment_changes, key=lambda c: c.phase)
                # The guard's base for access removals: what syncd made and may delete.
                made, apps = self.cache.assignments(), self.cache.application_assignments()
                plan.managed_access = len(made) + len(apps)
                result.access = plan.access = access_impact(
                    directory_of(state, snapshot.users, made, apps),
                    plan,
                    rules=self.access_rules.rules,
                    apps=self.access_rules.apps,
                    admin_patterns=self.access_rules.admin_patterns,
                )
            result.plan = plan
            result.would_change = plan.counts()
            verdict = check(plan, self.limit, member_limit=self.member_limit, allow_deletions=options.allow_deletions)
            refused = verdict.refused or (options.approve(plan, snapshot) if options.approve is not None else None)
            if verdict.refused:
                result.status = "refused"
                result.errors.append(verdict.refused)
                bound.error("run.refused", reason=verdict.refused)
                return result
            if options.dry_run:
                result.status = "ok"
                return result
            if refused:
                result.status = "refused"
                result.errors.append(refused)
                bound.error("run.refused", reason=refused)
                return result

            result.would_change = None
            if options.progress is not None:
                options.progress.planned(plan)
            mirror = _Mirror(self.cache, state, snapshot.groups)
            applier = _Applier(
                self.target, mirror, snapshot, bound, self._stop, self.assigner, options.progress, access_only=only
            )
            try:
                await applier.apply(plan, live)
            finally:
                # What landed, even when the run stopped midway.
                result.counts = dict(applier.counts)
                result.errors.extend(applier.errors)
            if self._stop.is_set():
                result.status = "interrupted"
            elif applier.errors:
                result.status = "failed"
            else:
                result.status = "ok"
                if not only:  # the identities of this read were not all pushed: read them again
                    self.cache.set_value(self._state_key, read.state)
            if result.access:
                # Kept with the run in the audit trail, for `syncd status`, `syncd access --since`
                # and the status page. A run that did not end ok may not have made every change.
                self.cache.record_all(access_entries(result.access, result.status))
            return result
        except asyncio.CancelledError:
            # Ctrl-C on a one-shot sync: what landed is recorded; the run is marked as cut short.
            result.status = "interrupted"
            result.errors.append("the run was cancelled")
            raise
        except SyncdError as exc:
            result.status = "failed"
            result.failure_code = exc.exit_code
            result.errors.append(str(exc))
            bound.error("run.failed", error=str(exc), error_type=type(exc).__name__)
            return result
        finally:
            result.duration_s = time.monotonic() - started
            if source_stats is not None:
                read_requests = source_stats.total - source_requests_before
            result.requests = {"source": read_requests, "target": self.target.stats.total - target_requests_before}
            if run_id is not None:
                self.cache.finish_run(
                    run_id,
                    result.status,
                    result.counts,
                    result.requests,
                    "; ".join(result.errors)[:4000] or None,
                )
            bound.info(
                "run.finished",
                status=result.status,
                duration_s=round(result.duration_s, 3),
                requests=result.requests,
                **{k: v for k, v in result.counts.items() if v},
            )

    async def _plan_assignments(self, snapshot: Snapshot, state: CacheState, live: LiveState | None) -> list[Change]:
        """Assignment changes; an unknown permission set, account or OU fails here, before any write."""
        assert self.assigner is not None
        group_targets = {sid: c.target_id for sid, c in state.groups.items()}
        if live is not None:
            # Groups a full resync adopts have ids already: their existing assignments count.
            group_targets.update({sid: g.target_id for sid, g in match_live(snapshot, state, live).groups.items()})
        return await self.assigner.plan(snapshot, self.cache.assignments(), group_targets)

    async def _read_live(self, snapshot: Snapshot, state: CacheState) -> LiveState:
        """Everything a full resync compares: users, groups, and members of the groups syncd manages."""
        users, groups = await asyncio.gather(
            self.target.list_users(expected=snapshot.users, known_ids=(c.target_id for c in state.users.values())),
            self.target.list_groups(),
        )
        live = LiveState(users=users, groups=groups)
        matches = match_live(snapshot, state, live)
        ids = sorted({g.target_id for g in matches.groups.values()})
        members = await bounded(ids, self.target.list_member_ids, 8)
        live.members = dict(zip(ids, members, strict=True))
        log.info("target.read", users=len(users), groups=len(groups), member_lists=len(ids))
        return live


def _known_groups(snapshot: Snapshot, state: CacheState) -> dict[str, Group]:
    """The source's groups that Identity Center already holds (the cache knows their ids)."""
    return {sid: group for sid, group in snapshot.groups.items() if sid in state.groups}


def _keep_pending_access(plan: Plan, changes: list[Change], state: CacheState, snapshot: Snapshot) -> list[Change]:
    """Assignment changes without the deletes of groups waiting for their own delete (syncd.grace).

    A group gone from the source keeps its account and application assignments through the grace period (it has
    no members, so they grant nothing), so one that comes back has them at once; they go with
    the group, in the run that deletes it.
    """
    deleted = {c.source_id for c in plan.changes if c.action is Action.DELETE_GROUP}
    pending = state.groups.keys() - snapshot.groups.keys() - deleted
    if not pending:
        return changes
    return [
        c
        for c in changes
        if not (
            (c.action is Action.DELETE_ASSIGNMENT and c.assignment is not None and c.assignment.group in pending)
            or (
                c.action is Action.DELETE_APPLICATION_ASSIGNMENT
                and isinstance(c.resource, ApplicationAssignment)
                and c.resource.group in pending
            )
        )
    ]


class _Applier:
    """Applies a plan phase by phase, recording each change as it lands."""

    def __init__(
        self,
        target: ScimTarget,
        mirror: _Mirror,
        snapshot: Snapshot,
        log: Any,
        stop: asyncio.Event,
        assigner: Assigner | None = None,
        progress: Progress | None = None,
        *,
        access_only: bool = False,
    ) -> None:
        self.assigner = assigner
        self.access_only = access_only
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
            self._record_only(change)
        if live is not None:
            self._refresh_memberships(live)
        await self._run_all(by_phase.get(Phase.USERS, []), self._user)
        await self._run_all(by_phase.get(Phase.GROUPS, []), self._group)
        if not self.access_only:  # members are re-planned from the cache: not in an access-only run
            await self._member_phases(deleting_users, deleting_groups)
        await self._assignments(by_phase.get(Phase.ASSIGNMENTS, []))
        group_deletes = [c for c in by_phase.get(Phase.DELETE_GROUPS, []) if c.source_id not in self.kept_groups]
        await self._run_all(group_deletes, self._delete_group)
        await self._run_all(by_phase.get(Phase.DELETE_USERS, []), self._delete_user)

        if self.deferred:
            # Creates and updates whose userName or group name was still held by an object this
            # run deleted (a rehire under the same name, a group recreated at the source, a login
            # or group renamed onto a freed name): retry them now, once; a second conflict is a
            # real one and fails.
            deferred, self.deferred = self.deferred, []
            self.deleting_users, self.deleting_groups = set(), set()
            await self._run_all([c for c in deferred if c.phase is Phase.USERS], self._user)
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
            group = (
                change.assignment.group if change.assignment is not None else getattr(change.resource, "group", None)
            )
            deleting = change.action in (Action.DELETE_ASSIGNMENT, Action.DELETE_APPLICATION_ASSIGNMENT)
            if deleting and group in self.deleting_groups:
                self.kept_groups.add(group)

        targets = {sid: g.target_id for sid, g in self.mirror.state.groups.items()}
        await assigner.apply(changes, targets, on_done)

    async def _member_phases(self, deleting_users: set[str], deleting_groups: set[str]) -> None:
        """Member adds, then removes, planned again from what the cache now holds.

        A user or group recreated above has lost its memberships, and group creates sent up to
        100 members inline; planning from the cache accounts for both. A group that gains and
        loses members gets its removes in the spare room of its last add PATCH (after the adds,
        in the same request: at most 100 changes in all [DG:patchgroup]), so a membership move
        inside one group costs one request, not two.
        """
        changes = membership_changes(
            self.snapshot,
            self.mirror.by_group,
            deleting_users=deleting_users,
            deleting_groups=deleting_groups,
        )
        adds: dict[str, list[str]] = {}
        removes: dict[str, list[str]] = {}
        for change in changes:
            into = adds if change.action is Action.ADD_MEMBERS else removes
            into.setdefault(change.source_id, []).extend(change.members)
        first: list[list[_MemberRequest]] = []
        for gsid, added in adds.items():
            requests = [
                _MemberRequest(gsid, tuple(added[i : i + MAX_MEMBER_CHANGES]))
                for i in range(0, len(added), MAX_MEMBER_CHANGES)
            ]
            room = MAX_MEMBER_CHANGES - len(requests[-1].add)
            leaving = removes.pop(gsid, [])
            if room and leaving:
                requests[-1] = _MemberRequest(gsid, requests[-1].add, tuple(leaving[:room]))
                leaving = leaving[room:]
            if leaving:
                removes[gsid] = leaving
            first.append(requests)
        await self._run_all(first, self._member_batches)
        then = [
            [
                _MemberRequest(gsid, (), tuple(left[i : i + MAX_MEMBER_CHANGES]))
                for i in range(0, len(left), MAX_MEMBER_CHANGES)
            ]
            for gsid, left in removes.items()
        ]
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
            change = item[0] if isinstance(item, list) else item
            self._failed(change, str(exc))

    def _failed(self, change: Change, message: str) -> None:
        if self.progress is not None and change.is_write:
            self.progress.advance(change, ok=False)
        self.errors.append(message)
        self.log.error("change.failed", action=str(change.action), object=change.label(), error=message)
        kind = "user" if "user" in change.action else "group"
        self.mirror.cache.record(
            AuditEntry(
                str(change.action),
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

    def _record_only(self, change: Change) -> None:
        before = dict(change.before) if change.before else None
        if change.action is Action.ADOPT_USER and change.user is not None and change.target_id:
            record = _user_record(change.user, change.target_id, "adopted", before)
            self.mirror.put_user(
                record,
                AuditEntry(
                    "adopt_user", "user", change.source_id, change.target_id, None, before, f"ok: {change.reason}"
                ),
            )
        elif change.action is Action.ADOPT_GROUP and change.group is not None and change.target_id:
            record_g = _group_record(change.group, change.target_id, "adopted", before)
            self.mirror.put_group(
                record_g,
                AuditEntry(
                    "adopt_group", "group", change.source_id, change.target_id, None, before, f"ok: {change.reason}"
                ),
            )
        elif change.action is Action.FORGET_USER:
            self.mirror.forget_user(
                change.source_id,
                AuditEntry(
                    "forget_user", "user", change.source_id, change.target_id, before, None, "ok: gone from both sides"
                ),
            )
        elif change.action is Action.RETIRE_GROUP:
            cached = self.mirror.state.groups.get(change.source_id)
            if cached is not None:
                self.mirror.put_group(
                    replace(cached, gone_since=change.gone_since),
                    AuditEntry(
                        "retire_group",
                        "group",
                        change.source_id,
                        change.target_id,
                        before,
                        None,
                        f"ok: {change.reason}",
                    ),
                )
        elif change.action is Action.FORGET_GROUP:
            self.mirror.forget_group(
                change.source_id,
                AuditEntry(
                    "forget_group",
                    "group",
                    change.source_id,
                    change.target_id,
                    before,
                    None,
                    "ok: gone from both sides",
                ),
            )
        self._done(change)

    def _refresh_memberships(self, live: LiveState) -> None:
        """Make the cached memberships of managed groups what Identity Center really holds."""
        by_target = self.mirror.user_by_target()
        for gsid, cached in list(self.mirror.state.groups.items()):
            if cached.target_id not in live.members:
                continue
            present = {by_target[t] for t in live.members[cached.target_id] if t in by_target}
            self.mirror.set_members(gsid, present)

    # ----- users

    async def _user(self, change: Change) -> None:
        user = change.user
        if user is None:
            await self._retire_user(change)
            return
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
                Change(
                    Action.CREATE_USER,
                    user.source_id,
                    user=user,
                    before=change.before,
                    reason="drift: deleted in Identity Center by hand",
                ),
                user,
                drift=True,
            )
            return
        self.mirror.put_user(
            _user_record(user, change.target_id, self._origin_user(user.source_id)),
            AuditEntry(
                str(change.action),
                "user",
                user.source_id,
                change.target_id,
                dict(change.before) if change.before else None,
                user.payload(),
                f"ok: {change.reason}" if change.reason else "ok",
            ),
        )
        self._done(change)

    async def _retire_user(self, change: Change) -> None:
        """The first step of a two-step delete: deactivate a user gone from the source (syncd.grace)."""
        cached = self.mirror.state.users.get(change.source_id)
        assert change.target_id is not None
        assert cached is not None
        before = dict(change.before) if change.before else None
        try:
            await self.target.deactivate_user(change.target_id)
        except TargetNotFound:
            self.mirror.forget_user(
                change.source_id,
                AuditEntry("forget_user", "user", change.source_id, change.target_id, before, None, "ok: already gone"),
            )
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
                "deactivate_user", "user", change.source_id, change.target_id, before, data, f"ok: {change.reason}"
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

    def _origin_user(self, source_id: str) -> Any:
        cached = self.mirror.state.users.get(source_id)
        return cached.origin if cached else "created"

    def _create_sent(self, change: Change, kind: str, after: dict[str, Any]) -> None:
        """Audit a create before its POST: if the run dies before the answer is recorded, the
        adoption after 409 that follows is tied to this run (see :meth:`_adopted_after_409`)."""
        self._create_answered(change, kind, after, "sent")

    def _create_answered(self, change: Change, kind: str, after: dict[str, Any], result: str) -> None:
        before = dict(change.before) if change.before else None
        self.mirror.cache.record(AuditEntry(f"create_{kind}", kind, change.source_id, None, before, after, result))

    def _adopted_after_409(self, kind: str, source_id: str) -> str:
        """The audit result of an adoption after a 409, naming the earlier run that made the object."""
        run = self.mirror.cache.unanswered_create(kind, source_id)
        if run is None:
            return "ok: adopted after 409"
        return f"ok: adopted after 409; created by run {run}, which sent the create and stopped before its answer"

    async def _create_user(self, change: Change, user: User, *, drift: bool) -> None:
        self._create_sent(change, "user", user.payload())
        try:
            created = await self.target.create_user(user)
        except TargetConflict:
            self._create_answered(change, "user", user.payload(), "conflict: 409, already exists")
            await self._adopt_user_after_conflict(change, user)
            return
        result = "ok: recreated (drift: deleted in Identity Center by hand)" if drift else "ok"
        self.mirror.put_user(
            _user_record(user, created.target_id),
            AuditEntry(
                "create_user",
                "user",
                user.source_id,
                created.target_id,
                dict(change.before) if change.before else None,
                user.payload(),
                result,
            ),
        )
        self._done(change, target_id=created.target_id)

    async def _adopt_user_after_conflict(self, change: Change, user: User) -> None:
        """A 409 on create: find the user that holds the name and adopt it (ssosync#13, #104)."""
        found = await self.target.find_user(external_id=user.source_id, user_name=user.user_name)
        if found is None:
            raise TargetError(
                f"create user {user.user_name!r}: Identity Center says it already exists (409), but no user with"
                f" externalId {user.source_id!r} or that userName was found;"
                f" another user may hold its email {user.email!r}"
            )
        owner = self.mirror.owner_of_user(found.target_id)
        if owner is not None and owner in self.deleting_users:
            self.log.info("user.deferred", user=user.user_name, until_deleted=owner)
            self.deferred.append(change)
            return
        if owner is not None and owner != user.source_id:
            raise TargetError(
                f"create user {user.user_name!r}: the name is held by {found.user_name!r}, which syncd manages for"
                f" source id {owner!r}; it will be freed when that change lands, so the next run can finish this one"
            )
        data = dict(found.data)
        self.mirror.put_user(
            _user_record(user, found.target_id, "adopted", data),
            AuditEntry(
                "adopt_user",
                "user",
                user.source_id,
                found.target_id,
                None,
                data,
                self._adopted_after_409("user", user.source_id),
            ),
        )
        self.log.info("user.adopted", user=user.user_name, target_id=found.target_id)
        if data != user.payload():
            await self.target.replace_user(found.target_id, user)
            self.mirror.put_user(
                _user_record(user, found.target_id, "adopted"),
                AuditEntry(
                    "update_user", "user", user.source_id, found.target_id, data, user.payload(), "ok: after adoption"
                ),
            )
        self._done(_adopted(change, found.target_id), target_id=found.target_id, adopted=True)

    async def _delete_user(self, change: Change) -> None:
        assert change.target_id is not None
        try:
            await self.target.delete_user(change.target_id)
            result = f"ok: {change.reason}" if change.reason else "ok"
        except TargetNotFound:
            result = "ok: already gone from Identity Center"
        self.mirror.forget_user(
            change.source_id,
            AuditEntry(
                "delete_user",
                "user",
                change.source_id,
                change.target_id,
                dict(change.before) if change.before else None,
                None,
                result,
            ),
        )
        self._done(change)

    # ----- groups

    def _inline_members(self, group: Group) -> tuple[list[str], list[str]]:
        """Up to 100 members that already have Identity Center ids: (source ids, target ids)."""
        sids: list[str] = []
        tids: list[str] = []
        for sid in sorted(group.members):
            tid = self.mirror.user_target(sid)
            if tid is not None:
                sids.append(sid)
                tids.append(tid)
            if len(sids) == 100:
                break
        return sids, tids

    async def _group(self, change: Change) -> None:
        group = change.group
        assert group is not None
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
            _group_record(group, change.target_id, cached.origin if cached else "created"),
            AuditEntry(
                "update_group",
                "group",
                group.source_id,
                change.target_id,
                dict(change.before) if change.before else None,
                group.payload(),
                f"ok: {change.reason}" if change.reason else "ok",
            ),
        )
        self._done(change)

    async def _create_group(self, change: Change, group: Group, *, drift: bool) -> None:
        sids, tids = self._inline_members(group)
        self._create_sent(change, "group", {**group.payload(), "members": len(sids)})
        try:
            created = await self.target.create_group(group, tids)
        except TargetConflict:
            self._create_answered(change, "group", group.payload(), "conflict: 409, already exists")
            await self._adopt_group_after_conflict(change, group)
            return
        result = "ok: recreated (drift: deleted in Identity Center by hand)" if drift else "ok"
        self.mirror.put_group(
            _group_record(group, created.target_id),
            AuditEntry(
                "create_group",
                "group",
                group.source_id,
                created.target_id,
                dict(change.before) if change.before else None,
                {**group.payload(), "members": len(sids)},
                result,
            ),
        )
        if sids:
            self.mirror.add_members(group.source_id, sids, None)
        done = Change(
            Action.CREATE_GROUP,
            group.source_id,
            created.target_id,
            group=group,
            members=tuple(sids),
            reason=change.reason,
        )
        self._done(done, target_id=created.target_id, members=len(sids))

    async def _adopt_group_after_conflict(self, change: Change, group: Group) -> None:
        found = await self.target.find_group(external_id=group.source_id, display_name=group.display_name)
        if found is None:
            raise TargetError(
                f"create group {group.display_name!r}: Identity Center says it exists (409) but it cannot be found"
            )
        owner = self.mirror.owner_of_group(found.target_id)
        if owner is not None and owner in self.deleting_groups:
            self.log.info("group.deferred", group=group.display_name, until_deleted=owner)
            self.deferred.append(change)
            return
        if owner is not None and owner != group.source_id:
            raise TargetError(
                f"create group {group.display_name!r}: the name is held by a group syncd manages"
                f" for source id {owner!r};"
                " the next run can finish this once that change lands"
            )
        data = {"externalId": found.external_id, "displayName": found.display_name}
        self.mirror.put_group(
            _group_record(group, found.target_id, "adopted", data),
            AuditEntry(
                "adopt_group",
                "group",
                group.source_id,
                found.target_id,
                None,
                data,
                self._adopted_after_409("group", group.source_id),
            ),
        )
        # Its members are unknown: read them so the member phase adds only what is missing.
        by_target = self.mirror.user_by_target()
        present = await self.target.list_member_ids(found.target_id)
        self.mirror.set_members(group.source_id, {by_target[t] for t in present if t in by_target})
        if data != group.payload():
            await self.target.update_group(found.target_id, group, data)
            self.mirror.put_group(
                _group_record(group, found.target_id, "adopted"),
                AuditEntry(
                    "update_group",
                    "group",
                    group.source_id,
                    found.target_id,
                    data,
                    group.payload(),
                    "ok: after adoption",
                ),
            )
        self._done(_adopted(change, found.target_id), target_id=found.target_id, adopted=True)

    async def _delete_group(self, change: Change) -> None:
        assert change.target_id is not None
        try:
            await self.target.delete_group(change.target_id)
            result = f"ok: {change.reason}" if change.reason else "ok"
        except TargetNotFound:
            result = "ok: already gone from Identity Center"
        self.mirror.forget_group(
            change.source_id,
            AuditEntry(
                "delete_group",
                "group",
                change.source_id,
                change.target_id,
                dict(change.before) if change.before else None,
                None,
                result,
            ),
        )
        self._done(change)

    # ----- members

    async def _member_batches(self, requests: list[_MemberRequest]) -> None:
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
                    Change(
                        Action.CREATE_GROUP,
                        group.source_id,
                        group=group,
                        reason="drift: deleted in Identity Center by hand",
                    ),
                    group,
                    drift=True,
                )
                current = {(group.source_id, u) for u in self.mirror.members_of(group.source_id)}
                single = Snapshot(users=self.snapshot.users, groups={group.source_id: group})
                for again in membership_changes(single, current):
                    if again.action is Action.ADD_MEMBERS:
                        await self._member_request(_MemberRequest(group.source_id, again.members))
                return

    async def _member_request(self, request: _MemberRequest) -> None:
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
            audit = AuditEntry(str(action), "membership", request.group, group_tid, None, {"members": sids}, "ok")
            if action is Action.ADD_MEMBERS:
                self.mirror.add_members(request.group, sids, audit)
            else:
                self.mirror.remove_members(request.group, sids, audit)
            self._done(Change(action, request.group, group_tid, group=group, members=tuple(sids)), members=len(sids))


@dataclass(frozen=True, slots=True)
class _MemberRequest:
    """One PATCH of a group's members: adds first, then removes, at most 100 in all."""

    group: str
    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()

    def as_change(self) -> Change:
        """The change this request stands for, for failure reports."""
        action = Action.ADD_MEMBERS if self.add else Action.REMOVE_MEMBERS
        return Change(action, self.group, members=self.add + self.remove)
