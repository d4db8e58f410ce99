"""The cache's named values: small JSON values under a key (a connector's state between runs,
when the SCIM token was last proven).

A part of :class:`syncd.cache.Cache` (:mod:`syncd.cache.shared`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from syncd.cache.shared import Transactions, utc_now
from syncd.cache.tables import kv


__all__ = ["NamedValues"]


class NamedValues:
    """Small JSON values by key (a part of ``Cache``)."""

    def get_value(self: Transactions, key: str) -> Any | None:
        """The JSON value stored under ``key``, or None."""
        with self._read("get_value") as connection:
            return connection.execute(select(kv.c.value).where(kv.c.key == key)).scalar_one_or_none()

    def set_value(self: Transactions, key: str, value: Any) -> None:
        """Store a JSON-serialisable ``value`` under ``key``, replacing any previous one."""
        with self._write("set_value") as connection:
            connection.execute(self._stmts.upsert_kv, {"key": key, "value": value, "updated_at": utc_now()})
