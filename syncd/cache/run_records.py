"""The cache's runs and audit trail: each run as it started and ended, and every audit entry.

A part of :class:`syncd.cache.Cache` (:mod:`syncd.cache.shared`). Audit entries are written with
the change they record (:meth:`Cache._audit`); they are tagged with the run started by
:meth:`RunRecords.start_run` until :meth:`RunRecords.finish_run` ends it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, select, update

from syncd.cache.shared import Transactions, utc_now
from syncd.cache.tables import audit as audit_table
from syncd.cache.tables import runs
from syncd.errors import CacheError
from syncd.secrets import scrub
from syncd.state import AuditEntry, RunRecord


__all__ = ["RunRecords"]

_INTERRUPTED_ERROR = "interrupted: the process running it stopped before it finished"


class RunRecords:
    """Runs and the audit trail (a part of ``Cache``)."""

    _run_id: int | None
    """The run audit entries are tagged with (the cache's own, set by :meth:`start_run`)."""

    def start_run(self: Transactions, mode: str, dry_run: bool) -> int:
        """Record a run as "running" and tag later audit entries with it; returns its id."""
        with self._write("start_run") as connection:
            result = connection.execute(
                runs.insert(),
                {
                    "started_at": utc_now(),
                    "finished_at": None,
                    "mode": mode,
                    "dry_run": dry_run,
                    "status": "running",
                    "counts": {},
                    "requests": {},
                    "error": None,
                },
            )
            key = result.inserted_primary_key
            if key is None:  # pragma: no cover - both dialects return the new id
                raise CacheError("the database did not return the new run's id")
            run_id = int(key[0])
        self._run_id = run_id
        return run_id

    def finish_run(
        self: Transactions,
        run_id: int,
        status: str,
        counts: dict[str, int],
        requests: dict[str, int],
        error: str | None,
    ) -> None:
        """Record how run ``run_id`` ended; audit entries are no longer tagged with it.

        The run stops being current even if this write fails: it then stays "running" in the
        database, and the next :meth:`interrupt_stale_runs` marks it "interrupted".

        Raises:
            CacheError: there is no run ``run_id``, or the write failed.
        """
        try:
            with self._write("finish_run") as connection:
                result = connection.execute(
                    update(runs)
                    .where(runs.c.id == run_id)
                    .values(
                        finished_at=utc_now(),
                        status=status,
                        counts=dict(counts),
                        requests=dict(requests),
                        error=scrub(error) if error else error,
                    )
                )
                if result.rowcount != 1:
                    raise CacheError(f"cannot finish run {run_id}: the cache has no such run")
        finally:
            if self._run_id == run_id:
                self._run_id = None

    def interrupt_stale_runs(self: Transactions) -> int:
        """Mark runs still "running" as "interrupted" (their process died); returns how many.

        The run this cache started, if one is in progress, is left alone. Call it at start,
        once the daemon holds its lock, before :meth:`start_run`.
        """
        stmt = (
            update(runs)
            .where(runs.c.status == "running")
            .values(status="interrupted", finished_at=utc_now(), error=_INTERRUPTED_ERROR)
        )
        if self._run_id is not None:
            stmt = stmt.where(runs.c.id != self._run_id)
        with self._write("interrupt_stale_runs") as connection:
            return int(connection.execute(stmt).rowcount)

    def runs(self: Transactions, limit: int = 10) -> list[RunRecord]:
        """The newest ``limit`` runs, newest first."""
        with self._read("runs") as connection:
            rows = connection.execute(select(runs).order_by(runs.c.id.desc()).limit(limit))
            return [_run_record(row) for row in rows]

    def last_success(self: Transactions, *, include_dry_runs: bool = False) -> RunRecord | None:
        """The newest run that ended "ok", or None.

        Dry runs do not count unless ``include_dry_runs``: they changed nothing, so they say
        nothing about how fresh Identity Center is.
        """
        stmt = select(runs).where(runs.c.status == "ok")
        if not include_dry_runs:
            stmt = stmt.where(runs.c.dry_run.is_(False))
        with self._read("last_success") as connection:
            row = connection.execute(stmt.order_by(runs.c.id.desc()).limit(1)).first()
            return _run_record(row) if row is not None else None

    def last_full_resync_start(self: Transactions) -> datetime | None:
        """When the newest successful, non-dry full resync started, or None (the daemon's schedule)."""
        stmt = select(func.max(runs.c.started_at)).where(
            runs.c.mode == "full", runs.c.status == "ok", runs.c.dry_run.is_(False)
        )
        with self._read("last_full_resync_start") as connection:
            value: datetime | None = connection.execute(stmt).scalar_one_or_none()
        return value

    def record(self: Transactions, audit: AuditEntry) -> None:
        """Record an audit entry that goes with no state change (a failed change, a drift found)."""
        with self._write("record") as connection:
            self._audit(connection, audit)

    def unanswered_create(self: Transactions, object_type: str, source_id: str) -> int | None:
        """The earlier run that sent a create of this object and never recorded its answer, if any.

        The engine records ``create_<type>`` with result "sent" before each POST, then "ok" or
        "failed" once answered. When the newest such entry of another run than the current one
        is still "sent", that run stopped (killed, crashed) between the POST and its record: the
        object a 409 now finds is most likely the one it made.
        """
        stmt = (
            select(audit_table.c.run_id, audit_table.c.result)
            .where(
                audit_table.c.object_type == str(object_type),
                audit_table.c.source_id == source_id,
                audit_table.c.action == f"create_{object_type}",
            )
            .order_by(audit_table.c.id.desc())
            .limit(1)
        )
        if self._run_id is not None:
            stmt = stmt.where(audit_table.c.run_id != self._run_id)
        with self._read("unanswered_create") as connection:
            row = connection.execute(stmt).first()
        if row is None or row.result != "sent" or row.run_id is None:
            return None
        return int(row.run_id)

    def audit(self: Transactions, run_id: int | None = None, limit: int = 100) -> list[tuple[datetime, AuditEntry]]:
        """The newest ``limit`` audit entries, newest first, with when each was recorded.

        Args:
            run_id: only this run's entries; None for entries of any run (or none).
        """
        stmt = select(
            audit_table.c.at,
            audit_table.c.action,
            audit_table.c.object_type,
            audit_table.c.source_id,
            audit_table.c.target_id,
            audit_table.c.before,
            audit_table.c.after,
            audit_table.c.result,
        )
        if run_id is not None:
            stmt = stmt.where(audit_table.c.run_id == run_id)
        stmt = stmt.order_by(audit_table.c.id.desc()).limit(limit)
        with self._read("audit") as connection:
            rows = connection.execute(stmt)
            return [
                (
                    at,
                    AuditEntry(
                        action=action,
                        object_type=object_type,
                        source_id=source_id,
                        target_id=target_id,
                        before=before,
                        after=after,
                        result=result,
                    ),
                )
                for at, action, object_type, source_id, target_id, before, after, result in rows
            ]


def _run_record(row: Row[Any]) -> RunRecord:
    return RunRecord(
        id=row.id,
        started_at=row.started_at,
        finished_at=row.finished_at,
        mode=row.mode,
        dry_run=bool(row.dry_run),
        status=row.status,
        counts=dict(row.counts or {}),
        requests=dict(row.requests or {}),
        error=row.error,
    )
