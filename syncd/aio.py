"""Asyncio helpers shared by the connectors and the engine."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar


__all__ = ["gather_bounded"]

T = TypeVar("T")


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    first = group.exceptions[0]
    while isinstance(first, BaseExceptionGroup):
        first = first.exceptions[0]
    return first


async def gather_bounded(jobs: Iterable[Callable[[], Awaitable[T]]], limit: int) -> list[T]:
    """Run ``jobs`` with at most ``limit`` in flight; results in the order of ``jobs``.

    A fixed pool of ``limit`` workers takes the jobs in turn, so 10k jobs cost 10k small
    callables, not 10k tasks. The first job to fail cancels the others and its exception is
    raised as is (not wrapped in an ExceptionGroup), so a failed listing fails the whole read.
    """
    pending = list(enumerate(jobs))
    results: dict[int, T] = {}
    pending.reverse()

    async def worker() -> None:
        while pending:
            index, job = pending.pop()
            results[index] = await job()

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(max(1, min(limit, len(pending)))):
                group.create_task(worker())
    except BaseExceptionGroup as failures:
        raise _first_error(failures) from None
    return [results[i] for i in range(len(results))]
