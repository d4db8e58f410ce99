"""A token bucket shared by every request to one emulator instance.

Identity Center's SCIM APIs have a collective limit of 20 TPS per instance; above it they answer
429 ThrottlingException [UG:limits]. No Retry-After header is documented (UNCONFIRMED), so the
emulator sends none. The bucket holds one second's worth of tokens (burst = rate), a choice.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    """Admit at most ``rate`` requests per second on average, with bursts of ``burst``.

    Args:
        rate: tokens added per second (must be > 0).
        burst: bucket size; defaults to ``rate`` (at least 1).
        clock: a monotonic clock in seconds (injectable for tests).
    """

    def __init__(self, rate: float, burst: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = max(1.0, burst if burst is not None else rate)
        self._clock = clock
        self._tokens = self.burst
        self._stamp = clock()
        self._lock = threading.Lock()

    def try_acquire(self) -> bool:
        """Take one token if there is one; False means "answer 429"."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False
