"""Rate limits: one :class:`Limits` policy per provider decides when to pace, retry and wait.

:class:`Limits` is the general policy every HTTP API gets by default:

* retry 429, every 5xx and network errors (``RetryPolicy`` caps how often);
* on 429, 503 and 504 honour ``Retry-After`` (seconds or an HTTP date, RFC 9110 §10.2.3), as
  Microsoft Graph asks ("Microsoft Graph throttling guidance",
  https://learn.microsoft.com/graph/throttling); otherwise back off exponentially;
* :meth:`Limits.retryable` is the hook for providers that signal throttling in a body, such as
  Google's 403 ``userRateLimitExceeded`` / ``rateLimitExceeded``
  (https://developers.google.com/workspace/admin/directory/v1/limits).

:class:`RateLimitHeaders` adds per-bucket pacing from ``X-Rate-Limit-Limit/-Remaining/-Reset``
headers, Okta's ("Rate limits overview", https://developer.okta.com/docs/reference/rl-global-mgmt/).

Every wait for a reset is computed against the *server's* clock (its ``Date`` header): our
clock may be off, and the reset time is the server's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import httpx2
import structlog

from syncd.retry import Decision


__all__ = ["Limits", "RateLimit", "RateLimitHeaders", "rate_limit", "retry_after", "server_time"]

log = structlog.get_logger(__name__)


def server_time(response: httpx2.Response) -> float | None:
    """The response's ``Date`` header as epoch seconds, or None when missing or unreadable."""
    value = response.headers.get("date")
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


def retry_after(response: httpx2.Response, server_now: float | None) -> float | None:
    """``Retry-After`` in seconds (delay-seconds, or an HTTP date by the server's clock), or None."""
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


class Limits:
    """The general rate-limit policy; subclass it for a provider's own headers and bodies.

    The HTTP layer calls :meth:`pace` before each request (the seconds to wait first),
    :meth:`observe` with each response, and :meth:`decide` when a response or a network error
    came back: False (final), True (back off), or the seconds to wait (the server's word;
    the HTTP layer adds jitter).
    """

    #: Statuses whose ``Retry-After`` is honoured (RFC 9110 §10.2.3; Graph sends it on all three).
    retry_after_statuses = frozenset({429, 503, 504})

    def retryable(self, response: httpx2.Response) -> bool:
        """Whether a response is worth retrying: 429 and 5xx (override for throttling bodies)."""
        return response.status_code == 429 or response.status_code >= 500

    def pace(self, bucket: str, server_now: float, in_flight: int) -> tuple[float, str, dict[str, int]]:
        """Seconds to wait before sending to ``bucket`` (0: go now), why, and log fields."""
        return 0.0, "", {}

    def observe(self, bucket: str, response: httpx2.Response) -> None:
        """Learn from a response's headers (nothing to learn by default)."""

    def forget(self, bucket: str) -> None:
        """A retry wait acted on ``bucket``'s last state: do not pace for it again."""

    def decide(self, response: httpx2.Response) -> Decision:
        """For a retryable response: the server's wait (``Retry-After``) or True to back off."""
        if response.status_code in self.retry_after_statuses:
            wait = retry_after(response, server_time(response))
            if wait is not None:
                return wait
        return True


@dataclass(frozen=True, slots=True)
class RateLimit:
    """The rate-limit headers of one response (None where absent); ``reset`` by the server's clock."""

    limit: int | None = None
    remaining: int | None = None
    reset: float | None = None


def _header_minimum(response: httpx2.Response, name: str) -> int | None:
    # A header may repeat (two lines, or one comma-joined value); Okta's own SDK takes the
    # smallest value (okta/okta-sdk-python okta/request_executor.py).
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


