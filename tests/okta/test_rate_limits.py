"""Rate limits, retries and backoff against the fake org (no real sleeps: the Clock records them)."""

from __future__ import annotations

import asyncio
from email.utils import parsedate_to_datetime

import httpx2
import pytest

from connectors.kit import rate_limit
from syncd.errors import SourceError
from tests.fakes.okta import FakeOkta
from tests.okta.conftest import Clock, MakeSource, expected, read, summary


pytestmark = pytest.mark.anyio


async def test_a_429_mid_listing_is_waited_out_by_the_server_clock(
    fake: FakeOkta, make_source: MakeSource, clock: Clock
) -> None:
    """A 429 on the second user page waits Reset minus the server's Date (+1 s, + jitter), then completes."""
    for _ in range(450):
        fake.add_user()
    fake.inject(429, on=2, path="/api/v1/users")

    result = await read(make_source())

    throttled = next(r for r in fake.responses if r.status_code == 429)
    assert throttled.json()["errorCode"] == "E0000047"
    date = parsedate_to_datetime(throttled.headers["date"]).timestamp()
    reset = rate_limit(throttled).reset
    assert reset is not None
    # Our clock is 90 s behind the fake's; waiting by it would have given 151.5 s.
    assert clock.sleeps == [reset - date + 1 + 0.5]
    assert expected(fake) == summary(result)
    assert len(fake.calls("/api/v1/users")) == 4  # three pages and one retry
    assert result.requests == len(fake.requests)


async def test_retries_are_capped(fake: FakeOkta, make_source: MakeSource, clock: Clock) -> None:
    """When every attempt is throttled, the read gives up after max_retries with SourceError."""
    fake.add_user()
    fake.inject(429, on=1, path="/api/v1/users", times=100)

    with pytest.raises(SourceError, match=r"kept answering HTTP 429 .* after 2 retries"):
        await read(make_source(max_retries=2))

    assert len(fake.calls("/api/v1/users")) == 3
    assert len(clock.sleeps) == 2


async def test_server_errors_are_retried_with_backoff(fake: FakeOkta, make_source: MakeSource, clock: Clock) -> None:
    """Two 500s on a member listing are retried with growing waits, and the read completes."""
    user = fake.add_user()
    group = fake.add_group("g")
    fake.add_member(group, user)
    fake.inject(500, on=1, path=f"/api/v1/groups/{group}/users", times=2)

    result = await read(make_source())

    assert summary(result) == expected(fake)
    assert clock.sleeps == [1 + 0.5, 2 + 0.5]
    assert result.requests == len(fake.requests) == 5


async def test_network_errors_are_retried(fake: FakeOkta, make_source: MakeSource, clock: Clock) -> None:
    """A connection error is retried and counted as a request."""
    fake.add_user()
    fake.inject("network", on=1)

    result = await read(make_source())

    assert len(result.users) == 1
    assert clock.sleeps == [1.5]
    assert result.requests == 3  # failed attempt, users, groups


async def test_network_errors_past_the_retries_fail_the_read(fake: FakeOkta, make_source: MakeSource) -> None:
    """A connection that keeps failing ends in SourceError naming the request."""
    fake.inject("network", on=1, times=10)

    with pytest.raises(SourceError, match=r"cannot reach Okta \(GET /api/v1/users\): ConnectError"):
        await read(make_source(max_retries=3))


async def test_a_concurrency_429_backs_off_instead_of_trusting_reset(
    fake: FakeOkta, make_source: MakeSource, clock: Clock
) -> None:
    """A 429 with Limit and Remaining at 0 (the concurrency limit) backs off from 1 s, ignoring Reset."""
    fake.add_user()
    fake.inject("concurrency", on=1, times=2)

    result = await read(make_source())

    assert len(result.users) == 1
    assert clock.sleeps == [1.5, 2.5]


async def test_requests_slow_down_before_the_bucket_runs_dry(
    fake: FakeOkta, make_source: MakeSource, clock: Clock
) -> None:
    """With a small bucket, parallel listings wait for the reset before Remaining hits 0: no 429 at all."""
    fake.limits["group-users"] = 20
    user = fake.add_user()
    for i in range(50):
        fake.add_member(fake.add_group(f"g{i}"), user)

    async def interleaving(request: httpx2.Request) -> httpx2.Response:
        await asyncio.sleep(0)  # let the other listings send theirs before this one answers
        return fake.handler(request)

    result = await read(make_source(concurrency=4, transport=httpx2.MockTransport(interleaving)))

    assert len(result.groups) == 50
    assert [r for r in fake.responses if r.status_code == 429] == []
    assert min(int(r.headers["x-rate-limit-remaining"]) for r in fake.responses) >= 1
    assert len(clock.sleeps) >= 2
    assert all(55 < s < 64 for s in clock.sleeps)  # until the ~60 s window resets, by the server's clock


async def test_repeated_rate_limit_headers_count_by_their_minimum(
    fake: FakeOkta, make_source: MakeSource, clock: Clock
) -> None:
    """When X-Rate-Limit-Remaining repeats, the smallest value decides: here it makes the next page wait."""
    for _ in range(250):
        fake.add_user()

    def with_a_second_header(request: httpx2.Request) -> httpx2.Response:
        response = fake.handler(request)
        if "after" in request.url.params or request.url.path != "/api/v1/users":
            return response
        # A second header line, as when two limits apply to one request (docs/references.md §1.8).
        headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() != "content-length"]
        headers.append(("X-Rate-Limit-Remaining", "1"))
        return httpx2.Response(response.status_code, content=response.content, headers=headers)

    result = await read(make_source(transport=httpx2.MockTransport(with_a_second_header)))

    assert len(result.users) == 250
    assert len(clock.sleeps) == 1
    assert 60 < clock.sleeps[0] < 62
