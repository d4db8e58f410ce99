"""Schema migrations: finding the Alembic environment and running it without an ``alembic.ini``.

The environment lives in ``migrations/`` at the top of a checkout; the wheel ships the same
directory as ``syncd/_migrations``. :func:`alembic_config` builds the Alembic ``Config`` in
code and hands the open connection to ``env.py`` through ``config.attributes["connection"]``.
"""

from __future__ import annotations

import importlib.resources
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

from syncd.cache.database import SQLITE_BEGIN_OPTION, describe_error, mask_url
from syncd.errors import CacheError


if TYPE_CHECKING:
    from alembic.config import Config

# Alembic is imported where it is used, not here: every start checks the schema, and when it is
# already at HEAD (nearly always) that takes one SELECT, without the ~10 MB Alembic and Mako
# cost a process that stays up for months.


__all__ = [
    "alembic_config",
    "current_heads",
    "downgrade",
    "head_revisions",
    "migration_transaction",
    "migrations_path",
    "needs_upgrade",
    "upgrade",
]

HEAD = "0005"
"""The newest revision in ``migrations/versions`` (a test checks it against Alembic's own answer)."""

_PG_MIGRATION_LOCK = 0x73796E6364  # "syncd": serialises concurrent upgrades on PostgreSQL

_ALEMBIC_LOCK = threading.Lock()
"""Alembic commands run through module-global proxies (``alembic.context``, ``alembic.op``):
two threads migrating at once would run each other's operations. One at a time per process."""


def migrations_path() -> Path:
    """Return the directory of the Alembic environment.

    The installed package's ``syncd/_migrations`` wins; otherwise the ``migrations/`` directory
    of the checkout this module was imported from.

    Raises:
        CacheError: neither exists.
    """
    candidates: list[Path] = []
    try:
        packaged = importlib.resources.files("syncd") / "_migrations"
    except ModuleNotFoundError:  # pragma: no cover - syncd is importable, we are in it
        packaged = None
    if isinstance(packaged, Path):
        candidates.append(packaged)
    candidates.append(Path(__file__).resolve().parents[2] / "migrations")
    for candidate in candidates:
        if (candidate / "env.py").is_file():
            return candidate
    tried = ", ".join(str(c) for c in candidates)
    raise CacheError(f"the cache migrations are missing (looked in {tried}); reinstall syncd")


def alembic_config(connection: Connection | None = None, url: str | None = None) -> Config:
    """Build an Alembic ``Config`` for the cache's migrations, with no ini file.

    Args:
        connection: run against this connection (``env.py`` reads
            ``config.attributes["connection"]``); the caller owns its transaction.
        url: otherwise, the database URL ``env.py`` opens itself.
    """
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_path()))
    config.set_main_option("path_separator", "os")
    if url is not None:
        # ConfigParser interpolates "%"; a percent-encoded password must survive it.
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revisions() -> tuple[str, ...]:
    """The head revision(s) of the shipped migrations."""
    from alembic.script import ScriptDirectory

    return tuple(ScriptDirectory.from_config(alembic_config()).get_heads())


def current_heads(engine: Engine) -> tuple[str, ...]:
    """The revision(s) the database is at; empty when it was never migrated.

    Raises:
        CacheError: the database cannot be read.
    """
    from alembic.runtime.migration import MigrationContext

    try:
        with engine.connect() as connection:
            return tuple(MigrationContext.configure(connection).get_current_heads())
    except SQLAlchemyError as exc:
        reason = describe_error(exc, engine.url)
        raise CacheError(f"cannot read the schema revision of cache {mask_url(engine.url)}: {reason}") from exc


def _check_known(engine: Engine, heads: tuple[str, ...]) -> None:
    from alembic.script import ScriptDirectory
    from alembic.util.exc import CommandError

    script = ScriptDirectory.from_config(alembic_config())
    for revision in heads:
        try:
            known = script.get_revision(revision)
        except CommandError:
            known = None
        if known is None:
            raise CacheError(
                f"cache {mask_url(engine.url)} is at schema revision {revision!r}, which this "
                "version of syncd does not know; it was probably migrated by a newer syncd"
            )


def needs_upgrade(engine: Engine) -> bool:
    """True when :func:`upgrade` would change the schema.

    Raises:
        CacheError: the database is at a revision these migrations do not know.
    """
    heads = current_heads(engine)
    _check_known(engine, heads)
    return set(heads) != set(head_revisions())


def _at_head(engine: Engine) -> bool:
    """True when the database's one stored revision is :data:`HEAD`: read with one SELECT of
    Alembic's own table (its name and column are Alembic's defaults, which ``env.py`` keeps).
    Any doubt (no such table, an error, several heads) answers False and lets Alembic decide."""
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT version_num FROM alembic_version")).fetchall()
    except SQLAlchemyError:
        return False
    return [tuple(row) for row in rows] == [(HEAD,)]


@contextmanager
def migration_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection in the one transaction a migration runs in, with the database locked.

    * PostgreSQL: a transaction-scoped advisory lock, so concurrent upgrades run one after the
      other (the second then finds nothing to do).
    * SQLite: ``BEGIN IMMEDIATE`` (the write lock up front), and foreign keys off for the
      duration: a batch migration recreates a table by copy-and-drop, and dropping ``users``
      with foreign keys on would cascade-delete every membership. ``PRAGMA foreign_key_check``
      must come back clean before the commit.

    Alembic's module-global proxies make migrations one-per-process: a thread lock covers that.
    """
    with _ALEMBIC_LOCK, engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        raw: Any = connection.connection.driver_connection
        if sqlite:
            # Must be set outside a transaction (inside one it is silently ignored); the
            # sqlite3 connection is in autocommit mode, see syncd.cache.database.
            raw.execute("PRAGMA foreign_keys = OFF")
            connection.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})
        try:
            with connection.begin():
                if connection.dialect.name == "postgresql":
                    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
                yield connection
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise CacheError(
                            f"migration of cache {mask_url(engine.url)} left {len(broken)} rows "
                            f"breaking a foreign key (first: {tuple(broken[0])}); rolled back"
                        )
        finally:
            if sqlite:
                raw.execute("PRAGMA foreign_keys = ON")


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database to ``revision`` in one transaction; a no-op when already there.

    Concurrent callers are serialised (see :func:`migration_transaction`), so every process may
    call this at start.

    Raises:
        CacheError: the migration failed; the schema is left as it was.
    """
    if revision == "head" and _at_head(engine):
        return
    from alembic import command
    from alembic.util.exc import CommandError

    _check_known(engine, current_heads(engine))
    try:
        with migration_transaction(engine) as connection:
            command.upgrade(alembic_config(connection), revision)
    except (SQLAlchemyError, CommandError) as exc:
        raise CacheError(
            f"cannot migrate cache {mask_url(engine.url)} to {revision}: {describe_error(exc, engine.url)}"
        ) from exc


def downgrade(engine: Engine, revision: str) -> None:
    """Migrate the database down to ``revision`` (``"base"`` drops every table); for tests and repair.

    Raises:
        CacheError: the migration failed; the schema is left as it was.
    """
    from alembic import command
    from alembic.util.exc import CommandError

    try:
        with migration_transaction(engine) as connection:
            command.downgrade(alembic_config(connection), revision)
    except (SQLAlchemyError, CommandError) as exc:
        raise CacheError(
            f"cannot migrate cache {mask_url(engine.url)} to {revision}: {describe_error(exc, engine.url)}"
        ) from exc
