"""Parse the ``filter`` query parameter the way Identity Center does [DG:listusers, DG:listgroups].

Grammar: one ``<attr> eq "<value>"`` clause, or two joined by ``and``. Keywords and attribute
names are case-insensitive (RFC 7644 §3.4.2.2); the value must be in double quotes (JSON string
escapes allowed). Anything else (``sw``, ``co``, ``pr``, ``or``, ``not``, parentheses, brackets,
unquoted values) is a 400 "Invalid Filter format" [UG:scim-logging-using-cloudtrail].

Allowed attributes and combinations [docs/references.md §A.3]:

* Users: ``userName``, ``externalId``, ``groups.value``, ``id``, ``id`` + ``manager`` (either order);
* Groups: ``displayName``, ``externalId``, ``members.value``, ``id``, ``id`` + ``members`` /
  ``member`` / ``members.value`` (either order; the DG text says ``member``, its example
  ``members``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Final, Literal

from syncd.emulator.constants import INVALID_FILTER
from syncd.emulator.errors import ScimError


Kind = Literal["Users", "Groups"]
"""The two listable resource kinds."""

_CLAUSE: Final = r'(?P<a{n}>[A-Za-z][A-Za-z0-9_.$]*)\s+(?i:eq)\s+"(?P<v{n}>(?:[^"\\]|\\.)*)"'
_FILTER_RE: Final = re.compile(r"^\s*" + _CLAUSE.format(n=1) + r"(?:\s+(?i:and)\s+" + _CLAUSE.format(n=2) + r")?\s*$")

_ALIASES: Final[Mapping[Kind, Mapping[str, str]]] = {
    "Users": {
        "username": "userName",
        "externalid": "externalId",
        "groups.value": "groups.value",
        "id": "id",
        "manager": "manager",
        "manager.value": "manager",
    },
    "Groups": {
        "displayname": "displayName",
        "externalid": "externalId",
        "members.value": "members.value",
        "members": "members",
        "member": "members",
        "id": "id",
    },
}

_COMBINATIONS: Final[Mapping[Kind, tuple[frozenset[str], ...]]] = {
    "Users": (
        frozenset({"userName"}),
        frozenset({"externalId"}),
        frozenset({"groups.value"}),
        frozenset({"id"}),
        frozenset({"id", "manager"}),
    ),
    "Groups": (
        frozenset({"displayName"}),
        frozenset({"externalId"}),
        frozenset({"members.value"}),
        frozenset({"id"}),
        frozenset({"id", "members"}),
        frozenset({"id", "members.value"}),
    ),
}


def _invalid(reason: str) -> ScimError:
    return ScimError(400, INVALID_FILTER, reason=reason)


def parse_filter(kind: Kind, text: str) -> dict[str, str]:
    """Parse ``text`` for a list of ``kind``; return ``{canonical attribute: value}``.

    ``members`` (the ``id`` + member form on Groups) is returned as ``members.value``.

    Raises:
        ScimError: 400 "Invalid Filter format" for bad syntax or an unsupported attribute or
            combination.
    """
    match = _FILTER_RE.match(text)
    if match is None:
        raise _invalid("only 'attr eq \"value\"', optionally two joined by 'and', is supported")
    criteria: dict[str, str] = {}
    for n in ("1", "2"):
        raw_attr = match.group("a" + n)
        if raw_attr is None:
            continue
        attr = _ALIASES[kind].get(raw_attr.lower())
        if attr is None:
            raise _invalid(f"filtering {kind} on '{raw_attr}' is not supported")
        if attr in criteria:
            raise _invalid(f"'{raw_attr}' appears twice")
        try:
            value = json.loads('"' + match.group("v" + n) + '"')
        except json.JSONDecodeError:
            raise _invalid("bad escape in a filter value") from None
        criteria[attr] = value
    if frozenset(criteria) not in _COMBINATIONS[kind]:
        raise _invalid(f"filtering {kind} on {' and '.join(sorted(criteria))} is not supported")
    if "members" in criteria:
        criteria["members.value"] = criteria.pop("members")
    return criteria
