"""What the cache remembers, as plain values the plan can read without touching a database.

The cache (:mod:`syncd.cache`) loads a :class:`CacheState` at the start of a run and records
each change as it lands; the plan (:mod:`syncd.plan`) only ever sees these values.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal, NamedTuple

from syncd.changes import Action


Origin = Literal["created", "adopted"]
"""How syncd came to manage an object: it created it, or matched an existing one on a full resync."""


NO_DATA: Mapping[str, Any] = MappingProxyType({})
"""The ``data`` of a cached user whose payload was not loaded (one shared, read-only empty mapping)."""


@dataclass(frozen=True, slots=True)
class CachedUser:
    """A user syncd manages: the Identity Center id and what was last pushed.

    ``data`` (the payload last pushed) may be :data:`NO_DATA` when nothing will read it: the
    cache leaves it out for a user the source has not changed (whose ``digest`` it then loads
    as :data:`UNCHANGED`), and a run's in-memory copy leaves it out for a user it has just
    written.
    """

    source_id: str
    target_id: str
    user_name: str
    digest: str
    data: Mapping[str, Any] = field(default_factory=lambda: NO_DATA, compare=False)
    origin: Origin = "created"
    gone_since: datetime | None = None
    """When the user left the source and was deactivated, pending its delete; None otherwise."""


UNCHANGED = "unchanged"
"""The ``digest`` of a user :meth:`syncd.cache.Cache.load` found equal to the source's current
one (``Current.digest``): the comparison is made once, while loading, and 100k users need not
hold their 64-character digest twice. Never written to the database."""


class Current(NamedTuple):
    """A user as the source holds it now, for :meth:`syncd.cache.Cache.load` to compare with
    what was pushed: an equal digest means the user needs no write."""

    source_id: str
    user_name: str
    digest: str


@dataclass(frozen=True, slots=True)
class CachedGroup:
    """A group syncd manages."""

    source_id: str
    target_id: str
    display_name: str
    digest: str
    origin: Origin = "created"
    gone_since: datetime | None = None
    """When the group left the source and lost its members, pending its delete; None otherwise."""


@dataclass(slots=True)
class CacheState:
    """Everything the plan needs from the cache.

    ``members`` holds, for each group, the source ids of the users that were pushed as its
    members (groups with none may be absent). One set per group, not one pair per
    membership: half a million pairs cost three times what the same memberships cost as sets.
    """

    users: dict[str, CachedUser] = field(default_factory=dict)
    groups: dict[str, CachedGroup] = field(default_factory=dict)
    members: dict[str, AbstractSet[str]] = field(default_factory=dict)
    emails: dict[str, str] = field(default_factory=dict)
    """The email last pushed for each user a lean load (``Cache.load(lean=True)``) read without
    its payload, unless the source holds it unchanged: who holds which email in Identity Center."""

    @property
    def memberships(self) -> set[tuple[str, str]]:
        """Every (group source id, user source id) pair: a copy, for reports and tests."""
        return {(group, user) for group, users in self.members.items() for user in users}


class AccessEvent(enum.StrEnum):
    """The audit actions of access gained and lost through a run (:mod:`syncd.access`)."""

    GAINED = "access_gained"
    LOST = "access_lost"


AuditAction = Action | AccessEvent
"""What an audit entry records: a change applied (its :class:`~syncd.changes.Action`), or access
gained or lost. The value is what the cache's ``audit.action`` holds."""


class AuditKind(enum.StrEnum):
    """What an audit entry is about; the value is what the cache's ``audit.object_type`` holds."""

    USER = "user"
    GROUP = "group"
    MEMBERSHIP = "membership"
    ASSIGNMENT = "assignment"
    PERMISSION_SET = "permission_set"
    APPLICATION_ASSIGNMENT = "application_assignment"
    ACCESS = "access"
    """A grant gained or lost (``access_gained`` / ``access_lost``)."""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One change applied to the target, as the audit trail keeps it.

    Read back from the cache, ``action`` and ``object_type`` are the stored text, equal to the
    members they were written as (these are ``StrEnum``s), so entries of earlier versions read
    the same.
    """

    action: AuditAction
    object_type: AuditKind
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
