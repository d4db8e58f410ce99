"""The cache's records of the access syncd made: permission sets and application assignments.

A mixin of :class:`syncd.cache.Cache` (it uses the cache's transactions and audit writer), kept
apart so that the store module stays about identities. What is recorded here is what syncd owns,
and the only things it ever updates or deletes in AWS.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from sqlalchemy import Connection, delete, select

from syncd.cache.tables import application_assignments, permission_sets
from syncd.cache.tables import audit as audit_table
from syncd.model import ApplicationAssignment
from syncd.state import AuditEntry


__all__ = ["AccessRecords", "OwnedPermissionSet"]

PermissionSetOrigin = Literal["created", "adopted"]


@dataclass(frozen=True, slots=True)
class OwnedPermissionSet:
    """A permission set syncd owns: its name, its ARN, and whether syncd ``created`` or ``adopted`` it."""

    name: str
    arn: str
    origin: str


class _Transactions(Protocol):
    def _write(self, what: str) -> AbstractContextManager[Connection]: ...
    def _read(self, what: str, *, snapshot: bool = False) -> AbstractContextManager[Connection]: ...
    def _audit(self, connection: Connection, entry: AuditEntry | None) -> None: ...


class AccessRecords:
    """Permission sets and application assignments syncd made (a mixin of ``Cache``)."""

    # -- permission sets -------------------------------------------------------------------

    def owned_permission_sets(self: _Transactions) -> dict[str, OwnedPermissionSet]:
        """The permission sets syncd created or adopted, by name."""
        stmt = select(permission_sets.c.name, permission_sets.c.arn, permission_sets.c.origin)
        with self._read("permission_sets") as connection:
            return {name: OwnedPermissionSet(name, arn, origin) for name, arn, origin in connection.execute(stmt)}

    def put_permission_set(
        self: _Transactions, name: str, arn: str, origin: PermissionSetOrigin, audit: AuditEntry | None = None
    ) -> None:
        """Record that syncd owns permission set ``name`` (``arn``), and ``audit``."""
        with self._write("put_permission_set") as connection:
            connection.execute(delete(permission_sets).where(permission_sets.c.name == name))
            connection.execute(
                permission_sets.insert(),
                {"name": name, "arn": arn, "origin": origin, "created_at": datetime.now(UTC)},
            )
            self._audit(connection, audit)

    def forget_permission_set(self: _Transactions, name: str, audit: AuditEntry | None = None) -> None:
        """Drop the record of permission set ``name`` (deleted in AWS), and record ``audit``."""
        with self._write("forget_permission_set") as connection:
            connection.execute(delete(permission_sets).where(permission_sets.c.name == name))
            self._audit(connection, audit)

    def owns_access(self: _Transactions) -> bool:
        """Whether syncd made permission sets or application assignments it may have to remove."""
        with self._read("owns_access") as connection:
            for table in (permission_sets, application_assignments):
                if connection.execute(select(table).limit(1)).first() is not None:
                    return True
        return False

    def record_all(self: _Transactions, entries: Iterable[AuditEntry]) -> None:
        """Record many audit entries that go with no state change, in one transaction."""
        with self._write("record_all") as connection:
            for entry in entries:
                self._audit(connection, entry)

    def access_changes(
        self: _Transactions, since: datetime | None = None, run_id: int | None = None
    ) -> list[tuple[datetime, int | None, AuditEntry]]:
        """Access gained and lost as runs recorded it (``access_gained`` / ``access_lost``), oldest first."""
        table = audit_table
        stmt = select(
            table.c.at, table.c.run_id, table.c.action, table.c.source_id, table.c.after, table.c.result
        ).where(table.c.object_type == "access")
        if since is not None:
            stmt = stmt.where(table.c.at >= since)
        if run_id is not None:
            stmt = stmt.where(table.c.run_id == run_id)
        with self._read("access_changes") as connection:
            return [
                (at, run, AuditEntry(action, "access", source_id, None, None, after, result))
                for at, run, action, source_id, after, result in connection.execute(stmt.order_by(table.c.id))
            ]

    # -- application assignments -----------------------------------------------------------

    def application_assignments(self: _Transactions) -> set[ApplicationAssignment]:
        """Every application assignment syncd created and has not deleted."""
        table = application_assignments
        stmt = select(table.c.group_source_id, table.c.application_arn, table.c.group_name, table.c.application_name)
        with self._read("application_assignments") as connection:
            return {ApplicationAssignment(*row) for row in connection.execute(stmt)}

    def put_application_assignment(
        self: _Transactions, assignment: ApplicationAssignment, audit: AuditEntry | None = None
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
        self: _Transactions, assignment: ApplicationAssignment, audit: AuditEntry | None = None
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
