"""Opening the cache database: which URLs are accepted, connection settings, and safe messages.

Two backends are supported:

* SQLite (``sqlite:///path``, the default ``sqlite:///syncd.db``; ``sqlite:///:memory:`` for
  tests). Every connection gets ``journal_mode=WAL``, ``synchronous=NORMAL``, a 30 s
  ``busy_timeout`` and ``foreign_keys=ON``, and SQLAlchemy, not the ``sqlite3`` module, emits
  ``BEGIN``: reads see one snapshot and writes take the write lock up front
  (``BEGIN IMMEDIATE``), so a write waits for another writer instead of failing with
  ``SQLITE_BUSY`` half-way through.
* PostgreSQL through psycopg 3 (``postgresql+psycopg://``; ``postgresql://`` and
  ``postgres://`` are rewritten to it).

No message built here ever shows a password: URLs are rendered with
``URL.render_as_string(hide_password=True)``.
"""

from __future__ import annotations

import json
import re
import sqlite3
import zlib
from collections.abc import Iterator, Mapping
from datetime import date, datetime
from enum import Enum
from typing import Any
from uuid import UUID

import stamina
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool

from syncd.errors import CacheError


__all__ = [
    "DEFAULT_URL",
    "SQLITE_BEGIN_OPTION",
    "create_cache_engine",
    "describe_error",
    "json_dumps",
    "mask_url",
    "normalise_url",
]

DEFAULT_URL = "sqlite:///syncd.db"
"""The cache a fresh install uses: ``syncd.db`` in the working directory."""

SQLITE_BEGIN_OPTION = "syncd_sqlite_begin"
"""Execution option naming the ``BEGIN`` flavour on SQLite: ``"DEFERRED"`` (default) or ``"IMMEDIATE"``."""

SQLITE_BUSY_TIMEOUT_MS = 30_000
PG_CONNECT_TIMEOUT_S = 10

_USERINFO = re.compile(r"(?P<head>://[^/@:]*:)[^/@]*@")
_ANY_USERINFO = re.compile(r"(?P<head>:)[^@]*@")


def mask_url(url: str | URL) -> str:
    """Return ``url`` as text with its password, if any, replaced by ``***``.

    Works on strings SQLAlchemy cannot parse too, so an error about a malformed URL is safe to
    print.
    """
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        # Not a URL SQLAlchemy understands: hide whatever sits between a ":" and an "@".
        return _ANY_USERINFO.sub(r"\g<head>***@", _USERINFO.sub(r"\g<head>***@", url))


def normalise_url(url: str | URL) -> URL:
    """Parse ``url`` and pin the driver: pysqlite for SQLite, psycopg 3 for PostgreSQL.

    Raises:
        CacheError: the URL does not parse or names a backend or driver syncd does not support.
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        # ``from None``: SQLAlchemy's message may quote the URL, password included.
        raise CacheError(f"cache URL {mask_url(str(url))!r} is not a database URL") from None
    backend, _, driver = parsed.drivername.partition("+")
    if backend in ("postgresql", "postgres"):
        if driver not in ("", "psycopg"):
            raise CacheError(
                f"cache URL {mask_url(parsed)!r}: the PostgreSQL driver must be psycopg "
                "(write postgresql+psycopg:// or postgresql://)"
            )
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        if driver not in ("", "pysqlite"):
            raise CacheError(f"cache URL {mask_url(parsed)!r}: the SQLite driver must be the standard sqlite3 module")
        return parsed.set(drivername="sqlite+pysqlite")
    raise CacheError(
        f"cache URL {mask_url(parsed)!r}: unsupported database {backend!r} (use sqlite:/// or postgresql://)"
    )


def _json_default(value: Any) -> Any:
    """Encode the few non-JSON values a payload may carry; refuse the rest."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class JsonText:
    """A JSON value serialised ahead of its write: :attr:`text` is what :func:`json_dumps` makes of it.

    A run holds a connector's state this way from the end of the read to the end of the run:
    100k users' packed records are ~70 MB of text and more than that as Python objects.
    The text is held compressed (:attr:`compressed`, a zlib stream of its UTF-8, a few MB),
    and it is stored that way too (:meth:`syncd.cache.Cache.set_value`), so the whole text is
    never made to be written. It is made a slice at a time (:func:`_pieces`): one
    ``json.dumps`` of the whole value would build a list of every token first, tens of MB
    beside the value it encodes.
    """

    __slots__ = ("_compressed",)

    def __init__(self, value: Any) -> None:
        packer = zlib.compressobj(1)  # fast: made at the end of every run that read the source
        chunks = [packer.compress(piece.encode()) for piece in _pieces(value)]
        chunks.append(packer.flush())
        self._compressed = b"".join(chunks)

    @property
    def compressed(self) -> bytes:
        """The JSON text's UTF-8 as one zlib stream (RFC 1950)."""
        return self._compressed

    @property
    def text(self) -> str:
        """The JSON text."""
        return zlib.decompress(self._compressed).decode()


_SLICE = 1_000
"""Items of a long list encoded by one ``json.dumps`` call in :func:`_pieces`."""


