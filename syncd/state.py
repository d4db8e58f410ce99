"""What the cache remembers, as plain values the plan can read without touching a database.

The cache (:mod:`syncd.cache`) loads a :class:`CacheState` at the start of a run and records
each change as it lands; the plan (:mod:`syncd.plan`) only ever sees these values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal


Origin = Literal["created", "adopted"]
"""How syncd came to manage an object: it created it, or matched an existing one on a full resync."""


@dataclass(frozen=True, slots=True)
class CachedUser:
    """A user syncd manages: the Identity Center id and what was last pushed."""

    source_id: str
    target_id: str
    user_name: str
    digest: str
    data: dict[str, Any] = field(default_factory=dict, compare=False)
    origin: Origin = "created"


@dataclass(frozen=True, slots=True)
class CachedGroup:
    """A group syncd manages."""

    source_id: str
    target_id: str
    display_name: str
    digest: str
    origin: Origin = "created"


@dataclass(slots=True)
class CacheState:
    """Everything the plan needs from the cache.

    ``memberships`` holds (group source id, user source id) pairs that were pushed.
    """

    users: dict[str, CachedUser] = field(default_factory=dict)
    groups: dict[str, CachedGroup] = field(default_factory=dict)
    memberships: set[tuple[str, str]] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One change applied to the target, as the audit trail keeps it."""

    action: str  # e.g. "create_user", "add_members", "adopt_group"
    object_type: str  # "user" | "group" | "membership" | "assignment"
    source_id: str | None
    target_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    result: str = "ok"  # "ok" | "failed: <reason>" | "drift: <what>"


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One run as ``syncd status`` shows it."""

    id: int
    started_at: datetime
    finished_at: datetime | None
    mode: str  # "incremental" | "full"
    dry_run: bool
    status: str  # "running" | "ok" | "failed" | "refused" | "interrupted"
    counts: dict[str, int]
    requests: dict[str, int]
    error: str | None
