"""Reading raw LDAP values: text, GUIDs, DNs, range options, time stamps. Pure functions."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from connectors.ldap.conn import Entry


__all__ = [
    "dn_key",
    "escape_filter_value",
    "filetime_epoch",
    "first_text",
    "generalized_time",
    "guid_text",
    "ranged",
    "values_of",
]


def values_of(entry: Entry, name: str) -> Sequence[bytes]:
    """The values of attribute ``name`` in ``entry``, whatever case the server spelled it in."""
    found = entry.attributes.get(name)
    if found is not None:
        return found
    folded = name.casefold()
    for key, values in entry.attributes.items():
        if key.casefold() == folded:
            return values
    return ()


def first_text(entry: Entry, name: str | None) -> str | None:
    """The first value of ``name`` as text (UTF-8, RFC 4511 §4.1.2), or None."""
    if not name:
        return None
    for value in values_of(entry, name):
        text = value.decode("utf-8", errors="replace").strip()
        if text:
            return text
    return None


def guid_text(raw: bytes) -> str:
    """An AD objectGUID (16 bytes, little-endian layout, MS-DTYP §2.3.4.2) as the canonical GUID string."""
    return str(uuid.UUID(bytes_le=bytes(raw)))


_HEX_ESCAPE = re.compile(r"\\([0-9a-fA-F]{2})")
_SPLIT = re.compile(r"(?<!\\)[,+]")


def dn_key(dn: str) -> str:
    """A DN reduced to compare equal to the same DN written otherwise (RFC 4514 §2-3, RFC 4517 §4.2.15).

    Attribute types and values fold case and lose surrounding spaces, escapes (``\\,``, ``\\2C``)
    are resolved. Directories compare names case-insensitively (distinguishedNameMatch over
    caseIgnoreMatch values), which is what users expect from AD and OpenLDAP alike.
    """
    parts = []
    for rdn in re.split(r"(?<!\\),", dn):
        kind, _, value = rdn.partition("=")
        value = _HEX_ESCAPE.sub(lambda m: chr(int(m[1], 16)), value.strip())
        value = re.sub(r"\\(.)", r"\1", value)
        parts.append(f"{kind.strip().casefold()}={value.strip().casefold()}")
    return ",".join(parts)


def under(dn: str, bases: Sequence[str]) -> bool:
    """Whether ``dn`` is one of ``bases`` or below one of them."""
    key = dn_key(dn)
    return any(key == base or key.endswith("," + base) for base in (dn_key(b) for b in bases))


def escape_filter_value(value: str) -> str:
    """Escape ``*``, ``(``, ``)``, ``\\`` and NUL for an assertion value (RFC 4515 §3)."""
    return "".join(f"\\{ord(c):02x}" if c in "*()\\\0" else c for c in value)


_RANGE = re.compile(r"^(?P<name>[^;]+);range=(?P<low>\d+)-(?P<high>\d+|\*)$", re.IGNORECASE)


def ranged(attributes: Mapping[str, Sequence[bytes]], name: str) -> tuple[list[bytes], int | None]:
    """Values of ``name`` and, when AD sent only a slice (``member;range=0-1499``), where the next starts.

    Returns (values, next_low): next_low is None when nothing is left to fetch (MS-ADTS §3.1.1.3.1.3.3).
    """
    folded = name.casefold()
    plain: list[bytes] = []
    for key, values in attributes.items():
        match = _RANGE.match(key)
        if match and match["name"].casefold() == folded:
            return list(values), None if match["high"] == "*" else int(match["high"]) + 1
        if key.casefold() == folded:
            plain = list(values)
    return plain, None


def generalized_time(text: str) -> datetime | None:
    """A GeneralizedTime (RFC 4517 §3.3.13) such as ``20261201214208Z`` or ``20261201214208.695714Z``."""
    match = re.match(r"^(\d{14})(?:[.,](\d+))?Z$", text.strip())
    if not match:
        return None
    moment = datetime.strptime(match[1], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    if match[2]:
        moment = moment.replace(microsecond=int(match[2][:6].ljust(6, "0")))
    return moment


def to_generalized_time(moment: datetime) -> str:
    """``YYYYmmddHHMMSSZ`` in UTC, the form a ``modifyTimestamp>=`` filter takes."""
    return moment.astimezone(UTC).strftime("%Y%m%d%H%M%SZ")


FILETIME_UNIX_EPOCH = 116_444_736_000_000_000  # 1970-01-01 UTC in 100 ns intervals since 1601-01-01 UTC
FILETIME_MAX = 0x7FFF_FFFF_FFFF_FFFF  # the largest Large Integer (a signed 64-bit value)
_DECIMAL = re.compile(r"[0-9]+")


def filetime_epoch(text: str) -> float:
    """A FILETIME written as a decimal integer (100 ns intervals since 1601-01-01 UTC, MS-DTYP
    §2.3.3) as epoch seconds; ValueError when ``text`` is not a decimal from 0 to 2**63 - 1."""
    if not _DECIMAL.fullmatch(text) or int(text) > FILETIME_MAX:
        raise ValueError("not a FILETIME")
    return (int(text) - FILETIME_UNIX_EPOCH) / 10_000_000
