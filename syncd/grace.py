"""Deletes in two steps (``safety.delete_after``): pure decisions on objects gone from the source.

Okta's and Entra's own provisioning disable before they delete; so does syncd. A user gone from
the source is deactivated at once (``active=false``: portal access ends now) and deleted once the
grace period has passed; one who comes back within it is reactivated with the same Identity
Center id, so the account assignments that point at it survive. A group gone from the source
loses its members at once and is deleted after the grace period; one that comes back keeps its
id and assignments. ``delete_after = 0`` deletes at once.

An object pending deletion whose name a source object now claims (a rehire under the same
userName with a new source id, a group recreated at the source) is deleted at once: the name is
needed, and Identity Center lets only one object hold it (userName and displayName are unique:
AWS SCIM developer guide, CreateUser and CreateGroup).

The plan stays a pure value: "now" is passed in, never read from a clock here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from syncd.durations import format_duration


class Step(enum.Enum):
    """What to do now with an object gone from the source."""

    DELETE = "delete"  # no grace period, or it is over, or its name is claimed
    RETIRE = "retire"  # first seen gone: deactivate (user) or empty (group), start the grace period
    WAIT = "wait"  # within the grace period: nothing to do


@dataclass(frozen=True, slots=True)
class Grace:
    """The grace period and the moment the plan is made."""

    delete_after: timedelta = timedelta(0)
    now: datetime | None = None

    def __post_init__(self) -> None:
        """A grace period needs a "now" to measure it against."""
        if self.enabled and self.now is None:
            raise ValueError("a grace period (delete_after > 0) needs the time the plan is made")

    @property
    def enabled(self) -> bool:
        """False when gone objects are deleted at once (``delete_after = 0``)."""
        return self.delete_after > timedelta(0)

    def step(self, gone_since: datetime | None, *, name_claimed: bool = False) -> Step:
        """The step for an object gone from the source since ``gone_since`` (None: just now)."""
        if not self.enabled or name_claimed:
            return Step.DELETE
        if gone_since is None:
            return Step.RETIRE
        assert self.now is not None
        return Step.DELETE if self.now - gone_since >= self.delete_after else Step.WAIT

    def due(self, gone_since: datetime | None) -> datetime:
        """When an object gone since ``gone_since`` (None: now) will be deleted."""
        assert self.now is not None
        return (gone_since or self.now) + self.delete_after

    def retire_reason(self, what: str) -> str:
        """The reason of the first step: ``what`` happens now, the delete after the grace period."""
        return (
            f"gone from the source: {what} now, deleted after {format_duration(self.delete_after)}"
            f" (due {self.due(None):%Y-%m-%d %H:%M} UTC)"
        )

    def delete_reason(self, gone_since: datetime | None, *, name_claimed: bool, kind: str) -> str:
        """Why an object gone from the source is deleted now."""
        if name_claimed:
            return f"gone from the source, and a source {kind} now claims its name: deleted at once"
        if gone_since is None:
            return "gone from the source"
        return (
            f"gone from the source since {gone_since:%Y-%m-%d %H:%M} UTC:"
            f" the {format_duration(self.delete_after)} grace period is over"
        )


NO_GRACE = Grace()
"""Delete at once (``delete_after = 0``)."""

RETURNED = "back in the source within the grace period: reactivated, same Identity Center id"
"""The reason of the update that brings back a user pending deletion."""

GROUP_RETURNED = "back in the source within the grace period: same Identity Center id"
"""The reason of the update that brings back a group pending deletion."""


def pending_report(pending: list[tuple[str, str, str, str, datetime]], delete_after: timedelta) -> list[dict[str, str]]:
    """What ``syncd status`` shows of the objects waiting for their delete, and when each is due.

    ``pending`` is :meth:`syncd.cache.Cache.pending_deletions`; a delete happens on the first
    run at or after its due time.
    """
    return [
        {
            "kind": kind,
            "source_id": source_id,
            "name": name,
            "target_id": target_id,
            "gone_since": gone_since.isoformat(),
            "delete_at": (gone_since + delete_after).isoformat(),
        }
        for kind, source_id, name, target_id, gone_since in pending
    ]
