"""Okta's buckets are shared by the org's clients: alone syncd spends the whole bucket, with others it leaves 10%."""

from __future__ import annotations

import httpx2
import pytest
from structlog.testing import capture_logs

from tests.fakes.okta import FakeOkta
from tests.okta.conftest import Clock, MakeSource, read


pytestmark = pytest.mark.anyio

LIMIT = 100


def _groups(fake: FakeOkta, count: int) -> None:
    fake.limits["group-users"] = LIMIT
    user = fake.add_user()
    for i in range(count):
        fake.add_member(fake.add_group(f"g{i:03d}"), user)


def _member_answers(fake: FakeOkta) -> list[httpx2.Response]:
    return [r for q, r in zip(fake.requests, fake.responses, strict=True) if q.url.path.startswith("/api/v1/groups/")]


def _first_window(answers: list[httpx2.Response]) -> list[httpx2.Response]:
    reset = answers[0].headers["x-rate-limit-reset"]
    return [r for r in answers if r.headers["x-rate-limit-reset"] == reset]


async def test_alone_a_read_spends_the_bucket_beyond_the_reserve(
    fake: FakeOkta, make_source: MakeSource, clock: Clock
) -> None:
    """With nobody else on the bucket, 99 of its 100 requests go out in one window, then one wait, no 429."""
    _groups(fake, 150)

    with capture_logs() as logs:
        result = await read(make_source(concurrency=4))

    assert len(result.groups) == 150
    assert [r for r in fake.responses if r.status_code == 429] == []
    window = _first_window(_member_answers(fake))
    assert len(window) == LIMIT - 1  # beyond the 90 a fixed 10% reserve allowed
    assert min(int(r.headers["x-rate-limit-remaining"]) for r in window) == 1
    assert len(clock.sleeps) == 1
    assert not [e for e in logs if e["event"] == "http.rate_limit_shared"]


async def test_with_another_client_on_the_bucket_the_reserve_is_left(
    fake: FakeOkta, make_source: MakeSource, clock: Clock
) -> None:
    """Another client spending from the members bucket makes syncd stop at 10% left, and say so once."""
    _groups(fake, 150)

    def other_client(request: httpx2.Request) -> None:
        if "/api/v1/groups/" in request.url.path:
            fake.spend("group-users", 1)  # one of theirs for each of ours

    fake.before = other_client

    with capture_logs() as logs:
        result = await read(make_source(concurrency=4))

    assert len(result.groups) == 150
    assert [r for r in fake.responses if r.status_code == 429] == []
    window = _first_window(_member_answers(fake))
    assert min(int(r.headers["x-rate-limit-remaining"]) for r in window) >= LIMIT // 10 - 1
    assert len(window) < 50  # half of what was spent was theirs
    shared = [e for e in logs if e["event"] == "http.rate_limit_shared"]
    assert len(shared) == 1
    assert shared[0]["bucket"] == "group-users"
    assert shared[0]["reserve"] == LIMIT // 10


async def test_a_window_with_nobody_else_gives_the_reserve_back(
    fake: FakeOkta, make_source: MakeSource, clock: Clock
) -> None:
    """Once the other client stops, the next window with no one else is spent whole again."""
    _groups(fake, 300)
    spent = False

    def other_client_once(request: httpx2.Request) -> None:
        nonlocal spent
        if "/api/v1/groups/" in request.url.path and not spent:
            spent = True
            fake.spend("group-users", 20)

    fake.before = other_client_once

    with capture_logs() as logs:
        await read(make_source(concurrency=4))

    answers = _member_answers(fake)
    resets = list(dict.fromkeys(r.headers["x-rate-limit-reset"] for r in answers))
    by_window = [[r for r in answers if r.headers["x-rate-limit-reset"] == reset] for reset in resets]
    lowest = [min(int(r.headers["x-rate-limit-remaining"]) for r in w) for w in by_window]
    assert lowest[0] >= LIMIT // 10 - 1  # shared: the reserve is left
    assert lowest[1] >= LIMIT // 10 - 1  # still kept while a window shows whether they are gone
    assert lowest[2] == 1  # that window had nobody else: spent whole again
    assert [e["event"] for e in logs if e["event"].startswith("http.rate_limit_")] == [
        "http.rate_limit_shared",
        "http.rate_limit_alone",
    ]
