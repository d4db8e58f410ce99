"""The read-only discovery endpoints: /ServiceProviderConfig, /Schemas, /ResourceTypes.

ServiceProviderConfig mirrors the body captured from AWS (one OAuth bearer scheme, bulk off,
``filter.maxResults`` 50 although lists now page at 100, patch on, changePassword / sort / etag
off) [docs/references.md §A.2]. /Schemas [DG:getschema, DG:listschemas] and /ResourceTypes
[DG:listresourcetypes] are minimal but valid RFC 7643 documents covering what Identity Center
accepts; /Schemas reports ``userName`` required, not caseExact, uniqueness "server".
"""

from __future__ import annotations

from typing import Any, Final

from syncd.emulator.constants import (
    BASE_PATH,
    ENTERPRISE_URN,
    GROUP_URN,
    LIST_RESPONSE_URN,
    RESOURCE_TYPE_URN,
    SCHEMA_URN,
    SPC_URN,
    USER_URN,
)


_DOCS: Final = "https://docs.aws.amazon.com/singlesignon/latest/developerguide"


def service_provider_config() -> dict[str, Any]:
    """The GET /ServiceProviderConfig body."""
    return {
        "schemas": [SPC_URN],
        "documentationUri": f"{_DOCS}/what-is-scim.html",
        "authenticationSchemes": [
            {
                "type": "oauthbearertoken",
                "name": "OAuth Bearer Token",
                "description": "Authentication scheme using the OAuth Bearer Token Standard",
                "specUri": "https://www.rfc-editor.org/info/rfc6750",
                "documentationUri": f"{_DOCS}/provision-automatically.html",
                "primary": True,
            }
        ],
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": 50},
        "patch": {"supported": True},
        "changePassword": {"supported": False},
        "sort": {"supported": False},
        "etag": {"supported": False},
    }


def _attr(
    name: str,
    type_: str = "string",
    *,
    multi: bool = False,
    required: bool = False,
    case_exact: bool = False,
    uniqueness: str = "none",
    sub: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    attribute: dict[str, Any] = {
        "name": name,
        "type": type_,
        "multiValued": multi,
        "required": required,
        "caseExact": case_exact,
        "mutability": "readWrite",
        "returned": "default",
        "uniqueness": uniqueness,
    }
    if sub is not None:
        attribute["subAttributes"] = sub
    return attribute


def _multi(name: str, subs: tuple[str, ...]) -> dict[str, Any]:
    sub = [_attr(s) for s in subs] + [_attr("type"), _attr("primary", "boolean")]
    return _attr(name, "complex", multi=True, sub=sub)


def _schema(urn: str, name: str, description: str, attributes: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "schemas": [SCHEMA_URN],
        "id": urn,
        "name": name,
        "description": description,
        "attributes": attributes,
        "meta": {"resourceType": "Schema", "location": f"{BASE_PATH}/Schemas/{urn}"},
    }


def schemas() -> list[dict[str, Any]]:
    """The User, enterprise User and Group schemas, as Identity Center supports them [DG:limitations]."""
    name_subs = ("formatted", "familyName", "givenName", "middleName", "honorificPrefix", "honorificSuffix")
    user = _schema(
        USER_URN,
        "User",
        "User Account",
        [
            _attr("userName", required=True, uniqueness="server"),
            _attr(
                "name",
                "complex",
                required=True,
                sub=[_attr(s, required=s in ("givenName", "familyName")) for s in name_subs],
            ),
            _attr("displayName", required=True),
            *(
                _attr(s)
                for s in (
                    "nickName",
                    "profileUrl",
                    "title",
                    "userType",
                    "preferredLanguage",
                    "locale",
                    "timezone",
                )
            ),
            _attr("active", "boolean"),
            _attr("externalId", case_exact=True),
            _multi("emails", ("value",)),
            _multi(
                "addresses",
                ("formatted", "streetAddress", "locality", "region", "postalCode", "country"),
            ),
            _multi("phoneNumbers", ("value",)),
            _multi("roles", ("value",)),
        ],
    )
    enterprise = _schema(
        ENTERPRISE_URN,
        "EnterpriseUser",
        "Enterprise User",
        [
            *(_attr(s) for s in ("employeeNumber", "costCenter", "organization", "division", "department")),
            _attr("manager", "complex", sub=[_attr("value"), _attr("$ref", "reference")]),
        ],
    )
    group = _schema(
        GROUP_URN,
        "Group",
        "Group",
        [
            _attr("displayName", required=True, uniqueness="server"),
            _attr("externalId", case_exact=True),
            _attr("members", "complex", multi=True, sub=[_attr("value", case_exact=True)]),
        ],
    )
    return [user, enterprise, group]


def resource_types() -> list[dict[str, Any]]:
    """The User (with the optional enterprise extension) and Group resource types."""
    return [
        {
            "schemas": [RESOURCE_TYPE_URN],
            "id": "User",
            "name": "User",
            "endpoint": "/Users",
            "description": "User Account",
            "schema": USER_URN,
            "schemaExtensions": [{"schema": ENTERPRISE_URN, "required": False}],
            "meta": {"resourceType": "ResourceType", "location": f"{BASE_PATH}/ResourceTypes/User"},
        },
        {
            "schemas": [RESOURCE_TYPE_URN],
            "id": "Group",
            "name": "Group",
            "endpoint": "/Groups",
            "description": "Group",
            "schema": GROUP_URN,
            "schemaExtensions": [],
            "meta": {"resourceType": "ResourceType", "location": f"{BASE_PATH}/ResourceTypes/Group"},
        },
    ]


def list_response(resources: list[dict[str, Any]]) -> dict[str, Any]:
    """A classic (non-cursor) ListResponse; ``totalResults`` is the number returned [DG:listusers]."""
    return {
        "totalResults": len(resources),
        "itemsPerPage": len(resources),
        "startIndex": 1,
        "schemas": [LIST_RESPONSE_URN],
        "Resources": resources,
    }
