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


class LiveUser:
    """A user as Identity Center returned it, reduced to the attributes syncd compares.

    A full resync holds 100k of these, so they are kept small. ``data`` (the same keys as
    :meth:`syncd.model.User.payload`) is kept as its canonical JSON text, the form
    :func:`syncd.model.digest` hashes, and decoded when read. When the reader already knows
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
        self._text = canonical(data) if data is not None else None

    @property
    def data(self) -> dict[str, Any]:
        """The attributes, as a new dict on every read."""
        if self._same is not None:
            return self._same.payload()
        decoded: dict[str, Any] = json.loads(self._text or "{}")
        return decoded

    def holds(self, user: User) -> bool:
        """True when Identity Center holds exactly ``user``'s payload."""
        if self._same is not None and self._same is user:
            return True
        return self._canonical() == canonical(user.payload())

    def _canonical(self) -> str:
        return canonical(self._same.payload()) if self._same is not None else (self._text or "{}")

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
