"""One shared pace for every request to a rate-limited API, and the retry policy around it.

Identity Center allows 20 SCIM requests per second for the whole instance [UG:limits]; going
over it earns 429s, and peers that retry 429s blindly end in storms (awslabs/ssosync#13). So
every request first takes a slot from :class:`Pacer`, which spaces requests evenly at the
configured rate. When a 429 arrives anyway (another client shares the quota), the pacer slows
down by a quarter and recovers slowly as requests succeed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class Pacer:
    """Spaces requests at most ``rate`` per second, adapting down on throttling.

    Safe to share between coroutines of one event loop: slots are handed out in order without
    awaiting between reading and advancing the schedule.
    """

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        floor: float = 1.0,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.max_rate = rate
        self.rate = rate
        self.floor = min(floor, rate)
        self._clock = clock
        self._next = 0.0
        self.throttled = 0

    def reserve(self) -> float:
        """Take the next slot; return how long to wait for it (0 when it is now)."""
        now = self._clock()
        slot = max(now, self._next)
        self._next = slot + 1.0 / self.rate
        return slot - now

    async def acquire(self) -> None:
        """Wait for the next slot."""
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)

    def on_throttled(self) -> None:
        """A 429 came back: slow down by a quarter, and leave a pause before the next slot."""
        self.throttled += 1
        self.rate = max(self.floor, self.rate * 0.75)
        self._next = max(self._next, self._clock() + 1.0 / self.rate)

    def on_success(self) -> None:
        """A request went through: creep back towards the configured rate (about +1% each)."""
        if self.rate < self.max_rate:
            self.rate = min(self.max_rate, self.rate * 1.01)
