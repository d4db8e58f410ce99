"""The syncd_* metrics: what a run, the cache and the token's date make of them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import structlog
from prometheus_client import generate_latest

from syncd.cache import Cache
from syncd.metrics import Metrics, days_until
from syncd.plan import Plan
from syncd.results import RunResult
from syncd.token_expiry import warn_token_expiry
from tests.conftest import Workspace
from tests.integration.test_cli_sync import sync


def sample(metrics: Metrics, name: str, **labels: str) -> float | None:
    """One sample's value from the registry."""
    return metrics.registry.get_sample_value(name, labels)


def result(status: str = "ok", **counts: int) -> RunResult:
    """A finished run."""
    return RunResult(status, False, "incremental", Plan(), counts, {"source": 4, "target": 7}, 2.5)


def test_a_run_counts_its_status_duration_and_changes() -> None:
    """observe() adds the run to syncd_runs_total{status}, its duration, and each kind of change."""
    metrics = Metrics()
    metrics.observe(result("ok", users_created=3, members_added=5, users_deleted=0))
    metrics.observe(result("interrupted", users_created=1))
    assert (1, 1, 0) == tuple(sample(metrics, "syncd_runs_total", status=s) for s in ("ok", "interrupted", "failed"))
    assert 4 == sample(metrics, "syncd_changes_total", kind="users_created")
    assert 5 == sample(metrics, "syncd_changes_total", kind="members_added")
    assert 0 == sample(metrics, "syncd_changes_total", kind="users_deleted")  # every kind is there from 0
    assert 2 == sample(metrics, "syncd_run_duration_seconds_count", mode="incremental")
    assert 5.0 == sample(metrics, "syncd_run_duration_seconds_sum", mode="incremental")


def test_requests_are_counted_by_system_and_status() -> None:
    """Target requests count by HTTP status, 429s also as throttled; a source without statuses as unknown."""
    metrics = Metrics()
    metrics.observe(result(), target_statuses={201: 5, 429: 2})
    assert 5 == sample(metrics, "syncd_requests_total", system="target", status="201")
    assert 2 == sample(metrics, "syncd_throttled_requests_total", system="target")
    assert 4 == sample(metrics, "syncd_requests_total", system="source", status="unknown")
    assert 0 == sample(metrics, "syncd_throttled_requests_total", system="source")


def test_the_page_names_start_with_syncd() -> None:
    """Every metric on the page is syncd_*, process_* or python_*, and the required ones are there before any run."""
    metrics = Metrics(token_expires=date(2030, 1, 1))
    names = {
        line.split()[2] for line in generate_latest(metrics.registry).decode().splitlines() if line.startswith("# TYPE")
    }
    assert all(name.startswith(("syncd_", "process_", "python_")) for name in names)
    assert {
        "syncd_runs_total",
        "syncd_leader",
        "syncd_last_success_timestamp_seconds",
        "syncd_scim_token_expiry_days",
        "syncd_scim_token_expiry_timestamp_seconds",
        "process_resident_memory_bytes",
        "syncd_objects_managed",
        "syncd_run_duration_seconds",
        "syncd_requests_total",
        "syncd_throttled_requests_total",
        "syncd_changes_total",
    } <= names


def test_token_expiry_in_days() -> None:
    """Days until the token expires count from now to 00:00 UTC of that date, negative once passed."""
    now = datetime(2026, 5, 1, 12, tzinfo=UTC)
    assert 9.5 == days_until(date(2026, 5, 11), now)
    assert -0.5 == days_until(date(2026, 5, 1), now)
    metrics = Metrics(token_expires=(datetime.now(UTC) + timedelta(days=40)).date())
    value = sample(metrics, "syncd_scim_token_expiry_days")
    assert value is not None
    assert 39 < value <= 40
    assert sample(Metrics(), "syncd_scim_token_expiry_days") is None


def test_the_token_is_warned_about_from_thirty_days_before() -> None:
    """An expiry within 30 days is logged as a warning, a passed one as an error, a far one not at all."""
    now = datetime(2026, 5, 1, tzinfo=UTC)
    with structlog.testing.capture_logs() as logs:
        levels = [warn_token_expiry(date(2026, 5, 1) + timedelta(days=d), now) for d in (45, 30, 1, 0)]
    assert [None, "warning", "warning", "error"] == levels
    assert [("scim_token.expires_soon", 30), ("scim_token.expires_soon", 1)] == [
        (e["event"], e["days_left"]) for e in logs if e["log_level"] == "warning"
    ]
    assert ["scim_token.expired"] == [e["event"] for e in logs if e["log_level"] == "error"]


def test_refresh_reads_managed_objects_and_last_success(
    workspace: Workspace, directory: Callable[..., dict[str, Any]]
) -> None:
    """refresh() sets objects managed from the cache's counts and the newest success's time."""
    workspace.write(directory(4, {"eng": [0, 1], "ops": [2]}))
    assert 0 == sync(workspace)[0]
    metrics = Metrics()
    with Cache.open(workspace.cache_url) as cache:
        metrics.refresh(cache)
        last = cache.last_success()
    assert last is not None
    assert last.finished_at is not None
    assert (4, 2) == (
        sample(metrics, "syncd_objects_managed", kind="users"),
        sample(metrics, "syncd_objects_managed", kind="groups"),
    )
    assert last.finished_at.timestamp() == sample(metrics, "syncd_last_success_timestamp_seconds")
