"""The records of the fake Workspace domain, and how the Directory API writes them.

Shapes from the Admin SDK Directory API reference ("Resource: User", "Resource: Group",
"Resource: Member"), projection ``basic``; empty arrays are left out, as Google leaves them out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.fakes.google_wire import etag_of, rfc3339


@dataclass
class FakeUser:
    """A user of the fake domain."""

    id: str
    email: str
    given_name: str
    family_name: str
    created: float
    suspended: bool = False
    archived: bool = False
    admin: bool = False
    org_unit: str = "/"
    aliases: list[str] = field(default_factory=list)
    organizations: list[dict[str, Any]] = field(default_factory=list)
    external_ids: list[dict[str, str]] = field(default_factory=list)
    relations: list[dict[str, str]] = field(default_factory=list)
    deleted: float | None = None

    def to_json(self, customer_id: str) -> dict[str, Any]:
        """The user as ``users.list`` (projection ``basic``) writes it; empty arrays left out."""
        data: dict[str, Any] = {
            "kind": "admin#directory#user",
            "id": self.id,
            "primaryEmail": self.email,
            "name": {
                "givenName": self.given_name,
                "familyName": self.family_name,
                "fullName": f"{self.given_name} {self.family_name}".strip(),
            },
            "isAdmin": self.admin,
            "isDelegatedAdmin": False,
            "lastLoginTime": "1970-01-01T00:00:00.000Z",
            "creationTime": rfc3339(self.created),
            "agreedToTerms": True,
            "suspended": self.suspended,
            "archived": self.archived,
            "changePasswordAtNextLogin": False,
            "ipWhitelisted": False,
            "emails": [{"address": self.email, "primary": True}, *({"address": a} for a in self.aliases)],
            "customerId": customer_id,
            "orgUnitPath": self.org_unit,
            "isMailboxSetup": True,
            "isEnrolledIn2Sv": False,
            "isEnforcedIn2Sv": False,
            "includeInGlobalAddressList": True,
        }
        if self.suspended:
            data["suspensionReason"] = "ADMIN"
        for key, values in (
            ("aliases", self.aliases),
            ("organizations", self.organizations),
            ("externalIds", self.external_ids),
            ("relations", self.relations),
        ):
            if values:
                data[key] = [dict(v) if isinstance(v, dict) else v for v in values]
        if self.deleted is not None:
            data["deletionTime"] = rfc3339(self.deleted)
        data["etag"] = etag_of(data)
        return data


@dataclass(frozen=True)
class Member:
    """One direct member row of a group: USER, GROUP, CUSTOMER or EXTERNAL."""

    type: str
    id: str
    email: str | None = None
    role: str = "MEMBER"


@dataclass
class FakeGroup:
    """A group of the fake domain, with its direct members in the order they were added."""

    id: str
    email: str
    name: str
    description: str = ""
    aliases: list[str] = field(default_factory=list)
    members: list[Member] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The group as ``groups.list`` writes it (``directMembersCount`` is a string)."""
        data: dict[str, Any] = {
            "kind": "admin#directory#group",
            "id": self.id,
            "email": self.email,
            "name": self.name,
            "description": self.description,
            "directMembersCount": str(len(self.members)),
            "adminCreated": True,
        }
        if self.aliases:
            data["aliases"] = list(self.aliases)
        data["etag"] = etag_of(data)
        return data
