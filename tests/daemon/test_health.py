"""The HTTP endpoint: /healthz, /readyz and /metrics on one port, nothing else."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from prometheus_client import CollectorRegistry, Counter

from syncd.errors import SyncdError
from syncd.health import HealthApp, HealthServer


class Probe:
    """What /readyz answers, switchable by the test."""

    def __init__(self) -> None:
        self.answer: tuple[bool, dict[str, Any]] | Exception = (True, {"role": "leader"})

    def __call__(self) -> tuple[bool, dict[str, Any]]:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@pytest.fixture
def probe() -> Probe:
    """The readiness the server reports."""
    return Probe()


@pytest.fixture
def server(probe: Probe) -> Iterator[str]:
    """A HealthServer on a free port with one counter registered; yields its base URL."""
    registry = CollectorRegistry()
    Counter("syncd_example", "An example.", registry=registry).inc(3)
    health = HealthServer("127.0.0.1", 0, HealthApp(registry, probe))
    health.start()
    try:
        yield f"http://127.0.0.1:{health.port}"
    finally:
        health.stop()


def test_healthz_answers_while_the_process_lives(server: str) -> None:
    """/healthz is 200 whatever the readiness."""
    response = httpx2.get(server + "/healthz")
    assert (200, {"status": "alive"}) == (response.status_code, response.json())


def test_readyz_follows_the_readiness_check(server: str, probe: Probe) -> None:
    """/readyz is 200 when ready and 503 when not, with the reason as JSON."""
    assert 200 == httpx2.get(server + "/readyz").status_code
    probe.answer = (False, {"reason": "no run has succeeded yet"})
    response = httpx2.get(server + "/readyz")
    assert (503, {"ready": False, "reason": "no run has succeeded yet"}) == (response.status_code, response.json())


def test_a_failing_readiness_check_is_not_ready(server: str, probe: Probe) -> None:
    """A readiness check that raises answers 503 and the server keeps serving."""
    probe.answer = RuntimeError("boom")
    response = httpx2.get(server + "/readyz")
    assert 503 == response.status_code
    assert "RuntimeError" in response.json()["reason"]
    assert 200 == httpx2.get(server + "/healthz").status_code


def test_metrics_are_served_in_prometheus_format(server: str) -> None:
    """/metrics is the Prometheus text format of the registry."""
    response = httpx2.get(server + "/metrics")
    assert 200 == response.status_code
    assert response.headers["content-type"].startswith("text/plain")
    assert "syncd_example_total 3.0" in response.text


def test_other_paths_and_methods_are_refused(server: str) -> None:
    """Any other path is 404 (not the metrics page), and only GET and HEAD are allowed."""
    assert 404 == httpx2.get(server + "/").status_code
    assert 404 == httpx2.get(server + "/metricsx").status_code
    assert 405 == httpx2.post(server + "/healthz").status_code


def test_a_taken_port_fails_with_the_key_to_change(probe: Probe) -> None:
    """A port already in use is a clear error naming http.listen."""
    first = HealthServer("127.0.0.1", 0, HealthApp(CollectorRegistry(), probe))
    try:
        with pytest.raises(SyncdError, match=r"http\.listen"):
            HealthServer("127.0.0.1", first.port, HealthApp(CollectorRegistry(), probe))
    finally:
        first.stop()
