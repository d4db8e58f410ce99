"""A retry is logged as syncd's one line and counted by stamina's Prometheus counter."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
import stamina
from prometheus_client import REGISTRY

from syncd import logging as syncd_logging


@pytest.fixture
def log() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    syncd_logging.configure("INFO", json=True, stream=stream)
    yield stream
    syncd_logging.configure(None)


def _retried() -> None:
    calls = []

    @stamina.retry(on=ConnectionError, attempts=3)
    def flaky() -> None:
        calls.append(1)
        if len(calls) < 2:
            raise ConnectionError("connection refused")

    flaky()


def test_a_retry_logs_one_syncd_line_and_counts_in_prometheus(log: io.StringIO) -> None:
    """One retry: one `retrying` line with attempt and cause (not stamina's own event); stamina_retries_total + 1."""

    def retries() -> float:
        return sum(
            sample.value
            for metric in REGISTRY.collect()
            if metric.name == "stamina_retries"
            for sample in metric.samples
            if sample.name == "stamina_retries_total"
        )

    before = retries()
    _retried()
    events = [json.loads(line) for line in log.getvalue().splitlines()]
    assert [("retrying", 2, "ConnectionError: connection refused")] == [
        (e["event"], e["attempt"], e["cause"]) for e in events
    ]
    assert 1 == retries() - before
