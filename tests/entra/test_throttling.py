"""Throttling: Retry-After on 429, 503 and 504, backoff without it, slowing down past the throttle limit."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx2
import pytest
import stamina

from syncd.errors import SourceError
from tests.entra.conftest import Clock, expected, read, summary
from tests.fakes.entra import FakeEntra


pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def _real_waits() -> None:
    """Waits go through the test clock here, so stamina's test mode (no waits) stays off."""
    stamina.set_testing(False)


def _tenant(fake: FakeEntra) -> None:
    group = fake.add_group("g")
    fake.add_members(group, *(fake.add_user(f"u{i}.x") for i in range(3)))


@pytest.mark.parametrize("status", [429, 503, 504])
async def test_retry_after_is_honoured(fake: FakeEntra, make_source: Any, clock: Clock, status: int) -> None:
    """A 429, 503 or 504 with Retry-After: 7 waits 7 s (plus jitter) and the read completes."""
    _tenant(fake)
    fake.inject(status, path="/v1.0/users", retry_after=7)

    result = await read(make_source())

    assert clock.sleeps == [7.5]  # the server's wait, plus the jitter (random() = 0.5)
    assert summary(result) == expected(fake)


async def test_without_retry_after_it_backs_off(fake: FakeEntra, make_source: Any, clock: Clock) -> None:
    """429s without Retry-After back off exponentially, then the read completes."""
    _tenant(fake)
    fake.inject(429, path="/v1.0/groups/delta", times=3)

    result = await read(make_source())

    assert len(clock.sleeps) == 3
    assert clock.sleeps[0] < clock.sleeps[1] < clock.sleeps[2]
    assert summary(result) == expected(fake)


async def test_a_429_that_does_not_end_fails_the_read(fake: FakeEntra, make_source: Any) -> None:
    """After max_retries, a Graph that keeps answering 429 fails the read, naming the status."""
    _tenant(fake)
    fake.inject(429, path="/v1.0/users", times=10, retry_after=1)

    with pytest.raises(SourceError, match="HTTP 429"):
        await read(make_source(max_retries=2))


async def test_past_the_throttle_limit_requests_slow_down(fake: FakeEntra, make_source: Any, clock: Clock) -> None:
    """x-ms-throttle-limit-percentage 1.2 makes the next request wait 2 s (20 % of the 10 s window)."""
    _tenant(fake)
    fake.throttle_percentage = 1.2

    await read(make_source())

    assert clock.sleeps
    assert all(wait == pytest.approx(2.5) for wait in clock.sleeps)  # 2 s plus the jitter


async def test_below_the_throttle_limit_nothing_waits(fake: FakeEntra, make_source: Any, clock: Clock) -> None:
    """At 0.9 (over 80 %, under the limit) the header is sent but no request waits."""
    _tenant(fake)
    fake.throttle_percentage = 0.9

    await read(make_source())

    assert clock.sleeps == []


class _Counting(httpx2.AsyncBaseTransport):
    """The fake's transport, counting the member listings in flight (each yields twice while open)."""

    def __init__(self, fake: FakeEntra) -> None:
        self.inner = fake.transport
        self.in_flight = 0
        self.peak = 0

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        listing = "/transitiveMembers/" in request.url.path
        if listing:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            await asyncio.sleep(0)
            await asyncio.sleep(0)
        try:
            return await self.inner.handle_async_request(request)
        finally:
            if listing:
                self.in_flight -= 1


async def test_member_listings_run_at_most_concurrency_at_once(fake: FakeEntra, make_source: Any) -> None:
    """With concurrency = 2, six groups' member listings run two at a time, never more."""
    for g in range(6):
        fake.add_members(fake.add_group(f"g{g}"), fake.add_user(f"u{g}.x"))
    counting = _Counting(fake)

    await read(make_source(transport=counting, concurrency=2))

    assert counting.peak == 2
