"""The one retry policy: every retry in syncd (connectors, the SCIM target, sso-admin) runs here.

Built on stamina (``stamina.retry_context``), so attempts, the overall timeout, stamina's
instrumentation (its structlog events and Prometheus counter) and its test mode
(``stamina.set_testing``) apply everywhere alike. What each caller brings is only its judgement
of one failure, ``on(exc)``:

* ``False``: not retryable; the exception goes to the caller at once;
* ``True``: retry after the policy's exponential backoff (:class:`Backoff`);
* a number of seconds: retry after exactly that long: the server's own wait (``Retry-After``,
  a rate-limit reset), which stamina accepts from ``on`` since 25.2.

When the retries run out the last exception is raised as is; :func:`retries_made` says how many
retries were made before it, for the message.

Waits: by default stamina sleeps them (``asyncio.sleep``; nothing under ``stamina.set_testing``).
A caller that owns a clock (tests that move a fake server's time) passes ``sleep``: each wait is
then awaited through it and stamina itself does not wait.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import stamina


__all__ = ["Backoff", "Decision", "RetryPolicy", "Sleep", "retries_made"]

T = TypeVar("T")

Sleep = Callable[[float], Awaitable[None]]
"""An ``asyncio.sleep``-like coroutine function."""

Decision = bool | float
"""What ``on(exc)`` answers: False (give up), True (back off), or the seconds to wait."""

_RETRIES_MADE = "_syncd_retries_made"


def retries_made(exc: BaseException) -> int:
    """How many retries :meth:`RetryPolicy.run` made before ``exc`` ended it (0 if none)."""
    return int(getattr(exc, _RETRIES_MADE, 0))


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff: retry ``n`` (0-based) waits ``min(maximum, initial * factor**n)``, then jitter.

    ``jitter`` adds up to that many seconds (``jitter * rng()``); with ``full_jitter`` the wait is
    instead multiplied by ``rng()`` (AWS's "full jitter", for many clients hitting one quota).
    """

    initial: float = 1.0
    maximum: float = 60.0
    factor: float = 2.0
    jitter: float = 1.0
    full_jitter: bool = False

    def wait(self, retry: int, rng: float) -> float:
        """The wait before retry ``retry`` (0-based) given a random number in [0, 1)."""
        try:
            step = min(self.maximum, self.initial * self.factor**retry)
        except OverflowError:
            step = self.maximum
        return step * rng if self.full_jitter else step + self.jitter * rng


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to retry: ``attempts`` in all (the first one included).

    ``timeout`` (seconds) bounds the whole run of attempts, waits included; None for no bound.
    ``max_wait`` caps any single wait, the server's included (a bogus reset cannot stall us).
    """

    attempts: int = 6
    timeout: float | None = None
    backoff: Backoff = field(default_factory=Backoff)
    max_wait: float | None = None

    def wait(self, decision: Decision, retry: int, rng: Callable[[], float]) -> float:
        """The seconds to wait for a retryable ``decision`` before retry ``retry`` (0-based)."""
        seconds = self.backoff.wait(retry, rng()) if decision is True else float(decision)
        seconds = max(0.0, seconds)
        return min(seconds, self.max_wait) if self.max_wait is not None else seconds

    async def run(
        self,
        call: Callable[[], Awaitable[T]],
        *,
        on: Callable[[Exception], Decision],
        sleep: Sleep | None = None,
        rng: Callable[[], float] = random.random,
        before_retry: Callable[[float, Exception], None] | None = None,
    ) -> T:
        """``await call()`` until it returns, ``on`` says stop, or the attempts or timeout run out.

        ``before_retry(seconds, exc)`` is told of each retry just before its wait. With ``sleep``,
        the wait is awaited before the failed attempt hands back to stamina, so no other task
        runs in between (a fake clock has moved on when they do).
        """
        retry = 0  # retries made so far
        verdict: bool | float = False  # what the last failure was judged, for stamina

        def judge(exc: Exception) -> bool | float:
            return verdict

        try:
            async for attempt in stamina.retry_context(
                on=judge,
                attempts=max(1, self.attempts),
                timeout=self.timeout,
                wait_initial=0.0,
                wait_max=0.0,
                wait_jitter=0.0,
            ):
                with attempt:
                    retry = attempt.num - 1
                    try:
                        return await call()
                    except Exception as exc:
                        decision = on(exc)
                        if decision is False:
                            verdict = False
                            raise
                        if attempt.num >= self.attempts:
                            verdict = True  # stamina ends here: no wait to take
                            raise
                        seconds = self.wait(decision, retry, rng)
                        if before_retry is not None:
                            before_retry(seconds, exc)
                        if sleep is not None:
                            await sleep(seconds)
                            verdict = 0.0
                        else:
                            verdict = seconds
                        raise
        except Exception as exc:
            setattr(exc, _RETRIES_MADE, retry)
            raise
        raise AssertionError("unreachable: stamina either returns or raises")  # pragma: no cover
