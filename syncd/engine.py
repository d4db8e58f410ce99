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
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog

from connectors.base import ReadContext, Source
from syncd.access import AccessRules, access_entries, directory_of
from syncd.access import impact as access_impact
from syncd.aio import bounded
from syncd.applier import Applier
from syncd.changes import AccessChange, Action
from syncd.errors import (
    ConfigError,
    SourceError,
    SyncdError,
)
from syncd.grace import Grace
from syncd.guard import DEFAULT_MEMBER_LIMIT, Limit, check
from syncd.live import LiveState
from syncd.matching import Matches, match_live
from syncd.mirror import Mirror, Owners
from syncd.model import Assignment, Group, Snapshot, User
from syncd.normalise import Scope, build_snapshot
from syncd.plan import Plan, count_changes, make_plan
from syncd.ports import Assigner, CacheLike, Progress
from syncd.results import RunMode, RunResult, RunStatus
from syncd.state import CacheState, Current
from syncd.target.scim import ScimTarget


log = structlog.get_logger("syncd.engine")
_TARGET_CHECKED_KEY = "target_checked_at"  # when the SCIM token was last proven (with target.check_every)

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
        check_every: timedelta = timedelta(0),
    ) -> None:
        self.assigner = assigner
        self.check_every = check_every
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
        mode = (
            RunMode.ASSIGNMENTS
            if options.only_assignments
            else RunMode.FULL_RESYNC
            if options.full_resync
            else RunMode.INCREMENTAL
        )
        run_id: int | None = None
        if not options.dry_run:
            # A plan is not a run: it is not recorded, and it does not close another's.
            self.cache.interrupt_stale_runs()
            run_id = self.cache.start_run(str(mode), options.dry_run)
        bound = log.bind(run_id=run_id, mode=str(mode), dry_run=options.dry_run, source=self.source_type)
        bound.info("run.start")
        result = RunResult(
            RunStatus.FAILED, options.dry_run, mode, Plan(), dict.fromkeys(count_changes([]), 0), {}, 0.0, run_id=run_id
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
                result.status = RunStatus.INTERRUPTED
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
            live, matches = await self._read_live(snapshot, state) if reconcile else (None, None)
            # --only assignments writes no identity: access goes only to groups Identity Center holds.
            # "Now" is read once, here: the plan is a pure value of its inputs (syncd.grace).
            grace = Grace(self.delete_after, datetime.now(UTC))
            plan = make_plan(snapshot, state, live, grace=grace, matches=matches) if not only else Plan()
            if self.assigner is not None:
                groups = snapshot if not only else Snapshot(groups=_known_groups(snapshot, state))
                # What syncd made: what the rules are reconciled with, and the guard's base for removals.
                made, apps = self.cache.assignments(), self.cache.application_assignments()
                assignment_changes = _keep_pending_access(
                    plan, await self._plan_assignments(groups, state, matches, made), state, snapshot
                )
                plan.changes = sorted([*plan.changes, *assignment_changes], key=lambda c: c.phase)
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
                result.status = RunStatus.REFUSED
                result.errors.append(verdict.refused)
                bound.error("run.refused", reason=verdict.refused)
                return result
            if options.dry_run:
                await self._prove_target(dry_run=True)
                result.status = RunStatus.OK
                return result
            if refused:
                result.status = RunStatus.REFUSED
                result.errors.append(refused)
                bound.error("run.refused", reason=refused)
                return result

            result.would_change = None
            if options.progress is not None:
                options.progress.planned(plan)
            mirror = Mirror(self.cache, state, snapshot.groups)
            # A user's manager is sent as the manager's Identity Center id, as it is when sent.
            self.target.manager_id = mirror.user_target
            applier = Applier(
                self.target, mirror, snapshot, bound, self._stop, self.assigner, options.progress, access_only=only
            )
            try:
                await applier.apply(plan, live)
            finally:
                # What landed, even when the run stopped midway.
                result.counts = dict(applier.counts)
                result.errors.extend(applier.errors)
            if self._stop.is_set():
                result.status = RunStatus.INTERRUPTED
            elif applier.errors:
                result.status = RunStatus.FAILED
            else:
                await self._prove_target(dry_run=False)
                result.status = RunStatus.OK
                if not only:  # the identities of this read were not all pushed: read them again
                    self.cache.set_value(self._state_key, read.state)
            if result.access:
                # Kept with the run in the audit trail, for `syncd status`, `syncd access --since`
                # and the status page. A run that did not end ok may not have made every change.
                self.cache.record_all(access_entries(result.access, str(result.status)))
            return result
        except asyncio.CancelledError:
            # Ctrl-C on a one-shot sync: what landed is recorded; the run is marked as cut short.
            result.status = RunStatus.INTERRUPTED
            result.errors.append("the run was cancelled")
            raise
        except SyncdError as exc:
            result.status = RunStatus.FAILED
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
                    str(result.status),
                    result.counts,
                    result.requests,
                    "; ".join(result.errors)[:4000] or None,
                )
            bound.info(
                "run.finished",
                status=str(result.status),
                duration_s=round(result.duration_s, 3),
                requests=result.requests,
                **{k: v for k, v in result.counts.items() if v},
            )

    async def _prove_target(self, *, dry_run: bool) -> None:
        """End a run only once Identity Center has accepted the SCIM token: one cheap read if nothing else did.

        A run that wrote or read Identity Center has its answer already; one that did not (nothing
        changed, or a plan) makes :meth:`ScimTarget.probe`, unless the token was proven within
        ``target.check_every``. So a revoked or expired token fails the next run, changes or not,
        instead of runs staying "ok" until a change meets a burst of 401s.
        """
        now = datetime.now(UTC)
        if not self.target.proven and self.check_every:
            checked = self.cache.get_value(_TARGET_CHECKED_KEY)
            if isinstance(checked, str) and now - datetime.fromisoformat(checked) < self.check_every:
                return
        if not self.target.proven:
            await self.target.probe()
        if self.check_every and not dry_run:
            self.cache.set_value(_TARGET_CHECKED_KEY, now.isoformat())

    async def _plan_assignments(
        self, snapshot: Snapshot, state: CacheState, matches: Matches | None, made: set[Assignment]
    ) -> list[AccessChange]:
        """Assignment changes; an unknown permission set, account or OU fails here, before any write."""
        assert self.assigner is not None
        group_targets = {sid: c.target_id for sid, c in state.groups.items()}
        if matches is not None:
            # Groups a full resync adopts have ids already: their existing assignments count.
            group_targets.update({sid: g.target_id for sid, g in matches.groups.items()})
        return await self.assigner.plan(snapshot, made, group_targets)

    async def _read_live(self, snapshot: Snapshot, state: CacheState) -> tuple[LiveState, Matches]:
        """Everything a full resync compares: users, groups, and members of the groups syncd manages.

        The matches (source to live) are made here, once: the plan and the access plan use them too.
        """
        users, groups = await asyncio.gather(
            self.target.list_users(
                expected=snapshot.users,
                known_ids=(c.target_id for c in state.users.values()),
                owners=Owners(state),
            ),
            self.target.list_groups(),
        )
        live = LiveState(users=users, groups=groups)
        matches = match_live(snapshot, state, live)
        ids = sorted({g.target_id for g in matches.groups.values()})
        members = await bounded(ids, self.target.list_member_ids, 8)
        live.members = dict(zip(ids, members, strict=True))
        log.info("target.read", users=len(users), groups=len(groups), member_lists=len(ids))
        return live, matches


def _known_groups(snapshot: Snapshot, state: CacheState) -> dict[str, Group]:
    """The source's groups that Identity Center already holds (the cache knows their ids)."""
    return {sid: group for sid, group in snapshot.groups.items() if sid in state.groups}


def _keep_pending_access(
    plan: Plan, changes: list[AccessChange], state: CacheState, snapshot: Snapshot
) -> list[AccessChange]:
    """Assignment changes without the deletes of groups waiting for their own delete (syncd.grace).

    A group gone from the source keeps its account and application assignments through the grace period (it has
    no members, so they grant nothing), so one that comes back has them at once; they go with
    the group, in the run that deletes it.
    """
    deleted = {c.source_id for c in plan.changes if c.action is Action.DELETE_GROUP}
    pending = state.groups.keys() - snapshot.groups.keys() - deleted
    if not pending:
        return changes
    # An account or application assignment's source id is its group's.
    deleting = (Action.DELETE_ASSIGNMENT, Action.DELETE_APPLICATION_ASSIGNMENT)
    return [c for c in changes if not (c.action in deleting and c.source_id in pending)]
