"""Request counters, so tests and benchmarks can tell how many calls a sync made."""

from __future__ import annotations

import threading
from collections import Counter


class Stats:
    """Thread-safe counts of requests by method, resource kind and status.

    ``kind`` is the first path segment after ``/scim/v2/`` (``Users``, ``Groups``, …) or
    ``other``; ids are never part of a key, so ``"PATCH /Groups"`` counts every group patch.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str, int]] = Counter()

    def record(self, method: str, kind: str, status: int) -> None:
        """Count one answered request."""
        with self._lock:
            self._counts[(method, kind, status)] += 1

    def reset(self) -> None:
        """Forget every count."""
        with self._lock:
            self._counts.clear()

    @property
    def counts(self) -> dict[tuple[str, str, int], int]:
        """A copy of the counts keyed by ``(method, kind, status)``."""
        with self._lock:
            return dict(self._counts)

    @property
    def total(self) -> int:
        """Every request answered, throttled ones included."""
        return sum(self.counts.values())

    @property
    def throttled(self) -> int:
        """Requests answered 429."""
        return sum(n for (_, _, status), n in self.counts.items() if status == 429)

    @property
    def writes(self) -> int:
        """Requests with a method other than GET (POST, PUT, PATCH, DELETE …), throttled ones included."""
        return sum(n for (method, _, _), n in self.counts.items() if method != "GET")

    @property
    def by_method(self) -> dict[str, int]:
        """Counts keyed ``"METHOD /Kind"``, e.g. ``"POST /Users"``, throttled ones included."""
        result: Counter[str] = Counter()
        for (method, kind, _), n in self.counts.items():
            result[f"{method} /{kind}"] += n
        return dict(result)

    @property
    def by_status(self) -> dict[int, int]:
        """Counts keyed by HTTP status."""
        result: Counter[int] = Counter()
        for (_, _, status), n in self.counts.items():
            result[status] += n
        return dict(result)
