"""The source side of the floor: what a provider's quota lets through, and what the read spent of it.

Each served source (the benchmark's Okta, Google and Entra) counts, per quota, what the requests
it answered spent, and how many it refused for the quota (Okta's and Graph's 429, Google's 403
``userRateLimitExceeded``). The source floor of a scenario is the least time the provider's quotas
need for what the read spent: a quota of ``limit`` units per fixed window of ``seconds`` serves
its first ``limit`` units at once and the next ones a window later, so ``used`` units need
``(⌈used ÷ limit⌉ − 1) × seconds``; quotas are independent (Okta's per-endpoint buckets), so the
floor is the largest of them. What the read spends is what it asked for (a read that asks for
more than it needs shows in its request count, not in a lower floor). A file source has none: 0.

The quotas are the fakes' own, set to the providers' published figures: Okta's Workforce
per-minute buckets (``tests.fakes.okta.DEFAULT_LIMITS``), Google's 2,400 queries per minute per
user, Graph's 8,000 resource units per 10 s for a tenant over 500 users. ``--source-quota none``
lifts them (the default of ``--size memory``, whose emulator is unthrottled too).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Quota:
    """``limit`` units per fixed window of ``seconds`` (a per-minute bucket is ``Quota(600, 60)``)."""

    limit: int
    seconds: float

    def floor(self, used: int) -> float:
        """The least time in which ``used`` units get through, starting with a full window."""
        if used <= self.limit:
            return 0.0
        return (math.ceil(used / self.limit) - 1) * self.seconds

    @property
    def per_second(self) -> float:
        """The quota as a rate, for the table's description."""
        return self.limit / self.seconds


@dataclass(slots=True)
class Meter:
    """What a served source's requests spent of each quota, and how many the quota refused."""

    quotas: Mapping[str, Quota]
    used: Counter[str] = field(default_factory=Counter)
    throttled: int = 0

    def spend(self, quota: str, units: int = 1) -> None:
        """A request got through, spending ``units`` of ``quota``."""
        self.used[quota] += units

    def refuse(self) -> None:
        """A request was refused for the quota."""
        self.throttled += 1

    def reset(self) -> None:
        """Forget what was counted (at the start of each scenario)."""
        self.used.clear()
        self.throttled = 0

    def floor(self) -> float:
        """Seconds the quotas need for what was spent: the largest over independent quotas."""
        return max((q.floor(self.used[name]) for name, q in self.quotas.items()), default=0.0)

    def snapshot(self) -> SourceSpend:
        """What was spent so far, as a value the outcome keeps."""
        return SourceSpend(dict(self.used), self.throttled, self.floor())


@dataclass(frozen=True, slots=True)
class SourceSpend:
    """A scenario's spending of the source's quotas: units per quota, refusals, and the floor they make."""

    used: Mapping[str, int]
    throttled: int
    floor: float


NO_SOURCE = SourceSpend({}, 0, 0.0)
"""The file source: no quota, no floor."""
