"""HTTP plumbing shared by the identity-provider connectors (Okta now; Google and Entra next).

* :func:`parse_duration`: ``"30s"``, ``"15m"``, ``"24h"``, ``"7d"`` settings values.
* :func:`next_link`: RFC 8288 ``Link`` header paging, the URL followed exactly as given.
* :func:`rate_limit` / :func:`server_time`: the ``X-Rate-Limit-*`` and ``Date`` headers.
* :class:`HttpSession`: every request of one connector goes through it. It counts requests,
  retries 429, 5xx and network errors a bounded number of times, waits out rate limits by the
  *server's* clock, and slows down before a bucket runs dry.
* :func:`gather_bounded` (from :mod:`syncd.aio`): run listings in parallel, at most ``limit`` at a time; the first
  failure cancels the rest.

Nothing here knows a provider's URLs or error bodies; the connector turns the final response
into records or into a :class:`~syncd.errors.SourceError`.
"""

from __future__ import annotations

import asyncio
import math
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx2
import structlog

from syncd.aio import gather_bounded
from syncd.errors import SourceError


__all__ = [
    "HttpSession",
    "RateLimit",
    "Sleep",
    "gather_bounded",
    "next_link",
    "parse_duration",
    "rate_limit",
    "server_time",
]

log = structlog.get_logger(__name__)

Sleep = Callable[[float], Awaitable[None]]
"""An ``asyncio.sleep``-like coroutine function; tests pass one that records instead of waiting."""


# --- durations ------------------------------------------------------------------------------

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: str) -> timedelta:
    """Parse ``"30s"``, ``"15m"``, ``"24h"``, ``"7d"``, ``"2w"`` or a sum like ``"1h30m"``.

    A bare number counts as seconds. Raises ``ValueError`` naming the accepted forms.
    """
    text = value.strip().replace(" ", "")
    if not text:
        raise ValueError("the duration is empty; write it like 30s, 15m, 24h or 7d")
    try:
        return timedelta(seconds=float(text))
    except ValueError:
        pass
    position = 0
    seconds = 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != position:
            break
        seconds += float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
        position = match.end()
    if position != len(text) or position == 0:
        raise ValueError(f"{value!r} is not a duration; write it like 30s, 15m, 24h or 7d")
    return timedelta(seconds=seconds)


# --- headers ----------------------------------------------------------------------------------

_LINK_VALUE = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,]*)*)")
_LINK_REL = re.compile(r"""rel\s*=\s*(?:"([^"]*)"|([^\s;,"]+))""", re.IGNORECASE)


def next_link(response: httpx2.Response) -> str | None:
    """The ``rel="next"`` target of the response's ``Link`` headers, exactly as sent, or None.

    Okta sends ``self`` and ``next`` as *separate* ``Link`` headers ("Core Okta API ›
    Pagination", idp-apis.md §1.3); others fold them into one comma-separated value. Both are
    read here. ``rel`` may hold several space-separated relation types (RFC 8288 §3.3).
    """
    for header in response.headers.get_list("link"):
        for match in _LINK_VALUE.finditer(header):
            for rel in _LINK_REL.finditer(match.group(2)):
                relations = (rel.group(1) or rel.group(2) or "").lower().split()
                if "next" in relations:
                    return match.group(1).strip()
    return None


@dataclass(frozen=True, slots=True)
class RateLimit:
    """The rate-limit headers of one response (None where absent).

    ``reset`` is in epoch seconds on the *server's* clock.
    """

    limit: int | None = None
    remaining: int | None = None
    reset: float | None = None


def _header_minimum(response: httpx2.Response, name: str) -> int | None:
    # A header may repeat (two lines, or one comma-joined value); the official SDK takes the
    # smallest value (okta-sdk-python okta/request_executor.py; idp-apis.md §1.8).
    values: list[int] = []
    for line in response.headers.get_list(name):
        for part in line.split(","):
            try:
                values.append(int(part.strip()))
            except ValueError:
                continue
    return min(values) if values else None