class RateLimitHeaders(Limits):
    """Buckets announced by ``X-Rate-Limit-*`` headers (Okta's), paced before they run dry.

    A bucket is shared by every API client of the org (elastic/beats#17734; "Rate limits
    overview", https://developer.okta.com/docs/reference/rl-global-mgmt/), so while another
    client is using it, requests stop short, at ``reserve`` of the limit, leaving that much to
    the others. The headers show whether one is ("Check your rate limits with Okta's rate limit
    headers", https://developer.okta.com/docs/reference/rl-best-practices/: Remaining is "the
    number of requests left for the current rate-limit window", Reset is when it resets):
    within one window (one ``X-Rate-Limit-Reset``), ``Limit - Remaining`` is what every client
    spent; when that is more than our requests the window could have counted, someone else
    spends from it, and the reserve is kept from then on (logged ``http.rate_limit_shared``)
    until a whole window passes with nobody else (``http.rate_limit_alone``). Alone, the whole
    bucket is ours: requests go on until Remaining (less those in flight) is down to one, then
    wait for the reset.

    A 429 waits until ``Reset`` by the server's ``Date``, plus :attr:`margin`; a 429 with Limit
    and Remaining both 0 is the concurrency limit, whose Reset is only an estimate, so it backs
    off instead ("Concurrency limits", https://developer.okta.com/docs/reference/rl-best-practices/).

    Which endpoints share one of Okta's buckets is not always documented (a group's members),
    so our requests are counted per window, ``(Limit, Reset)``, not per endpoint: a bucket
    shared by two of our endpoints is not taken for another client.
    """

    #: Added to every wait for a reset: ``Date`` has one-second resolution. Okta's SDK adds the
    #: same second (okta/okta-sdk-python okta/request_executor.py).
    margin = 1.0

    def __init__(self, reserve: float = 0.1, *, provider: str = "Okta") -> None:
        self.reserve = reserve
        self.provider = provider
        self._buckets: dict[str, RateLimit] = {}
        self._ours: dict[tuple[int, float], int] = {}  # our answered requests per window (Limit, Reset)
        self._sent = 0  # requests paced (each one then sent), and answered: the rest may be counted already
        self._answered = 0
        self._window: dict[str, tuple[int, float]] = {}  # bucket -> its current window (Limit, Reset)
        self._others_seen: dict[str, bool] = {}  # bucket -> another client spent in its current window
        self._sharing: set[str] = set()  # buckets whose reserve is kept

    def sharing(self, bucket: str) -> bool:
        """Whether the reserve of ``bucket`` is kept (another client was seen spending from it)."""
        return bucket in self._sharing

    def observe(self, bucket: str, response: httpx2.Response) -> None:
        """Keep the bucket's state from the response's headers, and see whether others spend it."""
        self._answered += 1
        limits = rate_limit(response)
        if limits.remaining is None:
            return
        if limits.limit is None or limits.reset is None or limits.limit <= 0:
            self._buckets[bucket] = limits  # a concurrency 429: no window to learn from
            return
        window = (limits.limit, limits.reset)
        self._ours[window] = self._ours.get(window, 0) + 1
        current = self._window.get(bucket)
        if current is not None and window[1] < current[1]:
            return  # a late answer from a window already past
        previous = self._buckets.get(bucket)
        # Answers may arrive out of order: the lowest Remaining of a window is the latest.
        if (
            previous is not None
            and (previous.limit, previous.reset) == window
            and previous.remaining is not None
            and previous.remaining < limits.remaining
        ):
            limits = previous
        self._buckets[bucket] = limits
        if current != window:
            self._new_window(bucket, window, server_time(response))
        unexplained = window[0] - (limits.remaining or 0) - self._ours[window] - (self._sent - self._answered)
        if unexplained <= 0 or self._others_seen.get(bucket):
            return
        self._others_seen[bucket] = True
        if bucket not in self._sharing:
            self._sharing.add(bucket)
            log.info(
                "http.rate_limit_shared",
                provider=self.provider,
                bucket=bucket,
                limit=window[0],
                remaining=limits.remaining,
                others=unexplained,
                reserve=self._keep(window[0], shared=True),
            )

    def _new_window(self, bucket: str, window: tuple[int, float], server_now: float | None) -> None:
        """``bucket`` moved to ``window``: the one before it shows whether the reserve is still needed."""
        if bucket in self._window and not self._others_seen.get(bucket) and bucket in self._sharing:
            self._sharing.discard(bucket)
            log.info("http.rate_limit_alone", provider=self.provider, bucket=bucket, limit=window[0])
        self._window[bucket] = window
        self._others_seen[bucket] = False
        if server_now is not None:  # windows long past count no more
            self._ours = {w: n for w, n in self._ours.items() if w[1] >= server_now - 60 or w == window}

    def forget(self, bucket: str) -> None:
        """Drop the bucket's state (a retry already waited for it)."""
        self._buckets.pop(bucket, None)

    def _keep(self, limit: int, *, shared: bool) -> int:
        return max(1, math.ceil(limit * self.reserve)) if shared else 1

    def pace(self, bucket: str, server_now: float, in_flight: int) -> tuple[float, str, dict[str, int]]:
        """Wait for the reset when the bucket, less requests in flight, is down to what is kept."""
        self._sent += 1  # the HTTP layer sends once this returns (after the wait, if any)
        state = self._buckets.get(bucket)
        if state is None or state.limit is None or state.remaining is None or state.reset is None:
            return 0.0, "", {}
        if state.limit <= 0:
            return 0.0, "", {}  # a concurrency 429 carries no usable bucket
        until_reset = state.reset - server_now
        if until_reset < 0:
            del self._buckets[bucket]  # the window rolled over; the next response tells the new one
            return 0.0, "", {}
        keep = self._keep(state.limit, shared=bucket in self._sharing)
        # The last Remaining we saw does not count requests still in flight (sent in parallel).
        if state.remaining - in_flight > keep:
            return 0.0, "", {}
        return (
            until_reset + self.margin,
            "rate limit nearly used up",
            {"remaining": state.remaining, "limit": state.limit, "kept": keep},
        )

    def decide(self, response: httpx2.Response) -> Decision:
        """A 429 waits for the bucket's reset by the server's clock; others as :class:`Limits`."""
        if response.status_code == 429:
            limits = rate_limit(response)
            server_now = server_time(response)
            if limits.reset is not None and server_now is not None and limits.limit:
                return limits.reset - server_now + self.margin
            wait = retry_after(response, server_now)
            return wait if wait is not None else True
        return super().decide(response)
