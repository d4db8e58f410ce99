"""Durations in settings: ``"30s"``, ``"15m"``, ``"24h"``, ``"7d"`` (or sums like ``"1h30m"``).

The one duration type of the project: :data:`Duration` for pydantic fields (the daemon's
settings and every connector's), :func:`parse_duration` for text, :func:`format_duration` for
showing one. A value module: it imports nothing of syncd's or of the connectors.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator


__all__ = ["Duration", "PositiveDuration", "format_duration", "parse_duration"]

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: str) -> timedelta:
    """Parse ``"30s"``, ``"15m"``, ``"24h"``, ``"7d"``, ``"2w"`` or a sum like ``"1h30m"``.

    A bare number counts as seconds. Raises ``ValueError`` naming the accepted forms.
    """
    text = value.strip().replace(" ", "")
    if not text:
        raise ValueError("the duration is empty; write it like 30s, 15m, 24h or 7d")
    try:
        return timedelta(seconds=float(text))
    except ValueError:
        pass
    position = 0
    seconds = 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != position:
            break
        seconds += float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
        position = match.end()
    if position != len(text) or position == 0:
        raise ValueError(f"{value!r} is not a duration; write it like 30s, 15m, 24h or 7d")
    return timedelta(seconds=seconds)


def _before(value: Any) -> Any:
    # "15m" and friends; ISO 8601 ("PT15M") and timedeltas go on to pydantic. A bare number in a
    # setting is refused: is `interval = 15` seconds or minutes? The unit says which.
    bare = isinstance(value, int | float) and not isinstance(value, bool)
    if bare or (isinstance(value, str) and _BARE_NUMBER.fullmatch(value.strip())):
        raise ValueError(f'{value!r} has no unit; write it with one, like "15m", "30s" or "24h"')
    if isinstance(value, str) and not value.strip().upper().startswith("P"):
        return parse_duration(value)
    return value


_BARE_NUMBER = re.compile(r"[+-]?\d+(\.\d*)?")


Duration = Annotated[timedelta, BeforeValidator(_before)]
"""A ``timedelta`` setting written like ``"30s"``, ``"15m"``, ``"24h"`` or ``"7d"``."""


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be longer than zero, e.g. 24h")
    return value


PositiveDuration = Annotated[Duration, AfterValidator(_positive)]
"""A :data:`Duration` that must be longer than zero (e.g. how often to read in full)."""


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
