"""Fixtures for the cache tests: every test runs on SQLite and on PostgreSQL.

PostgreSQL: the server at ``SYNCD_TEST_POSTGRES_URL`` (default
``postgresql+psycopg://postgres@127.0.0.1:5432/test``, trust auth). One throwaway database
``syncd_test_<hex>`` is created per session and dropped at the end; each test starts from an
empty ``public`` schema. If the server cannot be reached the postgres tests *fail* (CI has
PostgreSQL); deselect them locally with ``-m "not postgres"``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from syncd.cache import Cache
from tests.pg import throwaway_database


BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL database for this session; dropped at the end."""
    with throwaway_database("syncd_test_", drop_abandoned=True) as url:
        yield url


@pytest.fixture(scope="session")
def postgres_resetter(postgres_url: str) -> Iterator[sa.Engine]:
    """An engine on the session database, used to empty it before each test."""
    engine = sa.create_engine(postgres_url, poolclass=sa.pool.NullPool)
    yield engine
    engine.dispose()


def _reset_postgres(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        # A leaked connection holding a lock fails the test instead of hanging the suite.
        connection.exec_driver_sql("SET LOCAL lock_timeout = '10s'")
        connection.exec_driver_sql("DROP SCHEMA public CASCADE")
        connection.exec_driver_sql("CREATE SCHEMA public")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The backend under test: "sqlite" or "postgres"."""
    return str(request.param)


@pytest.fixture
def db_url(backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The URL of an empty database on the backend under test."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('cache') / 'syncd.db'}"
    url = str(request.getfixturevalue("postgres_url"))
    _reset_postgres(request.getfixturevalue("postgres_resetter"))
    return url


@pytest.fixture
def blank_cache(db_url: str) -> Iterator[Cache]:
    """A cache opened on an empty database, never migrated."""
    with Cache.open(db_url) as cache:
        yield cache


@pytest.fixture
def cache(blank_cache: Cache) -> Cache:
    """A cache migrated to the newest schema, with nothing in it."""
    blank_cache.upgrade()
    return blank_cache


@pytest.fixture
def other_cache(cache: Cache, db_url: str) -> Iterator[Cache]:
    """A second cache on the same database, as another process would open it."""
    with Cache.open(db_url) as other:
        yield other


@pytest.fixture
def unreachable_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A URL on the backend under test that cannot be opened (the PostgreSQL one has a password)."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('missing') / 'no-such-dir' / 'syncd.db'}"
    return "postgresql://u:secret@127.0.0.1:1/x"
