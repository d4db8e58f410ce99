"""The values that travel through a run: what a source read, and what Identity Center should hold.

Two layers, both plain frozen values with no I/O:

* ``SourceUser`` / ``SourceGroup`` / ``SourceRead``: what a connector read, as the IdP said it.
  Any field may be missing or odd; connectors do no validation beyond their own API's shape.
* ``User`` / ``Group`` / ``Snapshot``: the directory after normalisation (``syncd.normalise``),
  every record valid for Identity Center, memberships flattened to users.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections import Counter
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from syncd.memberset import MemberSet


ENTERPRISE_ATTRIBUTES = ("employee_number", "cost_center", "organization", "division", "department", "manager")
"""Enterprise-extension attributes Identity Center accepts (its developer guide, "Constraints and limitations")."""

PERSONAL_ATTRIBUTES = frozenset({"employee_number", "manager"})
"""Enterprise attributes whose values differ from user to user; the others (department, cost
centre...) repeat, and readers keep one copy of each value."""


NO_ATTRIBUTES: Mapping[str, str] = MappingProxyType({})
"""The enterprise attributes of a user that has none: one shared, read-only mapping (not an
empty dict per user)."""


@dataclass(frozen=True, slots=True)
class SourceUser:
    """A user as a connector read it. ``enterprise`` is read, never changed: connectors may
    share one mapping between the records they keep and the users they return."""

    id: str
    user_name: str | None = None
    email: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    display_name: str | None = None
    active: bool = True
    enterprise: Mapping[str, str] = field(default_factory=lambda: NO_ATTRIBUTES)  # shared, not a dict each


@dataclass(frozen=True, slots=True)
class SourceGroup:
    """A group as a connector read it: direct user members and nested group ids.

    ``email``: the group's address where the source has one (``[filters] groups`` globs match
    it as well as the name).
    """

    id: str
    name: str | None = None
    description: str | None = None
    members: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    email: str | None = None


class SkipKind(enum.StrEnum):
    """What kind of source record a :class:`Skipped` is (the value is what ``check`` and the logs show)."""

    USER = "user"
    GROUP = "group"
    MEMBERSHIP = "membership"
    """A member record of a group, as the IdP lists a group's members."""
    MEMBER = "member"
    """A member reference of a directory export that names no user or group of the export."""


@dataclass(frozen=True, slots=True)
class Skipped:
    """A source record left out of the run, and why."""

    kind: SkipKind
    id: str
    reason: str


@dataclass(slots=True)
class RequestStats:
    """HTTP requests sent to one system, by HTTP status (0: sent, and no answer came) and method."""

    by_status: Counter[int] = field(default_factory=Counter)
    by_method: Counter[str] = field(default_factory=Counter)

    def count(self, method: str, status: int) -> None:
        """One request sent, answered with ``status`` (0 when the connection failed)."""
        self.by_status[status] += 1
        self.by_method[method] += 1

    @property
    def total(self) -> int:
        """Every request sent, retries included."""
        return sum(self.by_status.values())

    @property
    def throttled(self) -> int:
        """Requests answered 429."""
        return self.by_status[429]

    @property
    def writes(self) -> int:
        """Requests that are not GETs."""
        return sum(n for method, n in self.by_method.items() if method != "GET")


@dataclass(slots=True)
class SourceRead:
    """Everything one read of a source returned.

    ``complete`` is False when the connector knows it could not read everything; the engine
    then refuses to write. ``requests`` counts the HTTP requests the read made.
    ``state`` is what the connector wants kept for its next read (watermarks); the engine
    stores it only when the run succeeds.
    """

    users: list[SourceUser] = field(default_factory=list)
    groups: list[SourceGroup] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    complete: bool = True
    requests: int = 0
    state: dict[str, Any] = field(default_factory=dict)
    # Groups the connector scoped the user set to (users="members"), when it did so itself.
    prefiltered: bool = False


@dataclass(frozen=True, slots=True)
class User:
    """A user as Identity Center should hold it. ``source_id`` becomes its externalId."""

    source_id: str
    user_name: str
    display_name: str
    given_name: str
    family_name: str
    email: str | None = None
    active: bool = True
    enterprise: tuple[tuple[str, str], ...] = ()

    def payload(self) -> dict[str, Any]:
        """The attributes syncd owns on the Identity Center user, as a plain dict."""
        data: dict[str, Any] = {
            "externalId": self.source_id,
            "userName": self.user_name,
            "displayName": self.display_name,
            "givenName": self.given_name,
            "familyName": self.family_name,
            "email": self.email,
            "active": self.active,
        }
        if self.enterprise:
            data["enterprise"] = dict(self.enterprise)
        return data

    def digest(self) -> str:
        """A stable hash of :meth:`payload`: equal digests mean no write is needed."""
        return digest(self.payload())


