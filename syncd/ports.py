"""What the run needs of the cache, the assignment manager and a progress display (protocols)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from syncd.changes import AccessChange, Change
from syncd.model import ApplicationAssignment, Assignment, Snapshot
from syncd.plan import Plan
from syncd.state import AuditEntry, CachedGroup, CachedUser, CacheState, Current, RunRecord


class CacheLike(Protocol):
    """What the engine needs of :class:`syncd.cache.Cache` (a seam for tests)."""

    def load(
        self,
        *,
        current: Mapping[str, Current] | None = None,
        lean: bool = False,
        targets: Mapping[str, str] | None = None,
    ) -> CacheState: ...
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
    def managed_counts(self) -> tuple[int, int]: ...
    def user_ids(self) -> set[str]: ...
    def target_ids(self) -> tuple[dict[str, str], dict[str, str]]: ...
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
    (:data:`syncd.changes.ACCESS`: account and application assignments, permission sets).
    ``made`` holds the assignments syncd created (from the cache);
    ``group_targets`` maps group source ids to Identity Center ids where they exist already.
    ``apply`` runs those changes once groups exist, calling ``on_done(change, error)`` as each
    operation ends (``error`` None on success) so that the engine records it as it lands.
    """

    async def plan(
        self, snapshot: Snapshot, made: set[Assignment], group_targets: Mapping[str, str]
    ) -> list[AccessChange]: ...

    async def apply(
        self,
        changes: Sequence[Change],
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
        """``plan``'s writes start now: those safe during the read (once per early round, see
        :mod:`syncd.during_read`), then the rest once the guard let the final plan through; each
        call adds to the writes to come."""
        ...

    def advance(self, change: Change, *, ok: bool) -> None:
        """One change landed (``ok``) or failed."""
        ...
