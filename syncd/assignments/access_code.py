"""Permission sets and application assignments: read AWS, plan, apply, record.

Used by :class:`~syncd.assignments.manager.AssignmentManager`, which owns the run: it calls
:meth:`AccessCode.plan_permission_sets` before resolving the assignment rules (so that rules may
name a permission set this run creates, through its stand-in ARN), :meth:`AccessCode.check_deletions`
once the assignment changes are known, and :meth:`AccessCode.plan_applications`. At apply time it
runs :meth:`apply_permission_sets` first, then the account and application assignments, then
:meth:`provision`, then :meth:`delete_permission_sets`.

Each AWS call goes through the manager's ``call`` (a thread, with retries of passing errors).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import structlog
from botocore.exceptions import ClientError

from syncd.aio import bounded, bounded_landing
from syncd.assignments.applications import reconcile_applications, resolve_applications
from syncd.assignments.aws import error_code, error_text
from syncd.assignments.aws_resources import ResourcesApi
from syncd.assignments.config import ApplicationRule, PermissionSetConfig
from syncd.assignments.permission_sets import (
    PENDING,
    Owned,
    PermissionSetPlan,
    pending_arn,
    plan_permission_sets,
    steps,
)
from syncd.changes import Action, ApplicationAssignmentChange, AssignmentChange, Change, PermissionSetStep
from syncd.errors import AssignmentError
from syncd.model import ApplicationAssignment, Assignment, Snapshot
from syncd.state import AuditEntry, AuditKind


__all__ = ["PROVISION_IN_FLIGHT", "AccessCode", "AccessStore"]

log = structlog.get_logger("syncd.assignments")

T = TypeVar("T")
Call = Callable[..., Awaitable[Any]]
Settle = Callable[[str, Any, Callable[[str], Any]], Awaitable[str | None]]
OnDone = Callable[[Change, str | None], None]

READS_IN_FLIGHT = 8
"""sso-admin reads at once while planning (as the account assignment reads)."""

PROVISION_IN_FLIGHT = 3
"""ProvisionPermissionSet calls at once: Identity Center allows 3 concurrent ones
(https://docs.aws.amazon.com/singlesignon/latest/userguide/limits.html)."""

PERMISSION_SET_ACTIONS = frozenset(
    {
        Action.CREATE_PERMISSION_SET,
        Action.UPDATE_PERMISSION_SET,
        Action.ADOPT_PERMISSION_SET,
        Action.FORGET_PERMISSION_SET,
        Action.PROVISION_PERMISSION_SET,
        Action.DELETE_PERMISSION_SET,
    }
)
APPLICATION_ACTIONS = frozenset({Action.CREATE_APPLICATION_ASSIGNMENT, Action.DELETE_APPLICATION_ASSIGNMENT})


class AccessStore(Protocol):
    """What :class:`AccessCode` needs of :class:`syncd.cache.Cache`."""

    def owned_permission_sets(self) -> Mapping[str, Any]: ...
    def owns_access(self) -> bool: ...
    def put_permission_set(self, name: str, arn: str, origin: Any, audit: AuditEntry | None = None) -> None: ...
    def forget_permission_set(self, name: str, audit: AuditEntry | None = None) -> None: ...
    def application_assignments(self) -> set[ApplicationAssignment]: ...
    def put_application_assignment(
        self, assignment: ApplicationAssignment, audit: AuditEntry | None = None
    ) -> None: ...
    def forget_application_assignment(
        self, assignment: ApplicationAssignment, audit: AuditEntry | None = None
    ) -> None: ...
    def record(self, audit: AuditEntry) -> None: ...


class AccessCode:
    """The ``[[permission_sets]]`` and ``[[applications]]`` of one configuration."""

    def __init__(
        self,
        permission_sets: Sequence[PermissionSetConfig],
        applications: Sequence[ApplicationRule],
        api: ResourcesApi,
        store: AccessStore | None,
        call: Call,
        settle: Settle,
    ) -> None:
        """Args:
        permission_sets, applications: the config's tables, in order.
        api: the boto3 seam.
        store: the cache (None: nothing is owned, and outcomes are not recorded).
        call: runs one AWS call in a thread with retries (the manager's).
        settle: polls an asynchronous operation to its end (the manager's).
        """
        self.permission_sets = list(permission_sets)
        self.applications = list(applications)
        self.api = api
        self.store = store
        self._call = call
        self._settle = settle
        self._created: dict[str, str] = {}
        self._failed: dict[str, str] = {}

    @property
    def active(self) -> bool:
        """Whether the config has anything for this class to do (or the cache something to clean up)."""
        if self.permission_sets or self.applications:
            return True
        return self.store is not None and self.store.owns_access()

    # -- plan ------------------------------------------------------------------------------

    async def plan_permission_sets(self, in_aws: Mapping[str, str]) -> tuple[PermissionSetPlan, dict[str, str]]:
        """The permission-set changes, and the stand-in ARN → name of each one this run creates.

        ``in_aws`` maps every permission set's ARN to its name (the assignment directory).

        Raises:
            AssignmentError: a configured permission set exists and syncd does not own it.
        """
        by_name = {name: arn for arn, name in in_aws.items()}
        owned_rows = self.store.owned_permission_sets() if self.store is not None else {}
        owned = {name: Owned(row.name, row.arn, row.origin) for name, row in owned_rows.items()}
        manageable = [
            c
            for c in self.permission_sets
            if c.name in by_name and (c.adopt or (c.name in owned and owned[c.name].arn == by_name[c.name]))
        ]
        specs = await bounded(
            manageable,
            lambda c: asyncio.to_thread(self.api.read_permission_set, c.name, by_name[c.name]),
            READS_IN_FLIGHT,
        )
        current = {c.name: spec for c, spec in zip(manageable, specs, strict=True)}
        outdated_lists = await bounded(
            list(current),
            lambda n: asyncio.to_thread(self.api.provisioned_accounts, by_name[n], outdated=True),
            READS_IN_FLIGHT,
        )
        outdated = {name: accounts for name, accounts in zip(current, outdated_lists, strict=True) if accounts}
        plan = plan_permission_sets(self.permission_sets, by_name, current, owned, outdated)
        if plan.errors:
            raise AssignmentError("; ".join(plan.errors))
        pending = {
            pending_arn(c.source_id): c.source_id for c in plan.changes if c.action is Action.CREATE_PERMISSION_SET
        }
        return plan, pending

    async def check_deletions(
        self, plan: PermissionSetPlan, assignment_changes: Iterable[AssignmentChange], desired: Iterable[Assignment]
    ) -> None:
        """Refuse, before any write, to delete a permission set that assignments would still use.

        Raises:
            AssignmentError: naming each assignment that still uses a permission set leaving the config.
        """
        deleting = plan.deleting
        if not deleting:
            return
        problems: list[str] = []
        for assignment in desired:
            if assignment.permission_set_arn in deleting:
                problems.append(
                    f"{assignment.describe()} is still wanted by an [[assignments]] rule"
                    f" (permission set {deleting[assignment.permission_set_arn]!r} left [[permission_sets]])"
                )
        going = {
            (c.assignment.account_id, c.assignment.permission_set_arn, c.target_id)
            for c in assignment_changes
            if c.action is Action.DELETE_ASSIGNMENT
        }
        for arn, name in sorted(deleting.items()):
            accounts = await asyncio.to_thread(self.api.provisioned_accounts, arn)
            holders = await asyncio.to_thread(self.api.principals_using, arn, accounts)
            for account, kind, principal in holders:
                if (account, arn, principal) not in going:
                    problems.append(
                        f"permission set {name!r} is still assigned to {kind.lower()} {principal} in account {account}"
                    )
        if problems:
            raise AssignmentError(
                "cannot delete permission sets that are still in use (remove those assignments first, or keep the"
                " permission set in [[permission_sets]]): " + "; ".join(problems)
            )

    async def plan_applications(
        self, snapshot: Snapshot, group_targets: Mapping[str, str]
    ) -> list[ApplicationAssignmentChange]:
        """Application assignment changes; unknown applications fail here, before any write.

        Applications that need an assignment (``AssignmentRequired``) and that no rule gives to a
        synced group are logged (``applications.unassigned``): nobody syncd provisions can use them.

        Raises:
            AssignmentError: a rule names an application that does not exist, or several of that name.
        """
        made = self.store.application_assignments() if self.store is not None else set()
        if not self.applications and not made:
            return []
        apps = await asyncio.to_thread(self.api.applications)
        names = {a.arn: a.name for a in apps}
        resolution = resolve_applications(self.applications, snapshot.groups.values(), names)
        if resolution.errors:
            raise AssignmentError("; ".join(resolution.errors))
        group_of = {target: source for source, target in group_targets.items()}
        wanted_apps = sorted({a.application_arn for a in (*resolution.desired, *made) if a.application_arn in names})
        held = await bounded(
            wanted_apps, lambda arn: asyncio.to_thread(self.api.application_groups, arn), READS_IN_FLIGHT
        )
        existing: dict[ApplicationAssignment, str] = {}
        for arn, principals in zip(wanted_apps, held, strict=True):
            for principal in principals:
                source = group_of.get(principal)
                if source is not None:
                    existing[ApplicationAssignment(source, arn)] = principal
        uncovered = [a for a in apps if a.arn not in resolution.covered and a.status == "ENABLED"]
        required = await bounded(
            uncovered, lambda a: asyncio.to_thread(self.api.assignment_required, a.arn), READS_IN_FLIGHT
        )
        for app, needs in zip(uncovered, required, strict=True):
            if needs:
                log.warning(
                    "applications.unassigned",
                    application=app.name,
                    application_arn=app.arn,
                    note="it requires an assignment and no [[applications]] rule gives it to a synced group",
                )
        return reconcile_applications(resolution.desired, existing, made, group_targets)

    # -- apply -----------------------------------------------------------------------------

    def real_arn(self, arn: str) -> str | None:
        """The ARN a stand-in ARN became (None while, or because, its create did not land)."""
        if not arn.startswith(PENDING):
            return arn
        return self._created.get(arn)

    def why_missing(self, arn: str) -> str:
        """Why a stand-in ARN has no real one."""
        return self._failed.get(arn, "it was not created")

    async def apply_permission_sets(self, changes: Sequence[PermissionSetStep], on_done: OnDone) -> None:
        """Create, update, adopt and forget permission sets (at most 3 at once); each outcome to ``on_done``."""
        self._created.clear()
        self._failed.clear()

        async def one(change: PermissionSetStep) -> None:
            error = await self._permission_set(change)
            on_done(
                change if error or change.action is not Action.CREATE_PERMISSION_SET else self._landed(change), error
            )

        await bounded_landing(changes, one, PROVISION_IN_FLIGHT)

    def _landed(self, change: PermissionSetStep) -> PermissionSetStep:
        arn = self._created[pending_arn(change.source_id)]
        return dataclasses.replace(
            change, target_id=arn, permission_set=dataclasses.replace(change.permission_set, arn=arn)
        )

    async def _permission_set(self, change: PermissionSetStep) -> str | None:
        resource = change.permission_set
        try:
            if change.action is Action.CREATE_PERMISSION_SET:
                assert resource.spec is not None
                arn = await self._call(self.api.create_permission_set, resource.spec)
                self._created[pending_arn(resource.name)] = arn
                if self.store is not None:
                    # Recorded as syncd's the moment it exists: if filling it in fails below, the
                    # next run updates it instead of refusing a permission set "syncd did not create".
                    self.store.put_permission_set(
                        resource.name,
                        arn,
                        "created",
                        AuditEntry(change.action, AuditKind.PERMISSION_SET, resource.name, arn, None, None, "created"),
                    )
                for step in steps(None, resource.spec):
                    await self._call(self.api.run_step, arn, step)
            elif change.action is Action.UPDATE_PERMISSION_SET:
                assert resource.spec is not None
                assert resource.arn is not None
                for step in steps(resource.current, resource.spec):
                    await self._call(self.api.run_step, resource.arn, step)
            return None
        except Exception as exc:  # one permission set must never end the others
            reason = _reason(exc)
            if change.action is Action.CREATE_PERMISSION_SET:
                self._failed[pending_arn(resource.name)] = f"creating permission set {resource.name} failed: {reason}"
            log.error("permission_set.failed", action=str(change.action), name=resource.name, error=reason)
            return f"{change.action} {resource.name}: {reason}"

    async def provision(self, changes: Sequence[PermissionSetStep], on_done: OnDone) -> None:
        """Re-provision permission sets to the accounts they are on, polling each request to its end."""

        async def one(change: PermissionSetStep) -> None:
            resource = change.permission_set
            assert resource.arn is not None
            # Named accounts (those left on an older version), else every account it is on.
            targets: Sequence[str | None] = resource.accounts or (None,)
            errors = []
            for account in targets:
                what = f"provision {resource.name}" + (f" to {account}" if account else "")
                try:
                    status = await self._call(self.api.provision, resource.arn, account)
                    error = await self._settle(what, status, self.api.provisioning_status)
                except Exception as exc:
                    error = f"{what}: {_reason(exc)}"
                if error:
                    errors.append(error)
            on_done(change, "; ".join(errors) or None)

        await bounded_landing(changes, one, PROVISION_IN_FLIGHT)

    async def delete_permission_sets(self, changes: Sequence[PermissionSetStep], on_done: OnDone) -> None:
        """Delete permission sets syncd created that left the config (their assignments went first)."""
        for change in changes:
            resource = change.permission_set
            assert resource.arn is not None
            try:
                await self._call(self.api.delete_permission_set, resource.arn)
                error = None
            except ClientError as exc:
                error = (
                    None
                    if error_code(exc) == "ResourceNotFoundException"
                    else f"delete {resource.name}: {_reason(exc)}"
                )
            except Exception as exc:
                error = f"delete {resource.name}: {_reason(exc)}"
            on_done(change, error)

    async def apply_applications(
        self, changes: Sequence[ApplicationAssignmentChange], group_targets: Mapping[str, str], on_done: OnDone
    ) -> None:
        """Create and delete application assignments; each outcome to ``on_done``."""

        async def one(change: ApplicationAssignmentChange) -> None:
            assignment = change.assignment
            try:
                outcome = await self._application(change, assignment, group_targets)
            except Exception as exc:
                outcome = (change, f"{change.action} {assignment.describe()}: {_reason(exc)}")
            if outcome is not None:
                on_done(*outcome)

        await bounded_landing(changes, one, READS_IN_FLIGHT)

    async def _application(
        self, change: ApplicationAssignmentChange, assignment: ApplicationAssignment, group_targets: Mapping[str, str]
    ) -> tuple[ApplicationAssignmentChange, str | None] | None:
        arn = assignment.application_arn
        if change.action is Action.DELETE_APPLICATION_ASSIGNMENT:
            if change.target_id is not None:
                try:
                    await self._call(self.api.unassign_application, arn, change.target_id)
                except ClientError as exc:
                    if error_code(exc) != "ResourceNotFoundException":
                        raise
                    log.info("application_assignment.already_gone", assignment=assignment.describe())
            return change, None
        principal = group_targets.get(assignment.group)
        if principal is None:
            return change, f"create {assignment.describe()}: the group has no Identity Center id (its create failed)"
        done = dataclasses.replace(change, target_id=principal)
        if change.target_id != principal:
            # The group got its id during this run: look first, and never claim one made by someone else.
            held = await asyncio.to_thread(self.api.application_groups, arn)
            if principal in held:
                log.info("application_assignment.exists", assignment=assignment.describe(), note="left alone")
                return None
        await self._call(self.api.assign_application, arn, principal)
        return done, None

    # -- recording -------------------------------------------------------------------------

    def record(self, change: PermissionSetStep | ApplicationAssignmentChange, error: str | None) -> None:
        """Write one outcome to the cache, with its audit entry."""
        if self.store is None:
            raise RuntimeError("this AccessCode has no store to record outcomes in")
        result = f"failed: {error}" if error else (f"ok: {change.reason}" if change.reason else "ok")
        if isinstance(change, ApplicationAssignmentChange):
            resource = change.assignment
            creating = change.action is Action.CREATE_APPLICATION_ASSIGNMENT
            shown = _app_json(resource, change.target_id)
            audit = AuditEntry(
                change.action,
                AuditKind.APPLICATION_ASSIGNMENT,
                resource.group,
                change.target_id,
                None if creating else shown,
                shown if creating and error is None else None,
                result,
            )
            if error is not None:
                self.store.record(audit)
            elif change.action is Action.CREATE_APPLICATION_ASSIGNMENT:
                self.store.put_application_assignment(resource, audit)
            else:
                self.store.forget_application_assignment(resource, audit)
            return
        step = change.permission_set
        audit = AuditEntry(
            change.action,
            AuditKind.PERMISSION_SET,
            step.name,
            step.arn,
            _spec_json(step.current),
            _spec_json(step.spec) if not error else None,
            result,
        )
        if error is not None:
            self.store.record(audit)
        elif change.action is Action.CREATE_PERMISSION_SET:
            assert step.arn is not None
            self.store.put_permission_set(step.name, step.arn, "created", audit)
        elif change.action is Action.ADOPT_PERMISSION_SET:
            assert step.arn is not None
            self.store.put_permission_set(step.name, step.arn, "adopted", audit)
        elif change.action in (Action.DELETE_PERMISSION_SET, Action.FORGET_PERMISSION_SET):
            self.store.forget_permission_set(step.name, audit)
        else:
            self.store.record(audit)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return error_text(exc)
    return str(exc) or repr(exc)


def _app_json(assignment: ApplicationAssignment, principal_id: str | None) -> dict[str, Any]:
    return {
        "group": assignment.group,
        "group_name": assignment.group_name,
        "principal_id": principal_id,
        "application_arn": assignment.application_arn,
        "application_name": assignment.application_name,
    }


def _spec_json(spec: Any) -> dict[str, Any] | None:
    if spec is None:
        return None
    return {
        "name": spec.name,
        "description": spec.description,
        "session_duration": spec.session_duration,
        "relay_state": spec.relay_state,
        "managed_policies": sorted(spec.managed_policies),
        "customer_managed_policies": [f"{path}{name}" for name, path in sorted(spec.customer_managed_policies)],
        "inline_policy": spec.inline_policy,
        "permissions_boundary": spec.permissions_boundary
        if not isinstance(spec.permissions_boundary, tuple)
        else f"{spec.permissions_boundary[1]}{spec.permissions_boundary[0]}",
        "tags": dict(spec.tags),
    }
