"""Throwaway PostgreSQL databases for the tests that talk to the machine's server for real.

The server is ``SYNCD_TEST_POSTGRES_URL`` (default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``,
trust auth). When it cannot be reached the tests *fail* (CI has PostgreSQL); deselect them
locally with ``-m "not postgres"``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url


PG_ADMIN_URL = os.environ.get("SYNCD_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _drop_abandoned_databases(connection: sa.Connection) -> None:
    """Drop syncd_test_* databases a killed session left behind: idle and over an hour old."""
    try:
        names = connection.execute(
            sa.text(
                "SELECT datname FROM pg_database d WHERE datname LIKE 'syncd\\_test\\_%' "
                "AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datname = d.datname) "
                "AND (pg_stat_file('base/' || d.oid || '/PG_VERSION')).modification < now() - interval '1 hour'"
            )
        ).scalars()
        for stale in list(names):
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{stale}"')
    except sa.exc.DBAPIError:
        pass  # no right to read the data directory (not a superuser): leave them


@contextmanager
def throwaway_database(prefix: str, *, drop_abandoned: bool = False) -> Iterator[str]:
    """Create ``<prefix><hex>``, yield its URL, then end its connections and drop it."""
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})
    name = f"{prefix}{secrets.token_hex(6)}"
    try:
        with admin.connect() as connection:
            if drop_abandoned:
                _drop_abandoned_databases(connection)
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.SQLAlchemyError as exc:
        admin.dispose()
        shown = make_url(PG_ADMIN_URL).render_as_string(hide_password=True)
        pytest.fail(
            f"PostgreSQL is unreachable at {shown} ({exc.__class__.__name__}: {exc}). "
            'The tests marked "postgres" need it; set SYNCD_TEST_POSTGRES_URL or deselect them '
            'with -m "not postgres".',
            pytrace=False,
        )
    try:
        yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        admin.dispose()
