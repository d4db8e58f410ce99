"""List query parameters and opaque cursors [DG:listusers, DG:listgroups].

Only ``filter``, ``count`` (1–100, default 100) and ``cursor`` are accepted; ``startIndex``,
``attributes``, ``excludedAttributes``, ``sortBy`` and ``sortOrder`` are unsupported and answer
400 [DG:limitations]. Other parameters are refused too (a strict choice; AWS's behaviour for
unknown parameters is UNCONFIRMED).

A cursor is standard base64 of 32 bytes: kind, the creation sequence number of the last item
served, a digest of the filter text, and an HMAC. 32 bytes always encode with one ``=`` padding
character, and ``+`` and ``/`` turn up often, as in Identity Center's cursor pattern
``[-a-zA-Z0-9+=/:_]*``: a client that does not URL-encode it sends ``+`` as a space and gets 400.
A cursor from another emulator instance, a forged one, or one issued for another filter or
resource kind answers 400 ValidationException.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import struct
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qsl

from syncd.emulator.constants import MAX_PAGE_SIZE
from syncd.emulator.errors import ScimError
from syncd.emulator.filters import Kind


UNSUPPORTED_PARAMS: Final = frozenset({"startIndex", "attributes", "excludedAttributes", "sortBy", "sortOrder"})
_CURSOR_PATTERN: Final = re.compile(r"^[-a-zA-Z0-9+=/:_]*$")
_LAYOUT: Final = struct.Struct(">cQ8s")  # kind, last sequence number, filter digest
_MAC_SIZE: Final = 32 - _LAYOUT.size
_KIND_BYTE: Final[dict[Kind, bytes]] = {"Users": b"U", "Groups": b"G"}
BAD_CURSOR: Final = "The cursor is invalid, expired, or was issued for a different request."


@dataclass(frozen=True, slots=True)
class ListParams:
    """The parsed query of a list request.

    Attributes:
        filter: the filter text, or None.
        count: the page size, 1–100.
        cursor: None for a classic list; "" for the first cursor page; else the cursor.
    """

    filter: str | None
    count: int
    cursor: str | None


def parse_query(query_string: str, *, list_endpoint: bool) -> ListParams:
    """Parse a query string. ``+`` decodes to a space, as in any form-encoded query.

    Args:
        query_string: the raw ``QUERY_STRING``.
        list_endpoint: False for non-list endpoints, which take no parameters at all.

    Raises:
        ScimError: 400 for an unsupported, repeated or malformed parameter.
    """
    try:
        pairs = parse_qsl(query_string, keep_blank_values=True, strict_parsing=False, errors="strict")
    except UnicodeDecodeError:
        raise ScimError(400, "Invalid query string", reason="the query string is not UTF-8") from None
    seen: dict[str, str] = {}
    for key, value in pairs:
        if key in UNSUPPORTED_PARAMS:
            raise ScimError(400, f"The query parameter {key} is not supported")
        if not list_endpoint or key not in ("filter", "count", "cursor"):
            raise ScimError(400, f"The query parameter {key} is not supported")
        if key in seen:
            raise ScimError(400, f"The query parameter {key} was given more than once")
        seen[key] = value
    count = MAX_PAGE_SIZE
    if "count" in seen:
        raw = seen["count"]
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE_SIZE:
            raise ScimError(400, f"count must be an integer from 1 to {MAX_PAGE_SIZE}")
        count = int(raw)
    return ListParams(filter=seen.get("filter"), count=count, cursor=seen.get("cursor"))


class CursorCodec:
    """Issue and check opaque cursors bound to a resource kind and a filter text.

    Args:
        secret: the HMAC key; one per emulator state, so cursors do not travel between instances.
    """

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    @staticmethod
    def _digest(filter_text: str | None) -> bytes:
        return hashlib.sha256((filter_text or "").encode()).digest()[:8]

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()[:_MAC_SIZE]

    def encode(self, kind: Kind, after: int, filter_text: str | None) -> str:
        """Return the cursor that continues after sequence number ``after``."""
        payload = _LAYOUT.pack(_KIND_BYTE[kind], after, self._digest(filter_text))
        return base64.b64encode(payload + self._mac(payload)).decode("ascii")

    def decode(self, kind: Kind, cursor: str, filter_text: str | None) -> int:
        """Return the sequence number a cursor continues after.

        Raises:
            ScimError: 400 ValidationException if the cursor is malformed, unknown, or was
                issued for another kind or filter (changing the filter mid-paging is a 400
                [DG:listusers, DG:listgroups]).
        """
        if not _CURSOR_PATTERN.match(cursor):
            raise ScimError(400, BAD_CURSOR, reason="cursor has characters outside [-a-zA-Z0-9+=/:_]")
        try:
            raw = base64.b64decode(cursor, validate=True)
        except (binascii.Error, ValueError):
            raise ScimError(400, BAD_CURSOR, reason="cursor is not one this emulator issued") from None
        if len(raw) != 32:
            raise ScimError(400, BAD_CURSOR, reason="cursor is not one this emulator issued")
        payload, mac = raw[: _LAYOUT.size], raw[_LAYOUT.size :]
        if not hmac.compare_digest(mac, self._mac(payload)):
            raise ScimError(400, BAD_CURSOR, reason="cursor is not one this emulator issued")
        kind_byte, after, digest = _LAYOUT.unpack(payload)
        if kind_byte != _KIND_BYTE[kind]:
            raise ScimError(400, BAD_CURSOR, reason="cursor was issued for another resource type")
        if digest != self._digest(filter_text):
            raise ScimError(400, BAD_CURSOR, reason="cursor was issued for a different filter")
        return int(after)
