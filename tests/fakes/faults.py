"""Injected failures for the fakes: fail the n-th request whose path starts with a prefix."""

from __future__ import annotations

from dataclasses import dataclass

import httpx2


@dataclass
class Fault:
    """An injected failure: on the ``on``-th request (counted among those matching ``path``)
    and the ``times - 1`` matching requests after it."""

    kind: str
    on: int
    path: str | None = None
    times: int = 1
    seen: int = 0
    fired: int = 0


def due(faults: list[Fault], request: httpx2.Request) -> Fault | None:
    """The fault that fires on ``request``, if any (counting the request against each that matches)."""
    for fault in faults:
        if fault.fired >= fault.times or (fault.path is not None and not request.url.path.startswith(fault.path)):
            continue
        fault.seen += 1
        if fault.seen >= fault.on:
            fault.fired += 1
            return fault
    return None
