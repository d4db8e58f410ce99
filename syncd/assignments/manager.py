"""The engine's :class:`~syncd.engine.Assigner`: plan and apply account assignments.

``plan`` reads AWS once (instance, permission sets, accounts, OUs), resolves the rules (an
unknown permission set, account or OU raises :class:`~syncd.errors.AssignmentError` before any
write), lists the assignments that exist in each (account, permission set) pair in scope, and
reconciles (:mod:`syncd.assignments.reconcile`). ``apply`` runs the changes:

* create and delete are asynchronous in sso-admin: each is polled with
  ``describe_account_assignment_{creation,deletion}_status`` with backoff until SUCCEEDED or
  FAILED (botocore has no waiter for them, docs/references.md §B.1);
* at most :data:`MAX_IN_FLIGHT` operations are outstanding at once (CreateAccountAssignment
  allows 15 outstanding calls, docs/references.md §B.1 quotas), counting each from its request
  to its final status (the worker pool of :func:`syncd.aio.bounded_landing`);
* ConflictException and ThrottlingException (and a few other passing errors, :data:`RETRYABLE`)
  are retried with backoff and full jitter under the one retry policy (:mod:`syncd.retry`);
  ConflictException is what a write racing an unpropagated earlier one gets
  (docs/references.md §B.1; aws-samples/iam-identity-center-team#513);
* one failed operation never raises: ``on_done(change, reason)`` reports it and the rest go on.
  Errors that every later call would meet too (access denied, bad credentials) stop new
  operations from starting; those are reported as not attempted.

boto3 is synchronous: each AWS call runs in a thread (``asyncio.to_thread``); waits between
polls and retries are ``asyncio`` sleeps (injectable, so tests never wait).
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar

import structlog
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from syncd.aio import bounded, bounded_landing
from syncd.assignments.access_code import AccessCode, AccessStore
from syncd.assignments.aws import AwsAccess, error_code, error_text
from syncd.assignments.aws_resources import ResourcesApi
from syncd.assignments.config import ApplicationRule, AssignmentRule, PermissionSetConfig
from syncd.assignments.permission_sets import PENDING, PermissionSetPlan
from syncd.assignments.reconcile import before, reconcile
from syncd.assignments.resolve import resolve
from syncd.changes import (
    ACCESS,
    AccessChange,
    Action,
    ApplicationAssignmentChange,
    AssignmentChange,
    Change,
    PermissionSetStep,
)
from syncd.errors import AssignmentError
from syncd.model import Assignment, Snapshot
from syncd.retry import Backoff as RetryBackoff
from syncd.retry import RetryPolicy, retries_made
from syncd.state import AuditEntry, AuditKind


if TYPE_CHECKING:
    import boto3

    from syncd.config import Settings


__all__ = [
    "LIST_CONCURRENCY",
    "MAX_IN_FLIGHT",
    "RETRYABLE",
    "AssignmentManager",
    "AssignmentStore",
    "Backoff",
    "build_assigner",
]

log = structlog.get_logger("syncd.assignments")

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]
"""An ``asyncio.sleep``-like coroutine function."""

MAX_IN_FLIGHT: Final = 10
"""Create/delete operations outstanding at once: under the CreateAccountAssignment quota of 15
(docs/references.md §B.1 quotas; older documentation said 10), leaving room for other tools."""

LIST_CONCURRENCY: Final = 8
"""list_account_assignments pairs read at once while planning."""

RETRYABLE: Final = frozenset(
    {
        "ConflictException",
        "ThrottlingException",
        "TooManyRequestsException",
        "ServiceQuotaExceededException",  # the 15 outstanding creates are shared with other callers
        "InternalServerException",
    }
)
"""Error codes retried with backoff (botocore's adaptive mode has retried throttling already)."""

HALTING: Final = frozenset(
    {
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ExpiredTokenException",
        "InvalidSignatureException",
    }
)
"""Error codes every later call would meet too: no new operation starts after one."""


class _Status(Protocol):
    """An asynchronous operation's state (OperationStatus, ProvisionStatus)."""

    @property
    def status(self) -> str: ...
    @property
    def request_id(self) -> str: ...
    @property
    def failure_reason(self) -> str | None: ...


class _Skipped:
    """An operation that turned out to have nothing to do (on_done is not called)."""


_SKIPPED: Final = _Skipped()


@dataclass(frozen=True, slots=True)
class Backoff:
    """Waits between retries and between status checks, in seconds.

    Retries wait ``min(retry_max, retry_base * 2**n)`` with full jitter; checks start at
    ``poll_first`` and grow by ``poll_factor`` up to ``poll_max``. After ``poll_limit`` checks
    (about 19 minutes with the defaults) an operation still IN_PROGRESS is reported failed.
    """

    retry_attempts: int = 8
    retry_base: float = 1.0
    retry_max: float = 20.0
    poll_first: float = 1.0
    poll_factor: float = 1.5
    poll_max: float = 10.0
    poll_limit: int = 120


class AssignmentStore(AccessStore, Protocol):
    """What :meth:`AssignmentManager.record` needs of :class:`syncd.cache.Cache`."""

    def put_assignment(self, assignment: Assignment, audit: AuditEntry | None = None) -> None: ...
    def forget_assignment(self, assignment: Assignment, audit: AuditEntry | None = None) -> None: ...
    def record(self, audit: AuditEntry) -> None: ...


class AssignmentManager:
    """Plans and applies the account assignments the ``[[assignments]]`` rules ask for.

    Implements :class:`syncd.engine.Assigner`. One manager serves one run at a time.
    """

    def __init__(
        self,
        rules: Sequence[AssignmentRule],
        aws: AwsAccess,
        store: AssignmentStore | None = None,
        *,
        sleep: Sleep = asyncio.sleep,
        backoff: Backoff = Backoff(),
        max_in_flight: int = MAX_IN_FLIGHT,
        jitter: Callable[[], float] = random.random,
        permission_sets: Sequence[PermissionSetConfig] = (),
        applications: Sequence[ApplicationRule] = (),
    ) -> None:
        """Args:
        rules: the ``[[assignments]]`` tables, in order (errors name them by index).
        aws: the boto3 seam.
        store: the cache, for :meth:`record` (None if the caller records outcomes itself).
        sleep: waits between retries and status checks (tests pass one that does not wait).
        backoff: how long those waits are.
        max_in_flight: create/delete operations outstanding at once.
        jitter: a number in [0, 1) per retry wait.
        permission_sets, applications: the ``[[permission_sets]]`` and ``[[applications]]`` tables.
        """
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self.rules = list(rules)
        self.aws = aws
        self.store = store
        self.backoff = backoff
        self.max_in_flight = max_in_flight
        self._sleep = sleep
        self._jitter = jitter
        self._halted: str | None = None
        self.access = AccessCode(permission_sets, applications, ResourcesApi(aws), store, self._call, self._settle)

    def request_stop(self) -> None:
        """Start no new operation; those in flight are polled to their end and reported.

        For the engine's own ``request_stop``. Operations not started are reported as not attempted.
        """
        self._halted = "the run was asked to stop"

    # -- plan ------------------------------------------------------------------------------

    async def plan(
        self, snapshot: Snapshot, made: set[Assignment], group_targets: Mapping[str, str]
    ) -> list[AccessChange]:
        """The CREATE_ASSIGNMENT and DELETE_ASSIGNMENT changes that bring AWS to what the rules want.

        Starts a new run: a stop requested during the previous one is forgotten.

        Reads AWS only. ``made`` holds the assignments syncd created (the cache);
        ``group_targets`` maps group source ids to Identity Center ids for every group known now
        (cached, and adopted ones): only assignments of those groups are seen in AWS.

        Raises:
            AssignmentError: a rule names a permission set, account or OU that does not exist,
                or AWS could not be read.
        """
        self._halted = None
        ous = [ou for rule in self.rules for ou in rule.ous or ()]
        directory = await asyncio.to_thread(self.aws.directory, ous)
        ps_plan, pending = PermissionSetPlan(), dict[str, str]()
        access = self.access.active  # one look at the config and the cache for the whole plan
        if access:
            ps_plan, pending = await self.access.plan_permission_sets(directory.permission_sets)
        if pending:
            # Rules may name a permission set this run creates: it resolves to a stand-in ARN.
            directory = dataclasses.replace(directory, permission_sets={**directory.permission_sets, **pending})
        resolution = resolve(self.rules, snapshot.groups.values(), directory)
        for warning in resolution.warnings:
            log.warning("assignments.skipped", reason=warning)

        def readable(a: Assignment) -> bool:
            account = directory.accounts.get(a.account_id)
            return (
                account is not None
                and account.active
                and a.permission_set_arn in directory.permission_sets
                and not a.permission_set_arn.startswith(PENDING)
            )

        frozen = {
            a.account_id
            for a in made
            if a.account_id in directory.accounts and not directory.accounts[a.account_id].active
        }
        pairs = sorted({(a.account_id, a.permission_set_arn) for a in (*resolution.desired, *made) if readable(a)})
        existing = await self._existing(pairs, group_targets)
        accounts = reconcile(
            resolution.desired,
            existing,
            made,
            group_targets,
            synced_groups=snapshot.groups.keys(),
            frozen_accounts=frozen,
        )
        changes: list[AccessChange] = [*accounts]
        if access:
            await self.access.check_deletions(ps_plan, accounts, resolution.desired)
            changes = [*ps_plan.changes, *accounts, *await self.access.plan_applications(snapshot, group_targets)]
        log.info(
            "assignments.planned",
            desired=len(resolution.desired),
            existing=len(existing),
            made=len(made),
            pairs_read=len(pairs),
            create=sum(c.action is Action.CREATE_ASSIGNMENT for c in changes),
            delete=sum(c.action is Action.DELETE_ASSIGNMENT for c in changes),
        )
        return changes

    async def _existing(self, pairs: list[tuple[str, str]], group_targets: Mapping[str, str]) -> dict[Assignment, str]:
        """The assignments AWS holds in ``pairs`` for known groups: assignment → principal id."""
        group_of = {target: source for source, target in group_targets.items()}

        async def read(pair: tuple[str, str]) -> frozenset[str]:
            return await asyncio.to_thread(self.aws.group_principals, *pair)

        results = await bounded(pairs, read, LIST_CONCURRENCY)
        existing: dict[Assignment, str] = {}
        for (account_id, arn), principals in zip(pairs, results, strict=True):
            for principal in principals:
                source = group_of.get(principal)
                if source is not None:
                    existing[Assignment(source, account_id, arn)] = principal
        return existing

    # -- apply -----------------------------------------------------------------------------

    async def apply(
        self,
        changes: Sequence[Change],
        group_targets: Mapping[str, str],
        on_done: Callable[[Change, str | None], None],
    ) -> None:
        """Run ``changes`` (from :meth:`plan`) in order: permission sets created, updated, adopted
        or forgotten; then account and application assignments; then permission sets
        re-provisioned; then permission sets deleted (only those whose assignments all went).

        ``group_targets``, ``on_done`` and errors as in :meth:`_apply_accounts`. An assignment of
        a permission set whose create failed is reported failed and not attempted.
        """
        for change in changes:
            if change.action not in ACCESS:
                raise TypeError(f"not an assignment change: {change.action} {change.label()}")
        sets: list[PermissionSetStep] = []
        provision: list[PermissionSetStep] = []
        delete: list[PermissionSetStep] = []
        apps: list[ApplicationAssignmentChange] = []
        planned: list[AssignmentChange] = []
        for change in changes:
            match change:
                case PermissionSetStep() if change.action is Action.PROVISION_PERMISSION_SET:
                    provision.append(change)
                case PermissionSetStep() if change.action is Action.DELETE_PERMISSION_SET:
                    delete.append(change)
                case PermissionSetStep():
                    sets.append(change)
                case ApplicationAssignmentChange():
                    apps.append(change)
                case AssignmentChange():
                    planned.append(change)
                case _:
                    raise TypeError(f"not an assignment change: {change.action} {change.label()}")
        kept: set[str] = set()

        def done(change: Change, error: str | None) -> None:
            if error is not None and isinstance(change, AssignmentChange) and change.action is Action.DELETE_ASSIGNMENT:
                kept.add(change.assignment.permission_set_arn)
            on_done(change, error)

        if sets:
            await self.access.apply_permission_sets(sets, done)
        accounts: list[AssignmentChange] = []
        for account_change in planned:
            arn = account_change.assignment.permission_set_arn
            real = self.access.real_arn(arn)
            if real is None:
                done(
                    account_change,
                    f"{account_change.action} {account_change.label()}: not attempted: {self.access.why_missing(arn)}",
                )
                continue
            if real != arn:
                account_change = dataclasses.replace(
                    account_change, assignment=dataclasses.replace(account_change.assignment, permission_set_arn=real)
                )
            accounts.append(account_change)
        await asyncio.gather(
            self._apply_accounts(accounts, group_targets, done),
            self.access.apply_applications(apps, group_targets, done),
        )
        if provision:
            await self.access.provision(provision, done)
        deletable: list[PermissionSetStep] = []
        for step in delete:
            if step.target_id in kept:
                done(step, f"{step.action} {step.source_id}: kept, an assignment of it could not be deleted")
            else:
                deletable.append(step)
        if deletable:
            await self.access.delete_permission_sets(deletable, done)

    async def _apply_accounts(
        self,
        changes: Sequence[Change],
        group_targets: Mapping[str, str],
        on_done: Callable[[Change, str | None], None],
    ) -> None:
        """Run account assignment ``changes``, at most ``max_in_flight`` at a time.

        ``group_targets`` must hold the Identity Center ids of the groups as they are now (after
        the groups phase). ``on_done(change, None)`` is called when an operation SUCCEEDED (for
        a create, the change then carries the group's id as ``target_id``), and
        ``on_done(change, reason)`` when it FAILED or its retries ran out. A create whose
        assignment turns out to exist already (made outside syncd, for a group that got its id
        during this run) is logged and not reported: syncd did nothing and does not claim it.

        Never raises for a failed operation. An exception raised by ``on_done`` itself stops
        new operations from starting, and is raised once those in flight have ended.
        """
        planned: list[AssignmentChange] = []
        for change in changes:
            if not isinstance(change, AssignmentChange):
                raise TypeError(f"not an assignment change: {change.action} {change.label()}")
            planned.append(change)

        async def one(change: AssignmentChange) -> None:
            outcome, done = await self._run(change, group_targets)
            if isinstance(outcome, _Skipped):
                return
            try:
                on_done(done, outcome)
            except BaseException as exc:
                self._halted = f"recording an earlier outcome failed ({exc!r})"
                raise

        await bounded_landing(planned, one, self.max_in_flight)

    async def _run(
        self, change: AssignmentChange, group_targets: Mapping[str, str]
    ) -> tuple[str | _Skipped | None, AssignmentChange]:
        """One operation to its end: (None on success, or why it failed, or _SKIPPED; the change to report)."""
        assignment = change.assignment
        creating = change.action is Action.CREATE_ASSIGNMENT
        verb = "create" if creating else "delete"
        if self._halted is not None:
            return f"{verb} {assignment.describe()}: not attempted: {self._halted}", change
        try:
            if creating:
                return await self._create(change, assignment, group_targets)
            return await self._delete(change, assignment), change
        except Exception as exc:  # one operation must never end the others
            if error_code(exc) in HALTING or isinstance(exc, NoCredentialsError):
                self._halted = f"an earlier operation was refused: {error_text(exc)}"
            reason = error_text(exc) if isinstance(exc, ClientError | BotoCoreError) else str(exc) or repr(exc)
            log.error("assignment.failed", action=verb, assignment=assignment.describe(), error=reason)
            return f"{verb} {assignment.describe()}: {reason}", change

    async def _create(
        self, change: AssignmentChange, assignment: Assignment, group_targets: Mapping[str, str]
    ) -> tuple[str | _Skipped | None, AssignmentChange]:
        principal = group_targets.get(assignment.group)
        if principal is None:
            return (
                f"create {assignment.describe()}: the group has no Identity Center id (its create failed);"
                " access not assigned",
                change,
            )
        done = dataclasses.replace(change, target_id=principal)
        if change.target_id != principal:
            # The group got its id during this run (created, adopted or recreated), so the plan
            # could not see its assignments: look first, and never claim one made by someone else.
            held = await asyncio.to_thread(
                self.aws.group_principals, assignment.account_id, assignment.permission_set_arn
            )
            if principal in held:
                log.info("assignment.exists", assignment=assignment.describe(), note="made outside syncd; left alone")
                return _SKIPPED, done
        status = await self._call(
            self.aws.start_create, assignment.account_id, assignment.permission_set_arn, principal
        )
        return await self._settle(f"create {assignment.describe()}", status, self.aws.creation_status), done

    async def _delete(self, change: AssignmentChange, assignment: Assignment) -> str | None:
        if change.target_id is None:
            return None  # gone from AWS already: only the record goes
        try:
            status = await self._call(
                self.aws.start_delete, assignment.account_id, assignment.permission_set_arn, change.target_id
            )
        except ClientError as exc:
            # moto answers a delete of a missing assignment with ResourceNotFoundException
            # (docs/references.md §C.1); what AWS answers is unconfirmed, but either way nothing is left.
            if error_code(exc) == "ResourceNotFoundException":
                log.info("assignment.already_gone", assignment=assignment.describe())
                return None
            raise
        return await self._settle(f"delete {assignment.describe()}", status, self.aws.deletion_status)

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a thread, retrying :data:`RETRYABLE` errors with backoff and full jitter."""
        policy = RetryPolicy(
            attempts=max(1, self.backoff.retry_attempts),
            backoff=RetryBackoff(initial=self.backoff.retry_base, maximum=self.backoff.retry_max, full_jitter=True),
        )
        retries = 0

        def passing(exc: Exception) -> bool:
            return isinstance(exc, ClientError) and error_code(exc) in RETRYABLE

        def announce(seconds: float, exc: Exception) -> None:
            nonlocal retries
            retries += 1
            log.warning("assignment.retry", code=error_code(exc), attempt=retries, wait_s=round(seconds, 2))

        try:
            return await policy.run(
                lambda: asyncio.to_thread(fn, *args),
                on=passing,
                sleep=self._sleep,
                rng=self._jitter,
                before_retry=announce,
            )
        except ClientError as exc:
            if not passing(exc):
                raise
            raise AssignmentError(f"{error_text(exc)} (still, after {retries_made(exc) + 1} attempts)") from exc

    async def _settle(self, what: str, status: _Status, check: Callable[[str], Any]) -> str | None:
        """Poll an asynchronous operation (``what`` names it) until SUCCEEDED (None) or FAILED (the reason)."""
        delay = self.backoff.poll_first
        checks = 0
        while status.status == "IN_PROGRESS":
            if checks >= self.backoff.poll_limit:
                return (
                    f"{what}: still IN_PROGRESS after {checks} status checks"
                    f" (request {status.request_id}); the next run looks again"
                )
            await self._sleep(delay)
            checks += 1
            status = await self._call(check, status.request_id)
            delay = min(delay * self.backoff.poll_factor, self.backoff.poll_max)
        if status.status == "SUCCEEDED":
            log.info("assignment.done", operation=what, checks=checks)
            return None
        if status.status == "FAILED":
            reason = status.failure_reason or "AWS gave no reason"
            log.error("assignment.failed", operation=what, error=reason)
            return f"{what} FAILED: {reason} (request {status.request_id})"
        return f"{what}: unexpected status {status.status!r} (request {status.request_id})"

    # -- recording -------------------------------------------------------------------------

    def record(self, change: Change, error: str | None) -> None:
        """Write one outcome of :meth:`apply` to the cache, with its audit entry.

        What the engine's ``on_done`` does: a created assignment is recorded as syncd's, a
        deleted one forgotten, a failed one only audited.
        """
        if isinstance(change, PermissionSetStep | ApplicationAssignmentChange):
            self.access.record(change, error)
            return
        if not isinstance(change, AssignmentChange):
            raise TypeError(f"not an assignment change: {change.action} {change.label()}")
        if self.store is None:
            raise RuntimeError("this AssignmentManager has no store to record outcomes in")
        assignment = change.assignment
        creating = change.action is Action.CREATE_ASSIGNMENT
        after = before(assignment, change.target_id) if creating else None
        result = f"failed: {error}" if error else (f"ok: {change.reason}" if change.reason else "ok")
        audit = AuditEntry(
            change.action,
            AuditKind.ASSIGNMENT,
            assignment.group,
            change.target_id,
            dict(change.before) if change.before else None,
            after if error is None else None,
            result,
        )
        if error is not None:
            self.store.record(audit)
        elif creating:
            self.store.put_assignment(assignment, audit)
        else:
            self.store.forget_assignment(assignment, audit)


def build_assigner(
    settings: Settings, cache: AssignmentStore | None, *, session: boto3.Session | None = None
) -> AssignmentManager | None:
    """The manager for ``settings``, or None when the config asks for no access and syncd made none.

    The config asks for access with ``[[assignments]]``, ``[[permission_sets]]`` or
    ``[[applications]]``; when all are gone but the cache still holds permission sets or
    application assignments syncd made, the manager runs so that it can remove them.
    ``session`` defaults to a new ``boto3.Session()`` (boto3's standard credential chain).

    Raises:
        AssignmentError: no AWS region is configured anywhere.
    """
    configured = settings.assignments or settings.permission_sets or settings.applications
    if not configured and (cache is None or not cache.owns_access()):
        return None
    if session is None:
        import boto3

        session = boto3.Session()
    return AssignmentManager(
        settings.assignments,
        AwsAccess.from_session(session, settings.aws),
        cache,
        permission_sets=settings.permission_sets,
        applications=settings.applications,
    )
