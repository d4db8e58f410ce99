"""The kit's HTTP layer on its own: Link paging, rate-limit headers, retries, waits and pacing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx2
import pytest

from connectors.base import Deps
from connectors.kit import Http, ODataLinks, RateLimitHeaders, collect, next_link, rate_limit, server_time
from syncd.aio import bounded
from syncd.durations import parse_duration
from syncd.errors import SourceError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("15m", 900), ("24h", 86400), ("7d", 604800), ("2w", 1209600), ("1h30m", 5400), ("90", 90)],
)
def test_durations_parse(text: str, seconds: int) -> None:
    """Short duration strings turn into timedeltas."""
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "soon", "24x", "h24", "1h 3"])
def test_bad_durations_are_refused(text: str) -> None:
    """Anything else is a ValueError that shows the accepted forms."""
    with pytest.raises(ValueError, match="30s, 15m, 24h or 7d"):
        parse_duration(text)


def _response(headers: list[tuple[str, str]], status: int = 200) -> httpx2.Response:
    return httpx2.Response(status, headers=headers, request=httpx2.Request("GET", "https://acme.okta.com/x"))


def test_next_link_reads_separate_link_headers() -> None:
    """Okta's self and next links come as two Link headers; the next URL is returned untouched."""
    response = _response(
        [
            ("Link", '<https://acme.okta.com/api/v1/users?limit=200>; rel="self"'),
            ("Link", '<https://acme.okta.com/api/v1/users?after=00ud4t%3D&limit=200>; rel="next"'),
        ]
    )
    assert next_link(response) == "https://acme.okta.com/api/v1/users?after=00ud4t%3D&limit=200"


def test_next_link_reads_a_folded_header() -> None:
    """A single comma-separated Link value (other providers) works too, with unquoted rel."""
    response = _response([("Link", "<https://a.example/1>; rel=prev, <https://a.example/3>; rel=next")])
    assert next_link(response) == "https://a.example/3"


def test_no_next_link_on_the_last_page() -> None:
    """Without rel="next" there is no next page."""
    assert next_link(_response([("Link", '<https://acme.okta.com/x>; rel="self"')])) is None
    assert next_link(_response([])) is None


def test_rate_limit_headers_take_the_minimum() -> None:
    """Repeated X-Rate-Limit-* headers (lines or comma-joined) count by their smallest value."""
    response = _response(
        [
            ("X-Rate-Limit-Limit", "600"),
            ("X-Rate-Limit-Limit", "1200"),
            ("X-Rate-Limit-Remaining", "500, 7"),
            ("X-Rate-Limit-Reset", "1750000060"),
            ("X-Rate-Limit-Reset", "1750000030"),
        ]
    )
    limits = rate_limit(response)
    assert (limits.limit, limits.remaining, limits.reset) == (600, 7, 1750000030.0)


def test_server_time_reads_date() -> None:
    """The Date header becomes epoch seconds; a missing or broken one gives None."""
    assert server_time(_response([("Date", "Sun, 15 Jun 2025 15:06:40 GMT")])) == 1750000000.0
    assert server_time(_response([("Date", "yesterday")])) is None
    assert server_time(_response([])) is None


class _Recorder:
    def __init__(self) -> None:
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


async def _session(
    handler: httpx2.MockTransport, clock: Callable[[], float] = time.time, **kwargs: Any
) -> tuple[Http, _Recorder]:
    recorder = _Recorder()
    deps = Deps(transport=handler, sleep=recorder.sleep, random=lambda: 0.0, clock=clock)
    session = Http(deps, provider="Test", limits=RateLimitHeaders(), **kwargs)
    return session, recorder


@pytest.mark.anyio
async def test_a_bogus_reset_is_capped() -> None:
    """A Reset an hour away does not stall the daemon for an hour: the wait is capped at max_wait."""
    answers = iter(
        [
            httpx2.Response(
                429,
                headers={
                    "Date": "Sun, 15 Jun 2025 15:06:40 GMT",
                    "X-Rate-Limit-Limit": "600",
                    "X-Rate-Limit-Remaining": "0",
                    "X-Rate-Limit-Reset": str(1750000000 + 3600),
                },
            ),
            httpx2.Response(200, json=[]),
        ]
    )
    session, recorder = await _session(httpx2.MockTransport(lambda request: next(answers)), max_wait=120.0)

    response = await session.request("GET", "https://acme.okta.com/api/v1/users")

    assert response.status_code == 200
    assert recorder.sleeps == [120.0]
    assert session.requests == 2


@pytest.mark.anyio
async def test_retry_after_is_honoured_without_rate_limit_headers() -> None:
    """A 429 with only Retry-After (Graph, Google) waits that long."""
    answers = iter([httpx2.Response(429, headers={"Retry-After": "7"}), httpx2.Response(200)])
    session, recorder = await _session(httpx2.MockTransport(lambda request: next(answers)))

    await session.request("GET", "https://graph.example/v1.0/users")

    assert recorder.sleeps == [7.0]


@pytest.mark.anyio
async def test_client_errors_are_returned_not_retried() -> None:
    """A 4xx other than 429 comes straight back to the caller after one request."""
    session, recorder = await _session(httpx2.MockTransport(lambda request: httpx2.Response(404)))

    response = await session.request("GET", "https://acme.okta.com/api/v1/groups/x/users")

    assert (response.status_code, session.requests, recorder.sleeps) == (404, 1, [])


@pytest.mark.anyio
async def test_server_errors_past_the_retries_raise() -> None:
    """503s past max_retries raise SourceError naming the status and the path."""
    session, recorder = await _session(httpx2.MockTransport(lambda request: httpx2.Response(503)), max_retries=2)

    with pytest.raises(SourceError, match=r"Test kept answering HTTP 503 to GET /x; gave up after 2 retries"):
        await session.request("GET", "https://acme.okta.com/x")
    assert recorder.sleeps == [1.0, 2.0]