def _pieces(value: Any) -> Iterator[str]:
    """:func:`json_dumps` of ``value`` in pieces that join to the same text: objects key by key,
    long lists a slice of items at a time, anything else whole."""
    if isinstance(value, dict):
        yield "{"
        for i, (key, item) in enumerate(value.items()):
            # A key that is not text (1, None, True) becomes text the way json.dumps makes it.
            name = json_dumps(key) if isinstance(key, str) else json_dumps({key: 0})[1:-3]
            yield from ("," if i else "", name, ":")
            yield from _pieces(item)
        yield "}"
    elif isinstance(value, list) and len(value) > _SLICE:
        yield "["
        for start in range(0, len(value), _SLICE):
            yield ("," if start else "") + json_dumps(value[start : start + _SLICE])[1:-1]
        yield "]"
    else:
        yield json_dumps(value)


def json_dumps(value: Any) -> str:
    """Serialise a JSON column value: compact, strict (no NaN), datetimes as ISO 8601 text."""
    if isinstance(value, JsonText):
        return value.text  # the very string: no copy of it is made to write it
    return json.dumps(value, default=_json_default, allow_nan=False, separators=(",", ":"))


def _is_memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:") or (url.query.get("mode") == "memory")


def _sqlite_on_connect(memory: bool) -> Any:
    def on_connect(dbapi_connection: Any, connection_record: ConnectionPoolEntry) -> None:
        # Let SQLAlchemy emit BEGIN (see _sqlite_on_begin) instead of the sqlite3 module, which
        # skips it for SELECT and DDL. This is SQLAlchemy's documented recipe.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            if not memory:
                _enter_wal(cursor)
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    return on_connect


def _is_busy(exc: Exception) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)


def _enter_wal(cursor: Any) -> None:
    """``PRAGMA journal_mode = WAL``, retried while another connection holds the database.

    Two processes opening a new cache together (two ``syncd run`` started at once) race to switch
    it to WAL, which takes an exclusive lock; SQLite may then answer ``SQLITE_BUSY`` at once
    instead of calling the busy handler, when waiting could deadlock
    (https://www.sqlite.org/c3ref/busy_handler.html). The loser retries, so it opens the cache
    and meets the leader lock, which says who holds it, rather than "database is locked".
    """
    for attempt in stamina.retry_context(on=_is_busy, attempts=20, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000):
        with attempt:
            cursor.execute("PRAGMA journal_mode = WAL")


def _sqlite_on_begin(connection: Connection) -> None:
    mode = connection.get_execution_options().get(SQLITE_BEGIN_OPTION, "DEFERRED")
    if mode not in ("DEFERRED", "IMMEDIATE"):  # pragma: no cover - a programming error
        raise ValueError(f"{SQLITE_BEGIN_OPTION} must be DEFERRED or IMMEDIATE, not {mode!r}")
    connection.exec_driver_sql(f"BEGIN {mode}")


def create_cache_engine(url: str | URL, **kwargs: Any) -> Engine:
    """Create (but do not connect) the engine for ``url`` with syncd's settings.

    ``kwargs`` go to :func:`sqlalchemy.create_engine` and win over the defaults.

    Raises:
        CacheError: the URL is not supported (see :func:`normalise_url`).
    """
    parsed = normalise_url(url)
    options: dict[str, Any] = {
        "hide_parameters": True,  # parameters are directory data; keep them out of error messages
        "json_serializer": json_dumps,
    }
    connect_args: dict[str, Any] = {}
    memory = False
    if parsed.get_backend_name() == "sqlite":
        memory = _is_memory(parsed)
        if memory:
            # One connection shared by every checkout: each new connection to :memory: would
            # be a new, empty database.
            options["poolclass"] = StaticPool
            connect_args["check_same_thread"] = False
    else:
        options["pool_pre_ping"] = True
        query: Mapping[str, Any] = parsed.query
        if "connect_timeout" not in query:
            connect_args["connect_timeout"] = PG_CONNECT_TIMEOUT_S
        if "application_name" not in query:
            connect_args["application_name"] = "syncd"
    if connect_args:
        options["connect_args"] = connect_args
    options.update(kwargs)
    try:
        engine = create_engine(parsed, **options)
    except (ArgumentError, ImportError, ValueError, TypeError) as exc:
        raise CacheError(f"cannot open cache {mask_url(parsed)}: {describe_error(exc, parsed)}") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_on_connect(memory))
        event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def describe_error(exc: BaseException, url: URL | None = None) -> str:
    """A one-line reason for ``exc``: the driver's message, with ``url``'s password scrubbed.

    SQLAlchemy's own wrapper text (the SQL, the "background on this error" link) is dropped;
    parameters are never shown because engines are created with ``hide_parameters=True``.
    """
    orig = getattr(exc, "orig", None)
    source = orig if isinstance(orig, BaseException) else exc
    text = " ".join(str(source).split()) or type(source).__name__
    if url is not None and url.password:
        text = text.replace(str(url.password), "***")
    return text


def _chain_mentions(exc: BaseException, secret: str) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if secret in str(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def check_connects(engine: Engine) -> None:
    """Connect once and run ``SELECT 1``.

    Raises:
        CacheError: naming the URL (password masked) and the driver's reason.
    """
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
    except (SQLAlchemyError, OSError) as exc:
        engine.dispose()
        message = f"cannot open cache {mask_url(engine.url)}: {describe_error(exc, engine.url)}"
        password = engine.url.password
        if password and _chain_mentions(exc, str(password)):
            raise CacheError(message) from None
        raise CacheError(message) from exc
