"""One run: read the source, plan, guard, apply, record. Knows nothing of a given IdP.

Fail-safe rules this module keeps:

* a source read that fails or says it is incomplete ends the run, and nothing is removed: the
  only writes made before the whole read are the safe ones of :mod:`syncd.early` (adoptions,
  creates, member adds; ``[safety] write_during_read``, see :mod:`syncd.during_read`);
* the guard (:mod:`syncd.guard`) refuses plans that remove too much, before any removal or update;
* each change is recorded in the cache in the same step that confirms it landed, so a run that
  dies midway resumes with no duplicates (a create whose record was lost meets a 409 next time
  and adopts the object it made, found by externalId);
* an authentication failure or an Identity Center that stays unavailable ends the run at once;
  any other failed change is logged, audited and counted, and the run goes on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from connectors.base import ReadContext, Source
from syncd.access import AccessRules, access_entries, directory_of
from syncd.access import impact as access_impact
from syncd.applier import Applier
from syncd.cache.database import JsonText
from syncd.changes import AccessChange, Action
from syncd.during_read import CurrentUsers, EarlyWriter, ReadNotes
from syncd.errors import (
    ConfigError,
    SourceError,
    SyncdError,
)
from syncd.grace import Grace
from syncd.guard import DEFAULT_MEMBER_LIMIT, Limit, check
from syncd.live import LiveState
from syncd.live_read import Expected, list_live, read_matched_members, share_equal_users
from syncd.matching import Matches, match_live
from syncd.mirror import Mirror
from syncd.model import Assignment, Group, Snapshot, SourceRead
from syncd.normalise import Scope, build_snapshot
from syncd.plan import Plan, count_changes, make_plan
from syncd.ports import Assigner, CacheLike, Progress
from syncd.results import RunMode, RunResult, RunStatus
from syncd.state import CacheState
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
        write_during_read: bool = True,
    ) -> None:
        self.write_during_read = write_during_read
        """``[safety] write_during_read``: safe writes start while the source is read (syncd.during_read)."""
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
        self._writer: EarlyWriter | None = None

    def request_stop(self) -> None:
        """Finish the changes in flight, start no new one, end the run as interrupted."""
        self._stop.set()
        if self._writer is not None:
            self._writer.halt()
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
        writer: EarlyWriter | None = None
        live_task: asyncio.Task[LiveState] | None = None
        try:
            # A full resync reads the source in full: the kept state (hundreds of MB of Python
            # objects at 100k users) would only be held for nothing.
            source_state = {} if options.full_resync else self.cache.get_value(self._state_key) or {}
            only = options.only_assignments
            if only and self.assigner is None:
                raise ConfigError(
                    "--only assignments: the config has no [[assignments]], [[permission_sets]] or"
                    " [[applications]] to apply"
                )
            # Reconcile against live Identity Center (a full resync); not to be confused with a
            # connector's full read of the IdP (ReadContext.full).
            reconcile = (options.full_resync or self.cache.managed_counts() == (0, 0)) and not only
            if reconcile and not options.full_resync:
                bound.info("run.first", reason="the cache is empty: reading Identity Center to adopt what it holds")
            expected = Expected()
            if reconcile:
                # Identity Center is read while the source is: both are reads, and the plan waits for both.
                live_task = asyncio.create_task(list_live(self.target, *self.cache.target_ids(), expected))
            early = self.write_during_read and not (options.dry_run or options.approve or only)
            notes = ReadNotes() if early else None
            if notes is not None:
                writer = EarlyWriter(
                    notes=notes,
                    cache=self.cache,
                    target=self.target,
                    scope=self.scope,
                    grace=Grace(self.delete_after, datetime.now(UTC)),
                    log=bound,
                    stop=self._stop,
                    progress=options.progress,
                    live=live_task,
                )
                self._writer = writer
                if self._stop.is_set():
                    writer.halt()
            ctx = ReadContext(
                scope=self.scope, full=options.full_resync or not source_state, state=source_state, listener=notes
            )
            read = await self._read_source(ctx, writer, live_task)
            del ctx, source_state  # the last read's state: what the connector kept of it is in read.state
            # Saved at the end of an ok run (never by a dry run, nor by --only assignments: the
            # identities of this read were not all pushed, so the next run reads them again); held
            # until then as text, not as the connector's objects.
            source_state_text = None if options.dry_run or only else JsonText(read.state)
            read.state = {}
            read_requests = read.requests
            if not read.complete:
                raise SourceError(f"the {self.source_type} source returned an incomplete read; nothing was removed")
            if writer is not None:
                writer.release()  # the partial snapshot goes before the final one is built
            # A userName or email two users share goes to the one Identity Center holds (the cache
            # knows it), one created during the read among them (syncd.early); else to the smaller id.
            held = self.cache.user_ids()
            snapshot = build_snapshot(read, self.scope, prefer=held, consume=True)
            del held
            expected.users = snapshot.users
            # The snapshot holds all the run needs (its build let the users go): let the groups go too.
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

            live: LiveState | None = None
            matches: Matches | None = None
            if live_task is not None and not self._stop.is_set():
                live = await live_task
                live_task = None  # the run holds Identity Center's state as ``live`` alone (dropped after the apply)
                # Before the cache loads: each Identity Center user equal to its source user lets
                # its attributes' text go (some 20 MB at 100k users, at what was the peak).
                share_equal_users(live, snapshot.users)
            # Loaded after the read: a user whose digest is unchanged needs no write, so the cache
            # leaves out what was last pushed for it (about half the memory of 100k users). After
            # early writes it holds them: the plan below sends nothing twice.
            # On a full resync, the Identity Center ids it has read are the strings the cache keeps.
            state = self.cache.load(current=CurrentUsers(snapshot.users), targets=self.target.user_ids)
            if self._stop.is_set():
                # Asked to stop during a long read: what was written early is recorded; nothing was removed.
                result.status = RunStatus.INTERRUPTED
                return result
            if live is not None:
                if writer is not None:
                    writer.live = None
                    writer.patch_live(live, state, snapshot.users)
                matches = match_live(snapshot, state, live)
                await read_matched_members(self.target, live, matches)
                self.target.forget_user_ids()  # the last member listing is read
            # --only assignments writes no identity: access goes only to groups Identity Center holds.
            # "Now" is read once, here: the plan is a pure value of its inputs (syncd.grace).
            grace = Grace(self.delete_after, datetime.now(UTC))
            plan = make_plan(snapshot, state, live, grace=grace, matches=matches) if not only else Plan()
            if writer is not None:
                writer.not_again(plan)
                writer.adjust_base(plan, state)
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
                del groups
            result.plan = plan
            result.would_change = plan.counts()
            verdict = check(plan, self.limit, member_limit=self.member_limit, allow_deletions=options.allow_deletions)
            refused = verdict.refused or (options.approve(plan, snapshot) if options.approve is not None else None)
            if verdict.refused:
                result.status = RunStatus.REFUSED
                reason = writer.explain(verdict.refused) if writer is not None else verdict.refused
                result.errors.append(reason)
                bound.error("run.refused", reason=reason)
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
            # The directory, the cache's state and Identity Center's go before the source's state is
            # written: the write holds its text twice over (hundreds of MB at 100k users otherwise).
            apply_failed = bool(applier.errors)
            del applier, mirror, state, snapshot, live, matches
            expected.users = {}
            self.target.manager_id = None
            if self._stop.is_set():
                result.status = RunStatus.INTERRUPTED
            elif apply_failed or (writer is not None and writer.errors):
                result.status = RunStatus.FAILED
            else:
                await self._prove_target(dry_run=False)
                result.status = RunStatus.OK
                if source_state_text is not None:
                    self.cache.set_value(self._state_key, source_state_text)
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
            await _settle(writer, live_task)
            self._writer = None
            if writer is not None:
                # What landed during the read counts with the rest (sync --json, the runs table).
                result.counts = {k: v + writer.counts.get(k, 0) for k, v in result.counts.items()}
                result.errors[:0] = writer.errors
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

    async def _read_source(
        self, ctx: ReadContext, writer: EarlyWriter | None, live_task: asyncio.Task[LiveState] | None
    ) -> SourceRead:
        """The source's read, with the early writes and Identity Center's read beside it.

        When the read ends, the early round in flight lands and no other starts. Should the
        early writes or Identity Center's read fail first (a refused token, say), the source's
        read is cancelled and the run fails with that error.
        """
        read_task = asyncio.ensure_future(self.source.read(ctx))
        side: set[asyncio.Future[Any]] = {t for t in (live_task,) if t is not None}
        writer_task = asyncio.ensure_future(writer.run()) if writer is not None else None
        if writer_task is not None:
            side.add(writer_task)
        try:
            while True:
                done, _ = await asyncio.wait({read_task, *side}, return_when=asyncio.FIRST_COMPLETED)
                if read_task in done:
                    break
                for task in done:
                    side.discard(task)
                    error = None if task.cancelled() else task.exception()
                    if error is not None:
                        raise error
            if read_task.cancelled() or read_task.exception() is not None or not read_task.result().complete:
                if writer is not None:
                    writer.halt()  # nothing more is written for a read that failed
            elif writer is not None:
                writer.end()
            if writer_task is not None:
                await writer_task
            try:
                return read_task.result()
            except SourceError:
                raise
            except Exception as exc:  # a connector bug must not look like an empty directory
                raise SourceError(f"the {self.source_type} source failed: {exc!r}") from exc
        finally:
            if not read_task.done():
                read_task.cancel()
                await asyncio.wait({read_task})
            if writer is not None and writer_task is not None and not writer_task.done():
                # The run failed or was cancelled: the writes in flight land, and no other starts.
                writer.halt()
                await asyncio.wait({writer_task})


async def _settle(writer: EarlyWriter | None, live_task: asyncio.Task[LiveState] | None) -> None:
    """No early round and no read of Identity Center outlives the run."""
    if writer is not None:
        writer.end()
    if live_task is not None and not live_task.done():
        live_task.cancel()
        await asyncio.wait({live_task})


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