@pytest.mark.anyio
async def test_bounded_keeps_order_and_limit() -> None:
    """Jobs run at most `limit` at a time and their results come back in job order."""
    running = 0
    peak = 0

    async def job(n: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0)
        running -= 1
        return n * n

    results = await bounded(range(10), job, 3)

    assert results == [n * n for n in range(10)]
    assert peak == 3


@pytest.mark.anyio
async def test_bounded_raises_the_first_failure_and_cancels_the_rest() -> None:
    """A failing job raises its own exception (not an ExceptionGroup) and stops the others."""
    finished: list[int] = []

    async def job(n: int) -> int:
        if n == 1:
            raise SourceError("listing 1 failed")
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        finished.append(n)
        return n

    with pytest.raises(SourceError, match="listing 1 failed"):
        await bounded(range(20), job, 2)
    assert len(finished) < 19


@pytest.mark.anyio
async def test_requests_in_flight_count_against_remaining() -> None:
    """Parallel requests not yet answered are subtracted from Remaining before deciding to wait."""
    date = 1750000000
    gate = asyncio.Event()
    calls = 0

    async def handler(request: httpx2.Request) -> httpx2.Response:
        nonlocal calls
        calls += 1
        if calls > 1:
            await gate.wait()  # hold every later request in flight
        return httpx2.Response(
            200,
            headers={
                "Date": "Sun, 15 Jun 2025 15:06:40 GMT",
                "X-Rate-Limit-Limit": "20",
                "X-Rate-Limit-Remaining": "5",
                "X-Rate-Limit-Reset": str(date + 30),
            },
        )

    session, recorder = await _session(httpx2.MockTransport(handler), clock=lambda: float(date))
    await session.request("GET", "https://acme.okta.com/api/v1/users")
    held = [asyncio.create_task(session.request("GET", "https://acme.okta.com/api/v1/users")) for _ in range(3)]
    for _ in range(5):
        await asyncio.sleep(0)
    assert recorder.sleeps == []  # 5, 4 and 3 left after the ones in flight: above the reserve of 2

    fourth = asyncio.create_task(session.request("GET", "https://acme.okta.com/api/v1/users"))
    for _ in range(5):
        await asyncio.sleep(0)
    gate.set()
    await asyncio.gather(*held, fourth)

    assert recorder.sleeps == [30 + 1.0]  # 5 minus 3 in flight is the reserve: wait for the reset


@pytest.mark.anyio
async def test_a_request_body_may_be_a_form_json_or_raw_bytes() -> None:
    """data sends a form, json a JSON document, content the bytes as given (with the caller's type)."""
    seen: list[tuple[str | None, bytes]] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append((request.headers.get("content-type"), request.content))
        return httpx2.Response(200)

    http = Http(Deps(transport=httpx2.MockTransport(handler)), provider="Test")
    await http.request("POST", "https://api.example/a", data={"a": "1"})
    await http.request("POST", "https://api.example/b", json={"b": 2})
    await http.request("POST", "https://api.example/c", content=b"c=3", headers={"Content-Type": "text/plain"})
    await http.aclose()

    assert seen == [
        ("application/x-www-form-urlencoded", b"a=1"),
        ("application/json", b'{"b":2}'),
        ("text/plain", b"c=3"),
    ]


@pytest.mark.anyio
async def test_listing_headers_go_with_every_page() -> None:
    """Headers given to a listing are sent on the next-link pages too (a next link carries only the query)."""
    seen: list[str | None] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request.headers.get("consistencylevel"))
        if "skiptoken" in str(request.url):
            return httpx2.Response(200, json={"value": [2]})
        return httpx2.Response(200, json={"value": [1], "@odata.nextLink": f"{request.url}&$skiptoken=x"})

    session, _ = await _session(httpx2.MockTransport(handler))

    items = await collect(
        session,
        "https://graph.example/v1.0/groups/g/transitiveMembers/microsoft.graph.user",
        ODataLinks("Test"),
        params={"$count": "true"},
        headers={"ConsistencyLevel": "eventual"},
    )

    assert (items, seen) == ([1, 2], ["eventual", "eventual"])


@pytest.mark.anyio
async def test_an_answer_that_arrives_late_does_not_raise_remaining_again() -> None:
    """Two answers of one window arriving out of order: the lower Remaining is the later one, so
    the next request waits for the reset instead of spending what is no longer there."""
    date = 1750000000
    remaining = iter(["2", "1", "0"])  # as the server counted them
    held, released = asyncio.Event(), asyncio.Event()

    async def handler(request: httpx2.Request) -> httpx2.Response:
        count = next(remaining)
        if count == "2":  # counted first, answered last
            held.set()
            await released.wait()
        headers = {
            "Date": "Sun, 15 Jun 2025 15:06:40 GMT",
            "X-Rate-Limit-Limit": "3",
            "X-Rate-Limit-Remaining": count,
            "X-Rate-Limit-Reset": str(date + 30),
        }
        return httpx2.Response(200, headers=headers)

    session, recorder = await _session(httpx2.MockTransport(handler), clock=lambda: float(date))
    late = asyncio.create_task(session.request("GET", "https://acme.okta.com/api/v1/users"))
    await held.wait()
    await session.request("GET", "https://acme.okta.com/api/v1/users")  # answered: 1 left
    released.set()
    await late  # answered afterwards: "2 left", from before
    assert recorder.sleeps == []

    await session.request("GET", "https://acme.okta.com/api/v1/users")

    assert recorder.sleeps == [30 + 1.0]  # 1 left (the last one), not the 2 the late answer said
