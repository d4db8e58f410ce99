"""One shared pace for every request to a rate-limited API: a token bucket that adapts on 429.

Identity Center allows 20 SCIM requests per second for the whole instance
(https://docs.aws.amazon.com/singlesignon/latest/userguide/limits.html); going over it earns
429s, and peers that retry 429s blindly end in storms (awslabs/ssosync#13). The page gives the
rate, not the size of the bucket behind it; the emulator's throttle holds one second's worth
(burst = rate), and so does :class:`Pacer` by default (the SCIM target keeps a quarter of it
back for jitter: ``syncd.target.scim.BURST_SHARE``).

Every request first takes a token from the pacer. Tokens flow in at ``rate`` per second into a
bucket of ``burst``; a token is taken at the moment the request may go, not booked in advance, so
a slot the process missed while it was busy (the event loop held by planning, a slow disk, a
loaded host) is not lost: the tokens wait in the bucket and the requests behind them go at once,
up to the bucket's size, and never more than ``burst + rate × t`` over any ``t`` seconds. The
bucket starts with one token, so a run begins at the steady pace rather than with a burst. When a
429 arrives anyway (another client shares the quota), the pacer empties its bucket, slows down by
a quarter and recovers slowly as requests succeed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


_EPSILON = 1e-9
"""Tokens short of a whole one by less than this count as whole: a clock's float arithmetic may
never quite reach 1.0, and a wait of 1e-18 s would not move it."""


class Pacer:
    """At most ``rate`` requests per second on average, bursts of at most ``burst``; slower after 429s.

    Safe to share between the coroutines of one event loop: waiters are served in the order they
    came (an :class:`asyncio.Lock` is first come, first served).

    Args:
        rate: requests per second (must be > 0).
        burst: the bucket's size, in requests; defaults to ``rate`` (at least 1). It scales with
            the rate when a 429 slows the pacer down.
        clock: a monotonic clock in seconds; ``sleep``: an ``asyncio.sleep``-like coroutine
            function (both injectable for tests).
        floor: the slowest the pacer goes after 429s, in requests per second.
    """

    def __init__(
        self,
        rate: float,
        *,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        floor: float = 1.0,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        if burst is not None and burst < 1:
            raise ValueError("burst must be at least 1")
        self.max_rate = rate
        self.rate = rate
        self.max_burst = max(1.0, burst if burst is not None else rate)
        self.floor = min(floor, rate)
        self._clock = clock
        self._sleep = sleep
        # One token to start, not a full bucket: the quota's own bucket may have just been spent (by
        # the run before, by another client), and two buckets spent whole leave no room for the
        # jitter between our sending and its counting (the emulator answered 429s when both started full).
        self._tokens = 1.0
        self._stamp = clock()
        self._lock = asyncio.Lock()
        self.throttled = 0

    @property
    def burst(self) -> float:
        """The bucket's size now: ``max_burst``, scaled down with the rate after 429s (at least 1)."""
        return max(1.0, self.max_burst * self.rate / self.max_rate)

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def wait_time(self) -> float:
        """Seconds until a token is there (0 when one is there now)."""
        self._refill()
        return 0.0 if self._tokens >= 1.0 - _EPSILON else (1.0 - self._tokens) / self.rate

    def try_take(self) -> bool:
        """Take a token if one is there now; False means "not yet" (see :meth:`wait_time`)."""
        if self.wait_time() > 0:
            return False
        self._tokens -= 1.0
        return True

    async def acquire(self) -> None:
        """Wait for a token and take it; waiters are served in the order they came."""
        async with self._lock:
            while not self.try_take():
                await self._sleep(self.wait_time())

    def on_throttled(self) -> None:
        """A 429 came back: the quota's bucket is empty; empty ours and slow down by a quarter."""
        self.throttled += 1
        self._refill()
        self.rate = max(self.floor, self.rate * 0.75)
        self._tokens = min(self._tokens, 0.0)  # the next request waits a token's time at the new rate

    def on_success(self) -> None:
        """A request went through: creep back towards the configured rate (about +1% each)."""
        if self.rate < self.max_rate:
            self._refill()  # tokens earned so far count at the rate they were earned at
            self.rate = min(self.max_rate, self.rate * 1.01)
