"""The cache's named values: JSON values under a key (a connector's state between runs, when
the SCIM token was last proven). A value serialised ahead (:class:`~syncd.cache.database.JsonText`,
a connector's state) is stored compressed, as it is held.

A part of :class:`syncd.cache.Cache` (:mod:`syncd.cache.shared`).
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from sqlalchemy import select

from syncd.cache.database import JsonText
from syncd.cache.shared import Transactions, utc_now
from syncd.cache.tables import kv


__all__ = ["NamedValues"]


class NamedValues:
    """JSON values by key (a part of ``Cache``)."""

    def get_value(self: Transactions, key: str) -> Any | None:
        """The JSON value stored under ``key``, or None."""
        with self._read("get_value") as connection:
            row = connection.execute(select(kv.c.value, kv.c.packed).where(kv.c.key == key)).one_or_none()
        if row is None:
            return None
        value, packed = row
        if packed is None:
            return value
        # The text lives only while it is parsed: 100k users' state is ~70 MB of it.
        return json.loads(zlib.decompress(packed).decode())

    def set_value(self: Transactions, key: str, value: Any) -> None:
        """Store a JSON-serialisable ``value`` under ``key``, replacing any previous one.

        A :class:`~syncd.cache.database.JsonText` is stored as it is held, compressed: its text
        is not made to be written (tens of MB at the end of a 100k-user run).
        """
        row = {"key": key, "value": value, "updated_at": utc_now(), "packed": None}
        if isinstance(value, JsonText):
            row["value"], row["packed"] = None, value.compressed
        with self._write("set_value") as connection:
            connection.execute(self._stmts.upsert_kv, row)
