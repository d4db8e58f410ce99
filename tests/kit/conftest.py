"""Fixtures for the kit's own tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    """The kit runs on asyncio."""
    return "asyncio"
