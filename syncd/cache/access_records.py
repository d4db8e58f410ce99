"""The cache's records of the access syncd made: account assignments, permission sets and
application assignments.

A part of :class:`syncd.cache.Cache` (:mod:`syncd.cache.shared`). What is recorded here is what
syncd owns, and the only things it ever updates or deletes in AWS.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import delete, select

from syncd.cache.shared import LOAD_BATCH, Transactions, utc_now
from syncd.cache.tables import application_assignments, permission_sets
from syncd.cache.tables import assignments as assignments_table
from syncd.cache.tables import audit as audit_table
from syncd.model import ApplicationAssignment, Assignment
from syncd.state import AuditEntry, AuditKind


__all__ = ["AccessRecords", "OwnedPermissionSet"]

PermissionSetOrigin = Literal["created", "adopted"]


@dataclass(frozen=True, slots=True)
class OwnedPermissionSet:
    """A permission set syncd owns: its name, its ARN, and whether syncd ``created`` or ``adopted`` it."""

    name: str
    arn: str
    origin: str


class AccessRecords:
    """Account assignments, permission sets and application assignments syncd made (a part of ``Cache``)."""

    # -- account assignments ---------------------------------------------------------------

    def assignments(self: Transactions) -> set[Assignment]:
        """Every account assignment syncd created and has not deleted, with its display names.

        These, and only these, are the assignments syncd may delete; :meth:`forget_group` keeps
        them, because they stay in AWS until syncd deletes them there.
        """
        stmt = select(
            assignments_table.c.group_source_id,
            assignments_table.c.account_id,
            assignments_table.c.permission_set_arn,
            assignments_table.c.group_name,
            assignments_table.c.permission_set_name,
            assignments_table.c.account_name,
        )
        with self._read("assignments") as connection:
            rows = connection.execution_options(yield_per=LOAD_BATCH).execute(stmt)
            return {
                Assignment(
                    group=group,
                    account_id=account_id,
                    permission_set_arn=permission_set_arn,
                    group_name=group_name,
                    permission_set_name=permission_set_name,
                    account_name=account_name,
                )
                for group, account_id, permission_set_arn, group_name, permission_set_name, account_name in rows
            }

    def put_assignment(self: Transactions, assignment: Assignment, audit: AuditEntry | None = None) -> None:
        """Record that syncd created ``assignment``, and ``audit``.

        Recording it again keeps its ``created_at`` and refreshes the display names.
        """
        with self._write("put_assignment") as connection:
            connection.execute(
                self._stmts.upsert_assignment,
                {
                    "group_source_id": assignment.group,
                    "account_id": assignment.account_id,
                    "permission_set_arn": assignment.permission_set_arn,
                    "group_name": assignment.group_name,
                    "permission_set_name": assignment.permission_set_name,
                    "account_name": assignment.account_name,
                    "created_at": utc_now(),
                },
            )
            self._audit(connection, audit)

    def forget_assignment(self: Transactions, assignment: Assignment, audit: AuditEntry | None = None) -> None:
        """Drop the record of ``assignment`` (deleted in AWS), and record ``audit``; a no-op when absent."""
        with self._write("forget_assignment") as connection:
            connection.execute(
                delete(assignments_table).where(
                    assignments_table.c.group_source_id == assignment.group,
                    assignments_table.c.account_id == assignment.account_id,
                    assignments_table.c.permission_set_arn == assignment.permission_set_arn,
                )
            )
            self._audit(connection, audit)

    # -- permission sets -------------------------------------------------------------------

    def owned_permission_sets(self: Transactions) -> dict[str, OwnedPermissionSet]:
        """The permission sets syncd created or adopted, by name."""
        stmt = select(permission_sets.c.name, permission_sets.c.arn, permission_sets.c.origin)
        with self._read("permission_sets") as connection:
            return {name: OwnedPermissionSet(name, arn, origin) for name, arn, origin in connection.execute(stmt)}

    def put_permission_set(
        self: Transactions, name: str, arn: str, origin: PermissionSetOrigin, audit: AuditEntry | None = None
    ) -> None:
        """Record that syncd owns permission set ``name`` (``arn``), and ``audit``."""
        with self._write("put_permission_set") as connection:
            connection.execute(delete(permission_sets).where(permission_sets.c.name == name))
            connection.execute(
                permission_sets.insert(),
                {"name": name, "arn": arn, "origin": origin, "created_at": datetime.now(UTC)},
            )
            self._audit(connection, audit)

    def forget_permission_set(self: Transactions, name: str, audit: AuditEntry | None = None) -> None:
        """Drop the record of permission set ``name`` (deleted in AWS), and record ``audit``."""
        with self._write("forget_permission_set") as connection:
            connection.execute(delete(permission_sets).where(permission_sets.c.name == name))
            self._audit(connection, audit)

    def owns_access(self: Transactions) -> bool:
        """Whether syncd made permission sets or application assignments it may have to remove."""
        with self._read("owns_access") as connection:
            for table in (permission_sets, application_assignments):
                if connection.execute(select(table).limit(1)).first() is not None:
                    return True
        return False

    def record_all(self: Transactions, entries: Iterable[AuditEntry]) -> None:
        """Record many audit entries that go with no state change, in one transaction."""
        with self._write("record_all") as connection:
            for entry in entries:
                self._audit(connection, entry)

    def access_changes(
        self: Transactions, since: datetime | None = None, run_id: int | None = None
    ) -> list[tuple[datetime, int | None, AuditEntry]]:
        """Access gained and lost as runs recorded it (``access_gained`` / ``access_lost``), oldest first."""
        table = audit_table
        stmt = select(
            table.c.at, table.c.run_id, table.c.action, table.c.source_id, table.c.after, table.c.result
        ).where(table.c.object_type == str(AuditKind.ACCESS))
        if since is not None:
            stmt = stmt.where(table.c.at >= since)
        if run_id is not None:
            stmt = stmt.where(table.c.run_id == run_id)
        with self._read("access_changes") as connection:
            return [
                (at, run, AuditEntry(action, AuditKind.ACCESS, source_id, None, None, after, result))
                for at, run, action, source_id, after, result in connection.execute(stmt.order_by(table.c.id))
            ]

    # -- application assignments -----------------------------------------------------------

    def application_assignments(self: Transactions) -> set[ApplicationAssignment]:
        """Every application assignment syncd created and has not deleted."""
        table = application_assignments
        stmt = select(table.c.group_source_id, table.c.application_arn, table.c.group_name, table.c.application_name)
        with self._read("application_assignments") as connection:
            return {ApplicationAssignment(*row) for row in connection.execute(stmt)}

    def put_application_assignment(
        self: Transactions, assignment: ApplicationAssignment, audit: AuditEntry | None = None
    ) -> None:
        """Record that syncd created ``assignment``, and ``audit`` (again: the names are refreshed)."""
        table = application_assignments
        with self._write("put_application_assignment") as connection:
            connection.execute(_where(delete(table), assignment))
            connection.execute(
                table.insert(),
                {
                    "group_source_id": assignment.group,
                    "application_arn": assignment.application_arn,
                    "group_name": assignment.group_name,
                    "application_name": assignment.application_name,
                    "created_at": datetime.now(UTC),
                },
            )
            self._audit(connection, audit)

    def forget_application_assignment(
        self: Transactions, assignment: ApplicationAssignment, audit: AuditEntry | None = None
    ) -> None:
        """Drop the record of ``assignment`` (deleted in AWS), and record ``audit``; a no-op when absent."""
        with self._write("forget_application_assignment") as connection:
            connection.execute(_where(delete(application_assignments), assignment))
            self._audit(connection, audit)


def _where(stmt: Any, assignment: ApplicationAssignment) -> Any:
    table = application_assignments
    return stmt.where(
        table.c.group_source_id == assignment.group, table.c.application_arn == assignment.application_arn
    )
