"""``syncd check``: read the source the way a run would, write nothing, and show what was read.

For setting up a connector: it proves the credentials and scopes work and shows which groups
the filters select, how many users that brings in, and which records would be skipped and why.
"""

from __future__ import annotations

from dataclasses import dataclass

from connectors import base as connectors
from connectors.base import Deps, ReadContext
from syncd.config import Settings
from syncd.errors import SourceError
from syncd.model import Snapshot
from syncd.normalise import build_snapshot


@dataclass(frozen=True, slots=True)
class CheckResult:
    """What one full read of the source gave, after normalisation and filters."""

    source_type: str
    snapshot: Snapshot
    users_read: int
    groups_read: int
    requests: int
    target: str = ""
    """What the one authenticated read of Identity Center found (empty when it was not made)."""


async def check_source(settings: Settings, *, deps: Deps | None = None) -> CheckResult:
    """A full read of the configured source (no state, no cache, no target)."""
    source_type = connectors.get(settings.source.type)
    source = source_type.factory(settings.connector_settings(), deps or Deps())
    scope = settings.filters.scope()
    try:
        read = await source.read(ReadContext(scope=scope, full=True, state={}))
    finally:
        await source.aclose()
    if not read.complete:
        raise SourceError(f"the {settings.source.type} source returned an incomplete read")
    return CheckResult(
        source_type=settings.source.type,
        snapshot=build_snapshot(read, scope),
        users_read=len(read.users),
        groups_read=len(read.groups),
        requests=read.requests,
    )
