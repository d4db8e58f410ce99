"""Every HTTP request of a connector: counted by status, paced and retried by its :class:`Limits`.

:class:`Http` owns the connector's ``httpx2.AsyncClient`` (on ``deps.transport``). Each request
takes these steps: wait if the provider's :class:`~connectors.kit.limits.Limits` says a bucket
is nearly dry; send (with the connector's ``httpx2.Auth`` flow); count the request by the status
it got (0 when no answer came) in :attr:`Http.stats`, which survives a failed read; and when the
answer is retryable (429, 5xx, a throttling body, a network error), wait as the provider said
or back off, under the one retry policy (:mod:`syncd.retry`, on stamina).

Nothing here knows a provider's URLs or error bodies: the final response goes back to the
connector, or :meth:`Http.get` turns it into the connector's own error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

import httpx2
import structlog

from connectors.base import Deps
from connectors.kit.limits import Limits, server_time
from syncd.errors import SourceError
from syncd.model import RequestStats
from syncd.retry import Backoff, Decision, RetryPolicy, retries_made


__all__ = ["Http", "RetryableResponse", "json_or_empty"]

log = structlog.get_logger(__name__)

_DEFAULT = object()
_TIMEOUT = httpx2.Timeout(60.0, connect=10.0)


def json_or_empty(response: httpx2.Response) -> Any:
    """The response's JSON body, or None when it is empty or not JSON (error bodies vary)."""
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None


