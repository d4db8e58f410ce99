"""The pacer is a token bucket: steady at the rate, catching up after a stall up to the bucket, slower after 429s.

Every test runs on a fake clock that only the fake sleep moves (or the test, for a stall): no
real waiting, and nothing depends on how fast the machine is.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence

import pytest

from syncd.ratelimit import Pacer


class FakeTime:
    """A clock and an ``asyncio.sleep`` stand-in that moves it; every sleep yields to the loop."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def _pacer(time: FakeTime, rate: float = 20.0, **kwargs: float) -> Pacer:
    return Pacer(rate, clock=time.clock, sleep=time.sleep, **kwargs)


def _sends(pacer: Pacer, time: FakeTime, count: int) -> list[float]:
    """The times at which ``count`` requests, one after the other, are let through."""

    async def run() -> list[float]:
        times = []
        for _ in range(count):
            await pacer.acquire()
            times.append(time.now)
        return times

    return asyncio.run(run())


def _most_in_any_window(times: Sequence[float], window: float) -> int:
    """The most sends inside any closed interval of ``window`` seconds."""
    ordered = sorted(times)
    most, start = 0, 0
    for end, t in enumerate(ordered):
        while t - ordered[start] > window + 1e-9:
            start += 1
        most = max(most, end - start + 1)
    return most


def test_steady_rate_from_the_start() -> None:
    """A run starts at the pace, one request every 1/rate seconds, not with a burst."""
    time = FakeTime()
    pacer = _pacer(time)
    times = _sends(pacer, time, 41)
    assert times == pytest.approx([0.05 * k for k in range(41)])


def test_an_idle_second_fills_the_bucket_and_no_more() -> None:
    """After a second or more with nothing to send, a bucket's worth (20) goes at once, then the pace resumes."""
    time = FakeTime()
    pacer = _pacer(time)
    time.now = 10.0
    times = _sends(pacer, time, 23)
    assert times[:20] == [10.0] * 20
    assert times[20:] == pytest.approx([10.05, 10.10, 10.15])


def test_a_stall_is_caught_up_with_what_it_missed() -> None:
    """After a half-second stall at full pace, the ten slots it missed go at once, then the pace resumes."""
    time = FakeTime()
    pacer = _pacer(time)
    _sends(pacer, time, 40)  # the pacer is at full speed: the bucket is empty
    time.now += 0.5  # the host was busy: no request asked for a token for half a second
    stalled_at = time.now
    times = _sends(pacer, time, 12)
    assert times[:10] == [stalled_at] * 10
    assert times[10:] == pytest.approx([stalled_at + 0.05, stalled_at + 0.10])


def test_catch_up_after_a_long_stall_is_capped_at_the_burst() -> None:
    """A five-second stall earns one bucket (20 requests), not the hundred slots it missed."""
    time = FakeTime()
    pacer = _pacer(time)
    _sends(pacer, time, 40)
    time.now += 5.0
    stalled_at = time.now
    times = _sends(pacer, time, 25)
    assert times.count(stalled_at) == 20
    assert times[20:] == pytest.approx([stalled_at + 0.05 * k for k in range(1, 6)])


def test_never_more_than_rate_plus_burst_over_any_interval() -> None:
    """Under random stalls and bursts of demand, no interval of t seconds holds more than burst + rate × t sends."""
    rng = random.Random(18)
    time = FakeTime()
    pacer = _pacer(time, rate=20.0)
    times: list[float] = []

    async def run() -> None:
        for _ in range(400):
            if rng.random() < 0.1:
                time.now += rng.choice((0.01, 0.2, 0.7, 3.0))  # a stall, or a pause in demand
            await pacer.acquire()
            times.append(time.now)

    asyncio.run(run())
    for window in (0.0, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0):
        assert _most_in_any_window(times, window) <= 20 + 20 * window + 1e-6, window
    assert _most_in_any_window(times, 0.0) == 20  # the bucket was spent whole, at least once


def test_concurrent_waiters_go_in_order_at_the_rate() -> None:
    """Sixteen coroutines sharing the pacer get their tokens in the order they asked, at the rate."""
    time = FakeTime()
    pacer = _pacer(time, rate=10.0)
    order: list[tuple[int, float]] = []

    async def worker(n: int) -> None:
        await pacer.acquire()
        order.append((n, time.now))

    async def run() -> None:
        await asyncio.gather(*(worker(n) for n in range(16)))

    asyncio.run(run())
    assert [n for n, _ in order] == list(range(16))
    assert [t for _, t in order] == pytest.approx([0.1 * k for k in range(16)])


def test_a_429_empties_the_bucket_and_slows_down_then_recovers_slowly() -> None:
    """A 429 makes the next request wait at three quarters of the rate, with a smaller bucket; successes creep back."""
    time = FakeTime()
    pacer = _pacer(time)
    time.now += 5.0
    assert 0.0 == pacer.wait_time()  # a full bucket
    pacer.on_throttled()
    assert (pacer.rate, pacer.burst, pacer.throttled) == (15.0, 15.0, 1)
    assert pacer.wait_time() == pytest.approx(1 / 15)
    time.now += 100.0  # idle: the bucket refills, to its smaller size
    assert sum(pacer.try_take() for _ in range(30)) == 15
    for _ in range(10):
        pacer.on_success()
    assert 15.0 < pacer.rate < 17.0  # about 1% a success, not back at once
    for _ in range(100):
        pacer.on_success()
    assert (pacer.rate, pacer.burst) == (20.0, 20.0)


def test_repeated_429s_stop_at_the_floor() -> None:
    """However many 429s come, the pacer keeps sending at its floor (1 request/s by default)."""
    time = FakeTime()
    pacer = _pacer(time)
    for _ in range(50):
        pacer.on_throttled()
    assert (pacer.rate, pacer.burst) == (1.0, 1.0)
    times = _sends(pacer, time, 3)
    assert times == pytest.approx([1.0, 2.0, 3.0])  # the 429 emptied the bucket: the first waits too


def test_bad_settings_are_refused() -> None:
    """A rate of zero or a bucket smaller than one request is a programming error, said so."""
    with pytest.raises(ValueError, match="rate"):
        Pacer(0)
    with pytest.raises(ValueError, match="burst"):
        Pacer(20, burst=0.5)
