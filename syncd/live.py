"""What a full resync read from Identity Center: values, no logic beyond comparing them.

The SCIM target builds these and the planner reconciles against them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any

from syncd.model import User, canonical


_VALUES = ("displayName", "givenName", "familyName", "email", "active")
"""The payload's keys a user's text keeps as a bare list, in this order (then ``enterprise``, if any)."""
_PAYLOAD = frozenset({"externalId", "userName", *_VALUES, "enterprise"})


def _text_of(external_id: str | None, user_name: str, data: Mapping[str, Any]) -> str:
    """``data`` as compact JSON text: when it has :meth:`~syncd.model.User.payload`'s keys and
    its externalId and userName are the ids kept beside it, only the other values, as a list in
    :data:`_VALUES` order (a third of the text of the whole object, at 100k users some 13 MB);
    otherwise the canonical JSON of the whole object."""
    if (
        data.keys() <= _PAYLOAD
        and all(key in data for key in _VALUES)
        and "externalId" in data
        and data["externalId"] == external_id
        and type(data["externalId"]) is type(external_id)
        and data.get("userName") == user_name
        and type(data["userName"]) is str
    ):
        values = [data[key] for key in _VALUES]
        if "enterprise" in data:
            values.append(data["enterprise"])
        return canonical(values)
    return canonical(data)


class LiveUser:
    """A user as Identity Center returned it, reduced to the attributes syncd compares.

    A full resync holds 100k of these, so they are kept small. ``data`` (the same keys as
    :meth:`syncd.model.User.payload`) is kept as compact JSON text (see :func:`_text_of`) and
    decoded when read; compared, it is the canonical JSON text :func:`syncd.model.digest`
    hashes. When the reader already knows
    the user it will be compared with and Identity Center holds exactly that user's payload
    (the common case), ``same`` names that snapshot user and nothing else is kept: its ids and
    payload are the live ones. Comparing with a user (:meth:`holds`) then costs nothing.
    """

    __slots__ = ("_same", "_text", "external_id", "target_id", "user_name")

    def __init__(
        self,
        target_id: str,
        external_id: str | None,
        user_name: str,
        data: Mapping[str, Any] | None = None,
        *,
        same: User | None = None,
    ) -> None:
        """Keep the ids and either the text of ``data`` or, when given, the user it equals."""
        if (data is None) == (same is None):
            raise TypeError("give the attributes (data) or the user they equal (same), not both")
        self.target_id = target_id
        self.external_id = external_id
        self.user_name = user_name
        self._same = same
        self._text = _text_of(external_id, user_name, data) if data is not None else None

    @property
    def data(self) -> dict[str, Any]:
        """The attributes, as a new dict on every read."""
        if self._same is not None:
            return self._same.payload()
        decoded = json.loads(self._text or "{}")
        if isinstance(decoded, dict):
            return decoded
        data: dict[str, Any] = {"externalId": self.external_id, "userName": self.user_name}
        data.update(zip(_VALUES, decoded, strict=False))
        if len(decoded) > len(_VALUES):
            data["enterprise"] = decoded[-1]
        return data

    def holds(self, user: User) -> bool:
        """True when Identity Center holds exactly ``user``'s payload."""
        if self._same is not None and self._same is user:
            return True
        return self._canonical() == canonical(user.payload())

    def _canonical(self) -> str:
        if self._same is None and self._text is not None and self._text.startswith("{"):
            return self._text  # the whole object's canonical text, as kept
        return canonical(self.data)

    def _key(self) -> tuple[str, str | None, str, str]:
        return (self.target_id, self.external_id, self.user_name, self._canonical())

    def __eq__(self, other: object) -> bool:
        """Same ids and same attributes."""
        return self._key() == other._key() if isinstance(other, LiveUser) else NotImplemented

    def __hash__(self) -> int:
        """Hash of the ids and attributes."""
        return hash(self._key())

    def __repr__(self) -> str:
        """The ids and the attributes."""
        return f"LiveUser({self.target_id!r}, {self.external_id!r}, {self.user_name!r}, {self.data!r})"


@dataclass(frozen=True, slots=True)
class LiveGroup:
    """A group as Identity Center returned it."""

    target_id: str
    external_id: str | None
    display_name: str


@dataclass(slots=True)
class LiveState:
    """What a full resync read from Identity Center.

    ``members`` maps a group's Identity Center id to its members' ids; it holds only the
    groups whose members were read (those syncd manages or adopts).
    """

    users: list[LiveUser] = field(default_factory=list)
    groups: list[LiveGroup] = field(default_factory=list)
    members: dict[str, AbstractSet[str]] = field(default_factory=dict)
