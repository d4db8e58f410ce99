"""What a run did: the value ``sync --json``, the report, the metrics and the daemon read.

A value module: it imports nothing above it (the plan's type only for type checking), so the
faces and the metrics need not import the engine to read a result.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from syncd.model import Skipped


if TYPE_CHECKING:
    from syncd.access import Impact
    from syncd.plan import Plan


class RunStatus(enum.StrEnum):
    """How a run ended; the value is what the cache's ``runs.status`` and ``--json`` hold."""

    OK = "ok"
    FAILED = "failed"
    REFUSED = "refused"  # the guard, a stale saved plan, a "no" at the prompt (exit 3)
    INTERRUPTED = "interrupted"


class RunMode(enum.StrEnum):
    """What a run compared with; the value is what the cache's ``runs.mode`` and ``--json`` hold."""

    INCREMENTAL = "incremental"  # the source against the cache
    FULL_RESYNC = "full"  # reconciled against live Identity Center (``--full-resync``)
    ASSIGNMENTS = "assignments"  # access only (``--only assignments``)


@dataclass(slots=True)
class RunResult:
    """What a run did, as ``sync --json`` prints it."""

    status: RunStatus
    dry_run: bool
    mode: RunMode
    plan: Plan
    counts: dict[str, int]
    requests: dict[str, int]
    duration_s: float
    errors: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    run_id: int | None = None
    would_change: dict[str, int] | None = None
    """The plan's counts when it was not applied (a dry run, a refused run); ``counts`` is what landed."""
    failure_code: int = 1
    """The exit code of the error that failed the run (see :mod:`syncd.errors`)."""
    access: Impact | None = None
    """Who gains and loses what through this run's plan (when syncd manages access)."""

    @property
    def exit_code(self) -> int:
        """0 converged (or dry run), 3 refused, else the failure's code (4 authentication, 5 unavailable, 1)."""
        return {"ok": 0, "refused": 3}.get(self.status, self.failure_code)

    def to_json(self) -> dict[str, Any]:
        """The one object ``sync --json`` prints."""
        shown: dict[str, Any] = {"changes": self.counts}
        if self.would_change is not None:
            # What landed (none on a plan; on a refused run, what was written during the read).
            shown = {"would_change": self.would_change, "changes": self.counts}
        return {
            "status": str(self.status),
            "dry_run": self.dry_run,
            "mode": str(self.mode),
            **shown,
            "requests": self.requests,
            "duration_s": round(self.duration_s, 3),
            "skipped": len(self.skipped),
            "errors": self.errors,
            "run_id": self.run_id,
            **({"access": self.access.to_json()} if self.access is not None else {}),
        }
