"""Durations in settings: ``"30s"``, ``"15m"``, ``"24h"``, ``"7d"`` (or sums like ``"1h30m"``).

The parser is :func:`connectors._http.parse_duration`, shared with the connectors; this module
only adds the pydantic field type and the short form used when showing a duration.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator

from connectors._http import parse_duration


__all__ = ["Duration", "format_duration", "parse_duration"]


def _before(value: Any) -> Any:
    # "15m" and friends; ISO 8601 ("PT15M"), numbers of seconds and timedeltas go on to pydantic.
    if isinstance(value, str) and not value.strip().upper().startswith("P"):
        return parse_duration(value)
    return value


Duration = Annotated[timedelta, BeforeValidator(_before)]
"""A ``timedelta`` setting written like ``"30s"``, ``"15m"``, ``"24h"`` or ``"7d"``."""


def format_duration(value: timedelta | float) -> str:
    """The shortest exact form: ``900`` seconds → ``"15m"``, ``5400`` → ``"1h30m"``, ``1.5`` → ``"1.5s"``."""
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if seconds < 0:
        return "-" + format_duration(-seconds)
    whole = int(seconds)
    if seconds != whole or whole == 0:
        return f"{seconds:g}s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, whole = divmod(whole, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