@dataclass(frozen=True, slots=True)
class Group:
    """A group as Identity Center should hold it, with its flattened user members.

    ``members`` may be given as any set of user source ids; it is kept as a
    :class:`~syncd.memberset.MemberSet` (a sorted tuple: a big directory's memberships are
    most of a run's memory otherwise).
    """

    source_id: str
    display_name: str
    description: str | None = None
    members: AbstractSet[str] = MemberSet()

    def __post_init__(self) -> None:
        """Keep ``members`` as a MemberSet."""
        if not isinstance(self.members, MemberSet):
            object.__setattr__(self, "members", MemberSet(self.members))

    def payload(self) -> dict[str, Any]:
        """The group attributes syncd owns (membership is tracked on its own)."""
        return {"externalId": self.source_id, "displayName": self.display_name}

    def digest(self) -> str:
        """A stable hash of :meth:`payload`."""
        return digest(self.payload())


@dataclass(frozen=True, slots=True, order=True)
class Assignment:
    """A group's access: a permission set in an AWS account (sso-admin account assignment).

    ``group`` is the group's source id; the names are for people to read and may be empty.
    """

    group: str
    account_id: str
    permission_set_arn: str
    group_name: str = field(default="", compare=False)
    permission_set_name: str = field(default="", compare=False)
    account_name: str = field(default="", compare=False)

    def describe(self) -> str:
        """``group → permission set @ account``."""
        ps = self.permission_set_name or self.permission_set_arn.rsplit("/", 1)[-1]
        account = f"{self.account_name} ({self.account_id})" if self.account_name else self.account_id
        return f"{self.group_name or self.group} → {ps} @ {account}"


@dataclass(frozen=True, slots=True, order=True)
class ApplicationAssignment:
    """A group's access to an Identity Center application (a SAML 2.0 or AWS managed app).

    ``group`` is the group's source id; the names are for people to read and may be empty.
    """

    group: str
    application_arn: str
    group_name: str = field(default="", compare=False)
    application_name: str = field(default="", compare=False)

    def describe(self) -> str:
        """``group → application name``."""
        app = self.application_name or self.application_arn.rsplit("/", 1)[-1]
        return f"{self.group_name or self.group} → application {app}"


@dataclass(frozen=True, slots=True)
class PermissionSetSpec:
    """What a permission set holds, in the form AWS reports it, so that two specs compare equal
    exactly when AWS would need no write.

    ``managed_policies`` are ARNs; ``customer_managed_policies`` are (name, path) pairs;
    ``inline_policy`` is canonical JSON text or None; ``permissions_boundary`` is a managed
    policy ARN, a (name, path) pair, or None; ``tags`` are sorted (key, value) pairs.
    """

    name: str
    description: str | None = None
    session_duration: str = "PT1H"
    relay_state: str | None = None
    managed_policies: frozenset[str] = frozenset()
    customer_managed_policies: frozenset[tuple[str, str]] = frozenset()
    inline_policy: str | None = None
    permissions_boundary: str | tuple[str, str] | None = None
    tags: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class PermissionSetChange:
    """A permission set syncd creates, updates, re-provisions or deletes.

    ``spec`` is what the config wants (None for a delete); ``current`` what AWS holds (None for
    a create); ``accounts`` the accounts a re-provisioning reaches (empty: all it is on).
    """

    name: str
    arn: str | None = None
    spec: PermissionSetSpec | None = None
    current: PermissionSetSpec | None = None
    accounts: tuple[str, ...] = ()

    def describe(self) -> str:
        """``permission set NAME``."""
        return f"permission set {self.name}"


@dataclass(slots=True)
class Snapshot:
    """The normalised directory: what Identity Center should hold after the run."""

    users: dict[str, User] = field(default_factory=dict)
    groups: dict[str, Group] = field(default_factory=dict)
    skipped: list[Skipped] = field(default_factory=list)

    def memberships(self) -> set[tuple[str, str]]:
        """Every (group source id, user source id) pair."""
        return {(g.source_id, u) for g in self.groups.values() for u in g.members}


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
"""What ``json.dumps`` with these options builds on every call, built once (a digest per user per run)."""


def canonical(data: Mapping[str, Any] | list[Any]) -> str:
    """``data`` as canonical JSON: keys sorted, no spaces, text as is. Equal texts, equal data."""
    return _CANONICAL.encode(data)


def digest(data: Mapping[str, Any]) -> str:
    """SHA-256 of :func:`canonical` of ``data``."""
    return hashlib.sha256(canonical(data).encode()).hexdigest()
