"""Wiring: build a ready engine from settings. The one place that knows every concrete part.

Tests and the demo pass transports (and, for the source, a ``Deps``) here to swap fakes in at the seams.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx2
from sqlalchemy.engine import make_url

from connectors import base as connectors
from connectors.base import Deps
from syncd.access import AccessRules
from syncd.cache import Cache
from syncd.config import CacheOnly, Settings
from syncd.engine import Engine
from syncd.errors import CacheError
from syncd.target.scim import ScimTarget


def open_cache(settings: Settings | CacheOnly, *, read_only: bool = False) -> Cache:
    """Open the cache and bring its schema up to date (``sync`` upgrades on start).

    ``read_only`` (plans, dry runs) never creates the cache nor migrates it: a cache that does
    not exist yet reads as an empty one (an in-memory stand-in), and one whose schema is behind
    is an error that says to run ``syncd db upgrade``.
    """
    if read_only:
        return _open_for_reading(settings.cache.url)
    cache = Cache.open(settings.cache.url)
    cache.upgrade()
    return cache


def _open_for_reading(url: str) -> Cache:
    parsed = make_url(url) if "://" in url else None
    if parsed is not None and parsed.get_backend_name() == "sqlite":
        database = parsed.database or ":memory:"
        if database != ":memory:" and not Path(database).exists():
            return _empty_cache()
    cache = Cache.open(url)
    if cache.current_revision() is None:
        cache.close()
        return _empty_cache()
    if cache.needs_upgrade():
        cache.close()
        raise CacheError(
            f"the cache {cache.url} has an older schema than this syncd; run `syncd db upgrade` first "
            "(`syncd sync` does it too), then plan again"
        )
    return cache


def _empty_cache() -> Cache:
    cache = Cache.open("sqlite://")
    cache.upgrade()
    return cache


@asynccontextmanager
async def build_engine(
    settings: Settings,
    cache: Cache,
    *,
    source_deps: Deps | None = None,
    target_transport: httpx2.AsyncBaseTransport | None = None,
) -> AsyncIterator[Engine]:
    """An Engine for ``settings``; closes its connections on exit."""
    source_type = connectors.get(settings.source.type)
    source = source_type.factory(settings.connector_settings(), source_deps or Deps())
    target = ScimTarget(
        settings.target.scim_url,
        settings.target.scim_token,
        requests_per_second=settings.target.requests_per_second,
        transport=target_transport,
    )
    assigner = None
    if settings.assignments or settings.permission_sets or settings.applications or cache.owns_access():
        # boto3 and botocore are loaded only when there is AWS access to manage.
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
            member_limit=settings.safety.member_limit(),
            delete_after=settings.safety.delete_after,
            assigner=assigner,
            access_rules=AccessRules(
                settings.assignments, settings.applications, settings.access.admin_permission_sets
            ),
            check_every=settings.target.check_every,
            write_during_read=settings.safety.write_during_read,
        )
    finally:
        await target.aclose()
        await source.aclose()
