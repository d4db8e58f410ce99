"""Bounded concurrency: the one worker pool behind every parallel read and write.

A fixed pool of ``limit`` workers takes items in turn, so 100k items cost 100k small entries in
a list, not 100k tasks. Two ways to end:

* :func:`bounded` (reads): results in the order of the items; the first failure cancels the
  other workers and is raised as is (not wrapped in an ExceptionGroup), so a failed listing
  fails the whole read at once.
* :func:`bounded_landing` (writes): no worker is cancelled, so a request in flight lands and
  is recorded. Once ``stop`` is set no new item starts; an item that fails does not stop the
  others (the worker decides what a failure means, e.g. by setting ``stop``); every worker is
  awaited, then the first failure is raised.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar


__all__ = ["bounded", "bounded_landing"]

T = TypeVar("T")
I = TypeVar("I")  # noqa: E741 - the item type


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    first = group.exceptions[0]
    while isinstance(first, BaseExceptionGroup):
        first = first.exceptions[0]
    return first


async def bounded(items: Iterable[I], worker: Callable[[I], Awaitable[T]], limit: int) -> list[T]:
    """``worker(item)`` for every item, at most ``limit`` at a time; the results in item order."""
    pending = list(enumerate(items))
    pending.reverse()
    results: dict[int, T] = {}

    async def work() -> None:
        while pending:
            index, item = pending.pop()
            results[index] = await worker(item)

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(max(1, min(limit, len(pending)))):
                group.create_task(work())
    except BaseExceptionGroup as failures:
        raise _first_error(failures) from None
    return [results[i] for i in range(len(results))]


async def bounded_landing(
    items: Iterable[I],
    worker: Callable[[I], Awaitable[None]],
    limit: int,
    *,
    stop: asyncio.Event | None = None,
) -> None:
    """``worker(item)`` for every item, at most ``limit`` at a time, letting writes in flight land.

    No new item starts once ``stop`` is set; the items left are not run. The first failure is
    raised after every worker has ended.
    """
    pending = iter(items)
    failures: list[BaseException] = []

    async def work() -> None:
        for item in pending:
            if stop is not None and stop.is_set():
                return
            try:
                await worker(item)
            except Exception as exc:
                failures.append(exc)

    await asyncio.gather(*(work() for _ in range(max(1, limit))))
    if failures:
        raise failures[0]
