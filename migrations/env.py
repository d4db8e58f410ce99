"""Alembic environment for syncd's cache.

Run in code by :func:`syncd.cache.migrate.upgrade`, which passes an open connection in
``config.attributes["connection"]`` and owns its transaction. Run from the ``alembic`` command
line (``alembic -c alembic.ini ...`` at the top of a checkout) it opens ``sqlalchemy.url``, or
the URL given as ``-x url=...``, with the same engine settings syncd uses.

Migrations are rendered in batch mode so that one script runs on both SQLite (which cannot
ALTER most things and needs a table copy) and PostgreSQL (where batch mode emits plain ALTERs).
"""

from __future__ import annotations

from logging.config import fileConfig
from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import Connection

from syncd.cache.database import create_cache_engine
from syncd.cache.migrate import migration_transaction
from syncd.cache.tables import UTCDateTime, metadata


config = context.config
if config.config_file_name is not None and config.file_config.has_section("loggers"):
    # Only from the alembic command line: in syncd, logging is syncd's business.
    fileConfig(config.config_file_name, disable_existing_loggers=False)

IGNORED_TABLES = frozenset({"apscheduler_jobs"})
"""Tables other code may keep in the same database; autogenerate must not propose dropping them."""


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """Leave tables that are not the cache's alone."""
    return not (type_ == "table" and name in IGNORED_TABLES)


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Render UTCDateTime as a plain ``sa.DateTime(timezone=True)``: migrations never import syncd."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _configure(**kwargs: Any) -> None:
    context.configure(
        target_metadata=metadata,
        # syncd's SQLite connections emit BEGIN themselves, so DDL is transactional there too.
        transactional_ddl=True,
        render_as_batch=True,
        compare_type=True,
        include_name=include_name,
        render_item=render_item,
        **kwargs,
    )


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database: set sqlalchemy.url in alembic.ini or pass -x url=...")
    return url


def run_migrations_offline() -> None:
    """Write the SQL to stdout instead of running it (``alembic upgrade --sql``)."""
    _configure(url=_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations on the given connection, or on a connection to the configured URL."""
    connection: Connection | None = config.attributes.get("connection")
    if connection is not None:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_cache_engine(_url())
    try:
        with migration_transaction(engine) as own:
            _configure(connection=own)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
