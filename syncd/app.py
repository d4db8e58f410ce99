"""Wiring: build a ready engine from settings. The one place that knows every concrete part.

Tests and the demo pass transports here to swap fakes in at the seams.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx2

from connectors import base as connectors
from syncd.cache import Cache
from syncd.config import Settings
from syncd.engine import Engine
from syncd.target.scim import ScimTarget


def open_cache(settings: Settings) -> Cache:
    """Open the cache and bring its schema up to date (``sync`` upgrades on start)."""
    cache = Cache.open(settings.cache.url)
    cache.upgrade()
    return cache


@asynccontextmanager
async def build_engine(
    settings: Settings,
    cache: Cache,
    *,
    source_transport: httpx2.AsyncBaseTransport | None = None,
    target_transport: httpx2.AsyncBaseTransport | None = None,
) -> AsyncIterator[Engine]:
    """An Engine for ``settings``; closes its connections on exit."""
    source_type = connectors.get(settings.source.type)
    source = source_type.factory(settings.connector_settings(), source_transport)
    target = ScimTarget(
        settings.target.scim_url,
        settings.target.scim_token,
        requests_per_second=settings.target.requests_per_second,
        transport=target_transport,
    )
    assigner = None
    if settings.assignments:
        # boto3 and botocore are loaded only when there are assignments to manage.
        from syncd.assignments.manager import build_assigner

        assigner = build_assigner(settings, cache)
    try:
        yield Engine(
            source=source,
            source_type=settings.source.type,
            target=target,
            cache=cache,
            scope=settings.filters.scope(),
            limit=settings.safety.limit(),
            assigner=assigner,
        )
    finally:
        await target.aclose()
        await source.aclose()
