"""The daemon's Prometheus metrics, on a registry of its own (never the global one).

========================================== ======= ============================================
name                                       type    meaning
========================================== ======= ============================================
``syncd_runs_total{status}``               counter runs ended ok, failed, refused, interrupted
``syncd_runs_skipped_total{mode}``         counter runs due while another was going (not queued)
``syncd_run_duration_seconds{mode}``       histo   how long runs took
``syncd_run_in_progress``                  gauge   1 while a run is going
``syncd_changes_total{kind}``              counter changes applied (users_created, users_adopted,
                                                   members_added…; every kind from 0)
``syncd_requests_total{system,status}``    counter HTTP requests to the source and to the target,
                                                   by status (``unknown`` where a connector does
                                                   not report it)
``syncd_throttled_requests_total{system}`` counter requests answered 429
``syncd_objects_managed{kind}``            gauge   users and groups syncd manages (the cache)
``syncd_last_success_timestamp_seconds``   gauge   when the newest successful run ended
``syncd_scim_token_expiry_timestamp_seconds`` gauge when the SCIM token expires (Unix time, if set)
``syncd_scim_token_expiry_days``           gauge   days until the SCIM token expires (if set)
``syncd_leader``                           gauge   1 on the replica that syncs, 0 on a standby
``syncd_info{version}``                    gauge   always 1
``process_*``, ``python_*``                        the client library's default collectors: memory
                                                   (``process_resident_memory_bytes``), CPU, open
                                                   files, garbage collections, the Python version
========================================== ======= ============================================
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from importlib.metadata import PackageNotFoundError, version

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)

from syncd.cache import Cache
from syncd.plan import COUNT_KEYS
from syncd.results import RunResult


__all__ = ["RUN_STATUSES", "Metrics", "days_until"]

RUN_STATUSES = ("ok", "failed", "refused", "interrupted")
_DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200)


def _version() -> str:
    try:
        return version("syncd")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "unknown"


def days_until(expires: date, now: datetime | None = None) -> float:
    """Days from ``now`` to the start (00:00 UTC) of ``expires``; negative once it has passed."""
    now = now or datetime.now(UTC)
    return (datetime.combine(expires, time(), tzinfo=UTC) - now).total_seconds() / 86400


class Metrics:
    """Every ``syncd_*`` metric, and how a run, a skip, or the cache updates them."""

    def __init__(self, *, token_expires: date | None = None) -> None:
        """Create the metrics on a fresh :attr:`registry`; the token gauge only when its date is known."""
        disable_created_metrics()  # type: ignore[no-untyped-call]  # no *_created series: they double the page
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        # The collectors the global registry has by default (process_*, python_*), on ours, so
        # that memory and CPU can be watched (syncd aims at 250 MB for 100k users).
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        self.runs = Counter("syncd_runs", "Runs by how they ended.", ["status"], registry=r)
        self.skipped = Counter(
            "syncd_runs_skipped", "Runs that were due while another was going, skipped.", ["mode"], registry=r
        )
        self.duration = Histogram(
            "syncd_run_duration_seconds", "How long runs took.", ["mode"], buckets=_DURATION_BUCKETS, registry=r
        )
        self.in_progress = Gauge("syncd_run_in_progress", "1 while a run is going.", registry=r)
        self.changes = Counter("syncd_changes", "Changes applied, by kind.", ["kind"], registry=r)
        self.requests = Counter(
            "syncd_requests",
            "HTTP requests sent, by system (source, target) and status.",
            ["system", "status"],
            registry=r,
        )
        self.throttled = Counter(
            "syncd_throttled_requests", "Requests answered 429 (throttled).", ["system"], registry=r
        )
        self.managed = Gauge("syncd_objects_managed", "Objects syncd manages, by kind.", ["kind"], registry=r)
        self.last_success = Gauge(
            "syncd_last_success_timestamp_seconds", "When the newest successful run ended (Unix time).", registry=r
        )
        self.leader = Gauge("syncd_leader", "1 on the replica that syncs, 0 on a standby.", registry=r)
        Gauge("syncd_info", "syncd's version.", ["version"], registry=r).labels(_version()).set(1)
        for status in RUN_STATUSES:
            self.runs.labels(status)
        for mode in ("incremental", "full"):
            self.skipped.labels(mode)
        for system in ("source", "target"):
            self.throttled.labels(system)
        for kind in COUNT_KEYS:
            self.changes.labels(kind)
        self.token_expires = token_expires
        if token_expires is not None:
            expiry = Gauge(
                "syncd_scim_token_expiry_days", "Days until the SCIM token expires (negative: expired).", registry=r
            )
            expiry.set_function(lambda: days_until(token_expires))
            Gauge(
                "syncd_scim_token_expiry_timestamp_seconds",
                "When the SCIM token expires (Unix time), like probe_ssl_earliest_cert_expiry.",
                registry=r,
            ).set(datetime.combine(token_expires, time(), tzinfo=UTC).timestamp())

    def observe(
        self,
        result: RunResult,
        *,
        target_statuses: Mapping[int, int] | None = None,
        source_statuses: Mapping[int, int] | None = None,
    ) -> None:
        """Count one finished run: its status, duration, changes and requests.

        ``target_statuses`` / ``source_statuses`` are requests by HTTP status (``RequestStats.by_status``);
        without them the run's request totals are counted under status ``unknown``.
        """
        self.runs.labels(result.status).inc()
        self.duration.labels(result.mode).observe(result.duration_s)
        for kind, count in result.counts.items():
            if count:
                self.changes.labels(kind).inc(count)
        for system, statuses in (("source", source_statuses), ("target", target_statuses)):
            if statuses is None:
                total = result.requests.get(system, 0)
                if total:
                    self.requests.labels(system, "unknown").inc(total)
                continue
            for status, count in statuses.items():
                if count:
                    self.requests.labels(system, str(status)).inc(count)
            if statuses.get(429):
                self.throttled.labels(system).inc(statuses[429])

    def run_crashed(self) -> None:
        """Count a run that ended without a result (the cache could not even record it)."""
        self.runs.labels("failed").inc()

    def refresh(self, cache: Cache) -> None:
        """Read the cache's counts and newest success (cheap queries). Raises CacheError when unreachable."""
        last = cache.last_success()
        if last is not None and last.finished_at is not None:
            self.last_success.set(last.finished_at.timestamp())
        user_count, group_count = cache.managed_counts()
        self.managed.labels("users").set(user_count)
        self.managed.labels("groups").set(group_count)