class RetryableResponse(Exception):
    """A response the provider's limits call retryable (raised inside an attempt, never outside)."""

    def __init__(self, response: httpx2.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


class _CountingTransport(httpx2.AsyncBaseTransport):
    """Counts every request that goes out, token requests and auth retries included."""

    def __init__(self, inner: httpx2.AsyncBaseTransport, stats: RequestStats) -> None:
        self._inner = inner
        self._stats = stats

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        try:
            response = await self._inner.handle_async_request(request)
        except BaseException:
            self._stats.count(request.method, 0)  # sent, and no answer came
            raise
        self._stats.count(request.method, response.status_code)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


class Http:
    """A connector's HTTP client: see the module docstring.

    :param deps: transport, clock, sleep and randomness (tests pass fakes).
    :param provider: a name for messages, e.g. ``"Okta"``.
    :param limits: the provider's rate-limit policy (default: :class:`Limits`).
    :param max_retries: retries after the first attempt before giving up with SourceError.
    :param max_wait: the longest single wait, in seconds.
    :param auth: the ``httpx2.Auth`` flow sent with every request (see :mod:`connectors.kit.auth`).
    :param error: turns a final non-2xx response into the connector's SourceError
        (``error(response, bucket)``); the default names the status and the path.
    """

    #: First exponential backoff step, in seconds, and its cap.
    backoff = Backoff(initial=1.0, maximum=60.0, jitter=1.0)

    def __init__(
        self,
        deps: Deps,
        *,
        provider: str,
        limits: Limits | None = None,
        max_retries: int = 5,
        max_wait: float = 120.0,
        auth: httpx2.Auth | None = None,
        error: Callable[[httpx2.Response, str], SourceError] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: httpx2.Timeout = _TIMEOUT,
    ) -> None:
        self.provider = provider
        self.limits = limits or Limits()
        self.max_retries = max_retries
        self.auth = auth
        self.stats = RequestStats()
        self._deps = deps
        self._error = error
        self._policy = RetryPolicy(attempts=max_retries + 1, backoff=self.backoff, max_wait=max_wait)
        self._server_offset = 0.0  # the server's clock minus ours, from the latest Date header
        self._in_flight: dict[str, int] = {}
        self.began: float | None = None  # the server's clock at the first answer since mark()
        transport = deps.transport or httpx2.AsyncHTTPTransport()
        self.client = httpx2.AsyncClient(
            transport=_CountingTransport(transport, self.stats),
            timeout=timeout,
            headers={"Accept": "application/json", **(headers or {})},
        )

    @property
    def requests(self) -> int:
        """Requests sent since this client was built (token requests and retries included)."""
        return self.stats.total

    def now(self) -> float:
        """Our clock now (``deps.clock``)."""
        return self._deps.clock()

    def server_now(self) -> float:
        """Our best estimate of the server's clock now."""
        return self._deps.clock() + self._server_offset

    def mark(self) -> None:
        """Start a read: :attr:`began` is set again by the next answer that has a ``Date``."""
        self.began = None

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self.client.aclose()

    async def _wait(self, seconds: float, why: str, **fields: Any) -> None:
        log.info("http.wait", provider=self.provider, seconds=round(seconds, 3), why=why, **fields)
        await (self._deps.sleep or asyncio.sleep)(seconds)

    async def request(
        self,
        method: str,
        url: str,
        *,
        bucket: str | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
        json: Any = None,
        content: bytes | None = None,
        auth: Any = _DEFAULT,
    ) -> httpx2.Response:
        """Send one request, retrying what the limits call retryable up to ``max_retries`` times.

        Returns the first response that is not retryable (the caller judges 4xx). Raises
        SourceError when the retries run out. ``bucket`` names the rate-limit bucket the request
        counts against (default: the URL path). The body is ``data`` (a form), ``json`` or raw
        ``content``. ``auth`` overrides the client's auth flow (None: no auth, as for a token endpoint).
        """
        key = bucket or httpx2.URL(url).path
        flow = self.auth if auth is _DEFAULT else auth

        async def attempt() -> httpx2.Response:
            seconds, why, fields = self.limits.pace(key, self.server_now(), self._in_flight.get(key, 0))
            if seconds > 0:
                await self._wait(
                    min(seconds + self._deps.random(), self._policy.max_wait or seconds), why, bucket=key, **fields
                )
            self._in_flight[key] = self._in_flight.get(key, 0) + 1
            try:
                response = await self.client.request(
                    method, url, params=params, headers=headers, data=data, json=json, content=content, auth=flow
                )
            finally:
                self._in_flight[key] -= 1
            now = server_time(response)
            if now is not None:
                self._server_offset = now - self._deps.clock()
            self.limits.observe(key, response)
            if self.limits.retryable(response):
                await response.aclose()
                raise RetryableResponse(response)
            return response

        def judge(exc: Exception) -> Decision:
            if isinstance(exc, RetryableResponse):
                decision = self.limits.decide(exc.response)
                # The server's wait gets jitter too, so parallel listings do not all return at once.
                return decision if isinstance(decision, bool) else decision + self._deps.random()
            return isinstance(exc, httpx2.TransportError)

        def before_retry(seconds: float, exc: Exception) -> None:
            self.limits.forget(key)  # that wait acted on the bucket's state: do not pace for it again
            if isinstance(exc, RetryableResponse):
                why = f"HTTP {exc.response.status_code}"
                fields: dict[str, Any] = {"why": why, "path": exc.response.request.url.path}
            else:
                fields = {"why": "network error", "error": type(exc).__name__}
            log.info("http.wait", provider=self.provider, seconds=round(seconds, 3), **fields)

        try:
            return await self._policy.run(
                attempt, on=judge, sleep=self._deps.sleep, rng=self._deps.random, before_retry=before_retry
            )
        except RetryableResponse as exc:
            raise SourceError(
                f"{self.provider} kept answering HTTP {exc.response.status_code} to {method} "
                f"{exc.response.request.url.path}; gave up after {retries_made(exc)} retries"
            ) from None
        except httpx2.TransportError as exc:
            raise SourceError(
                f"cannot reach {self.provider} ({method} {httpx2.URL(url).path}): "
                f"{type(exc).__name__}, still failing after {retries_made(exc)} retries"
            ) from exc

    async def get(
        self,
        url: str,
        params: Mapping[str, str] | None = None,
        *,
        bucket: str | None = None,
        missing_ok: bool = False,
        headers: Mapping[str, str] | None = None,
    ) -> httpx2.Response | None:
        """GET that must succeed: the response, None for a 404 when ``missing_ok``, else the error.

        ``headers`` are sent with this request only. The first answer since :meth:`mark` sets
        :attr:`began` (a watermark for incremental reads).
        """
        response = await self.request("GET", url, params=params, bucket=bucket, headers=headers)
        if self.began is None:
            self.began = server_time(response)
        if response.is_success:
            return response
        if missing_ok and response.status_code == 404:
            return None
        raise self.error(response, bucket or response.request.url.path)

    def error(self, response: httpx2.Response, bucket: str) -> SourceError:
        """The connector's error for a final non-2xx response."""
        if self._error is not None:
            return self._error(response, bucket)
        where = f"{response.request.method} {response.request.url.path}"
        return SourceError(f"{self.provider} answered {where} with HTTP {response.status_code}")
