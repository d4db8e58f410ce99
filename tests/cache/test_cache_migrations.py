"""Schema migrations: upgrade, idempotence, and migrations that match the tables."""

from __future__ import annotations

import importlib.resources
import multiprocessing
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext

from syncd.cache import Cache, migrations_path
from syncd.cache.migrate import HEAD, downgrade, head_revisions, migration_transaction
from syncd.cache.tables import metadata
from syncd.errors import CacheError
from syncd.state import CachedGroup, CachedUser


TABLES = {"users", "groups", "memberships", "runs", "audit", "kv"}


def _tables(cache: Cache) -> set[str]:
    return set(sa.inspect(cache.engine).get_table_names())


def _drift(cache: Cache, target: sa.MetaData) -> list[object]:
    with cache.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, target))


def test_migrations_path_finds_the_environment() -> None:
    """In a checkout the Alembic environment is found at <repo>/migrations."""
    path = migrations_path()

    assert Path(__file__).resolve().parents[2] / "migrations" == path
    assert (path / "env.py").is_file()
    assert (path / "versions" / "0001_initial.py").is_file()


def test_an_installed_package_uses_its_own_migrations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When syncd/_migrations exists (the wheel), it is used instead of the checkout's migrations/."""
    packaged = tmp_path / "syncd" / "_migrations"
    packaged.mkdir(parents=True)
    (packaged / "env.py").write_text("")
    monkeypatch.setattr(importlib.resources, "files", lambda package: tmp_path / package)

    assert packaged == migrations_path()


def test_a_fresh_database_needs_an_upgrade(blank_cache: Cache) -> None:
    """A database never migrated has no revision and needs an upgrade."""
    assert blank_cache.current_revision() is None
    assert blank_cache.needs_upgrade()


def test_upgrade_creates_the_schema(blank_cache: Cache) -> None:
    """upgrade() creates every table and records the head revision."""
    blank_cache.upgrade()

    assert TABLES <= _tables(blank_cache)
    assert head_revisions() == (blank_cache.current_revision(),)
    assert not blank_cache.needs_upgrade()


def test_upgrade_is_idempotent(cache: Cache) -> None:
    """A second upgrade() changes nothing and keeps the data."""
    cache.put_user(CachedUser("u1", "t1", "alice@example.com", "d1"))
    revision = cache.current_revision()

    cache.upgrade()

    assert revision == cache.current_revision()
    assert ["u1"] == list(cache.load().users)


def test_migrations_match_the_tables(cache: Cache) -> None:
    """The migrations produce exactly the ORM metadata: autogenerate finds no difference."""
    assert [] == _drift(cache, metadata)


def test_the_drift_check_sees_a_difference(cache: Cache) -> None:
    """Comparing against tables with one more column reports it (the check above can fail)."""
    changed = sa.MetaData(naming_convention=metadata.naming_convention)
    for table in metadata.tables.values():
        table.to_metadata(changed)
    changed.tables["users"].append_column(sa.Column("extra", sa.String, nullable=True))

    diff = _drift(cache, changed)

    assert [("add_column", None, "users", "extra")] == [(d[0], d[1], d[2], d[3].name) for d in diff]  # type: ignore[index]


def test_downgrade_to_base_and_back(cache: Cache) -> None:
    """Downgrading to base drops every table; upgrading again rebuilds them."""
    downgrade(cache.engine, "base")

    assert not (TABLES & _tables(cache))
    assert cache.current_revision() is None

    cache.upgrade()

    assert TABLES <= _tables(cache)


def test_an_unknown_revision_is_refused(cache: Cache) -> None:
    """A database migrated by a newer syncd raises CacheError instead of being touched."""
    with cache.engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))

    with pytest.raises(CacheError, match="newer syncd"):
        cache.needs_upgrade()
    with pytest.raises(CacheError, match="newer syncd"):
        cache.upgrade()


def test_head_is_the_newest_migration() -> None:
    """The HEAD constant the start-up check compares with is Alembic's own head."""
    assert (HEAD,) == head_revisions()


def test_a_current_schema_is_checked_without_loading_alembic(tmp_path: Path) -> None:
    """Starting on an up-to-date cache costs one SELECT: Alembic is not even imported."""
    url = f"sqlite:///{tmp_path / 'syncd.db'}"
    with Cache.open(url) as cache:
        cache.upgrade()
    script = (
        "import sys; from syncd.cache import Cache\n"
        f"with Cache.open({url!r}) as cache: cache.upgrade()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('alembic', 'mako')))"
    )

    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout

    assert "[]" == out.strip()


def _upgrade_in_another_process(url: str, barrier: Any, results: Any) -> None:
    """Child process: wait for the other one, then upgrade; report "ok" or the error."""
    try:
        with Cache.open(url) as cache:
            barrier.wait(timeout=60)
            cache.upgrade()
        results.put("ok")
    except BaseException as exc:
        results.put(f"{type(exc).__name__}: {exc}")


def test_concurrent_upgrades_both_succeed(blank_cache: Cache, db_url: str) -> None:
    """Two processes upgrading the same empty database at the same moment both succeed."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    results = context.Queue()
    processes = [context.Process(target=_upgrade_in_another_process, args=(db_url, barrier, results)) for _ in range(2)]
    for process in processes:
        process.start()
    try:
        outcomes = sorted(results.get(timeout=90) for _ in processes)
    finally:
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join()
        results.close()
        results.join_thread()

    assert ["ok", "ok"] == outcomes
    assert not blank_cache.needs_upgrade()


def test_a_table_copying_migration_keeps_memberships_on_sqlite(tmp_path: Path) -> None:
    """A batch migration that recreates users (copy and drop) does not cascade-delete memberships.

    SQLite only: it is the backend where batch mode copies tables and where dropping the old
    table would fire ON DELETE CASCADE if foreign keys stayed on.
    """
    with Cache.open(f"sqlite:///{tmp_path / 'syncd.db'}") as cache:
        cache.upgrade()
        cache.put_user(CachedUser("u1", "t1", "alice@example.com", "d"))
        cache.put_group(CachedGroup("g1", "tg1", "eng", "d"))
        cache.add_memberships("g1", ["u1"])

        with migration_transaction(cache.engine) as connection:
            operations = Operations(MigrationContext.configure(connection))
            with operations.batch_alter_table("users", recreate="always") as batch:
                batch.alter_column("user_name", existing_type=sa.String(), nullable=False)

        assert {("g1", "u1")} == cache.load().memberships
        with cache.engine.connect() as connection:
            assert 1 == connection.exec_driver_sql("PRAGMA foreign_keys").scalar()
