"""Fixtures for the kit's own tests: waits are recorded, never slept."""

from __future__ import annotations

import pytest
import stamina


@pytest.fixture
def anyio_backend() -> str:
    """The kit runs on asyncio."""
    return "asyncio"


@pytest.fixture(autouse=True)
def _no_retry_waits() -> None:
    """Waits go through a recorded sleep here: stamina's test mode (fixed retry counts) stays off."""
    stamina.set_testing(False)


class Sleeps(list[float]):
    """An ``asyncio.sleep`` stand-in that records each wait instead of waiting."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)