def rate_limit(response: httpx2.Response) -> RateLimit:
    """Read ``X-Rate-Limit-Limit``, ``-Remaining`` and ``-Reset``, the minimum of each."""
    reset = _header_minimum(response, "x-rate-limit-reset")
    return RateLimit(
        limit=_header_minimum(response, "x-rate-limit-limit"),
        remaining=_header_minimum(response, "x-rate-limit-remaining"),
        reset=float(reset) if reset is not None else None,
    )


def server_time(response: httpx2.Response) -> float | None:
    """The response's ``Date`` header as epoch seconds, or None when missing or unreadable."""
    value = response.headers.get("date")
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


def _retry_after(response: httpx2.Response, server_now: float | None) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    if server_now is None:
        return None
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - server_now)
    except (TypeError, ValueError, IndexError):
        return None


# --- the session ------------------------------------------------------------------------------


def _retryable_status(response: httpx2.Response) -> bool:
    return response.status_code == 429 or response.status_code >= 500


class HttpSession:
    """Sends a connector's requests: counted, retried, paced by the provider's rate limits.

    ``sleep``, ``clock`` and ``rng`` are injectable so tests neither wait nor depend on luck.
    ``clock`` is only used to carry the server's clock forward between responses: every wait
    for a rate-limit reset is computed against the server's ``Date``, because our clock may be
    off and the reset time is the server's.

    :param client: the ``httpx2.AsyncClient`` to send with (it owns the transport).
    :param provider: a name for messages, e.g. ``"Okta"``.
    :param max_retries: retries after the first attempt before giving up with SourceError.
    :param reserve: the share of a bucket left untouched for the org's other API clients;
        when ``Remaining`` falls to it, requests to that bucket wait for the reset.
    :param max_wait: the longest single wait, in seconds (a bogus ``Reset`` cannot stall us).
    :param retryable: whether a response should be retried (default: 429 and 5xx).
    """

    #: Added to every wait for a reset: ``Date`` has one-second resolution. The official Okta
    #: SDK adds the same second (okta-sdk-python okta/request_executor.py).
    margin = 1.0
    #: First exponential backoff step, in seconds (idp-apis.md §1.8: "back off exponentially
    #: from 1 s" when a 429 carries no usable reset).
    backoff_base = 1.0
    backoff_cap = 60.0

    def __init__(
        self,
        client: httpx2.AsyncClient,
        *,
        provider: str,
        max_retries: int = 5,
        reserve: float = 0.1,
        max_wait: float = 120.0,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
        retryable: Callable[[httpx2.Response], bool] = _retryable_status,
    ) -> None:
        self.client = client
        self.provider = provider
        self.max_retries = max_retries
        self.reserve = reserve
        self.max_wait = max_wait
        self.requests = 0
        self._sleep = sleep
        self._clock = clock
        self._rng = rng
        self._retryable = retryable
        self._buckets: dict[str, RateLimit] = {}
        self._server_offset = 0.0  # server clock minus ours, from the latest Date header
        self._in_flight: dict[str, int] = {}  # requests sent and not yet answered, per bucket

    def server_now(self) -> float:
        """Our best estimate of the server's clock now."""
        return self._clock() + self._server_offset

    def _jitter(self) -> float:
        return self._rng()

    def _backoff(self, attempt: int) -> float:
        step: float = self.backoff_base * 2.0**attempt
        return min(self.backoff_cap, step) + self._jitter()

    async def _wait(self, seconds: float, why: str, **fields: Any) -> None:
        seconds = min(max(seconds, 0.0), self.max_wait)
        log.info("http.wait", provider=self.provider, seconds=round(seconds, 3), why=why, **fields)
        await self._sleep(seconds)

    async def _pace(self, bucket: str) -> None:
        """Wait for the reset when the bucket is down to its reserve.

        Okta's buckets are shared by every API client of the org (elastic/beats #17734;
        idp-apis.md §1.8), so we stop short of zero and leave ``reserve`` to the others.
        """
        state = self._buckets.get(bucket)
        if state is None or state.limit is None or state.remaining is None or state.reset is None:
            return
        if state.limit <= 0:
            return  # a concurrency 429 carries no usable bucket (see _wait_for_retry)
        until_reset = state.reset - self.server_now()
        if until_reset < 0:
            del self._buckets[bucket]  # the window rolled over; the next response tells the new one
            return
        keep = max(1, math.ceil(state.limit * self.reserve))
        # The last Remaining we saw does not count requests still in flight (sent in parallel).
        if state.remaining - self._in_flight.get(bucket, 0) > keep:
            return
        await self._wait(
            until_reset + self.margin + self._jitter(),
            "rate limit nearly used up",
            bucket=bucket,
            remaining=state.remaining,
            limit=state.limit,
        )

    def _observe(self, bucket: str, response: httpx2.Response) -> RateLimit:
        server_now = server_time(response)
        if server_now is not None:
            self._server_offset = server_now - self._clock()
        limits = rate_limit(response)
        if limits.remaining is not None:
            self._buckets[bucket] = limits
        return limits

    def _wait_for_retry(self, response: httpx2.Response, limits: RateLimit, attempt: int) -> float:
        server_now = server_time(response)
        if response.status_code == 429:
            # Okta: wait until X-Rate-Limit-Reset by the server's Date, plus jitter. A 429 with
            # Limit and Remaining both 0 is the concurrency limit, whose Reset is only an
            # estimate: back off instead ("Concurrency limits"; idp-apis.md §1.8).
            if limits.reset is not None and server_now is not None and limits.limit:
                return limits.reset - server_now + self.margin + self._jitter()
            retry_after = _retry_after(response, server_now)
            if retry_after is not None:
                return retry_after + self._jitter()
        return self._backoff(attempt)

    async def request(
        self,
        method: str,
        url: str,
        *,
        bucket: str | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
    ) -> httpx2.Response:
        """Send one request, retrying 429, 5xx and network errors up to ``max_retries`` times.

        Returns the first response that is not retryable (the caller judges 4xx). Raises
        SourceError when the retries run out. ``bucket`` names the rate-limit bucket the
        request counts against (default: the URL path).
        """
        key = bucket or httpx2.URL(url).path
        attempt = 0
        while True:
            await self._pace(key)
            self.requests += 1
            self._in_flight[key] = self._in_flight.get(key, 0) + 1
            try:
                response = await self.client.request(method, url, params=params, headers=headers, data=data)
            except httpx2.TransportError as exc:
                if attempt >= self.max_retries:
                    raise SourceError(
                        f"cannot reach {self.provider} ({method} {httpx2.URL(url).path}): "
                        f"{type(exc).__name__}, still failing after {self.max_retries} retries"
                    ) from exc
                failure: httpx2.TransportError | None = exc
            else:
                failure = None
            finally:
                self._in_flight[key] -= 1
            if failure is not None:
                await self._wait(self._backoff(attempt), "network error", error=type(failure).__name__)
                attempt += 1
                continue
            limits = self._observe(key, response)
            if not self._retryable(response):
                return response
            await response.aclose()
            if attempt >= self.max_retries:
                raise SourceError(
                    f"{self.provider} kept answering HTTP {response.status_code} to {method} "
                    f"{response.request.url.path}; gave up after {self.max_retries} retries"
                )
            await self._wait(
                self._wait_for_retry(response, limits, attempt),
                f"HTTP {response.status_code}",
                path=response.request.url.path,
                attempt=attempt + 1,
            )
            # That wait acted on this response's rate-limit state; do not wait for it again in _pace.
            self._buckets.pop(key, None)
            attempt += 1


# --- concurrency ------------------------------------------------------------------------------
