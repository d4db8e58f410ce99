"""Reading a connector the way the engine does, for the connector tests."""

from __future__ import annotations

from typing import Any

from connectors.base import ReadContext, ReadListener, Source
from syncd.model import SourceRead
from syncd.normalise import Scope


async def read(
    source: Source,
    *,
    groups: tuple[str, ...] | None = None,
    users: str = "all",
    full: bool = True,
    state: dict[str, Any] | None = None,
    listener: ReadListener | None = None,
) -> SourceRead:
    """One read, the way the engine asks for it (``listener``: told what is final as it goes)."""
    return await source.read(
        ReadContext(Scope(groups=groups, users=users), full=full, state=state or {}, listener=listener)
    )
