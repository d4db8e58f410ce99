"""URNs, limits and the fixed error texts of Identity Center's SCIM endpoint.

Sources are named as in ``docs/references.md``: ``[DG:page]`` is the *SCIM Implementation
Developer Guide*, ``[UG:page]`` the *User Guide*, ``[model:svc]`` the botocore service model.
"""

from __future__ import annotations

from typing import Final


USER_URN: Final = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_URN: Final = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_URN: Final = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
LIST_RESPONSE_URN: Final = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH_OP_URN: Final = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR_URN: Final = "urn:ietf:params:scim:api:messages:2.0:Error"
SPC_URN: Final = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
SCHEMA_URN: Final = "urn:ietf:params:scim:schemas:core:2.0:Schema"
RESOURCE_TYPE_URN: Final = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"

BASE_PATH: Final = "/scim/v2"
"""Where the emulator serves; AWS puts ``/<tenant-id>`` in front of it [DG:every page]."""

MAX_PAGE_SIZE: Final = 100
"""``count`` is 1–100 and defaults to 100 [DG:listusers, DG:listgroups]."""

MAX_MEMBER_CHANGES: Final = 100
"""Membership changes per PatchGroup request, and members per CreateGroup [DG:patchgroup, DG:creategroup]."""

MAX_USERS: Final = 100_000
"""Users per identity store (AWS raises it on request) [UG:limits]."""

MAX_GROUPS: Final = 100_000
"""Groups per identity store (cannot be raised) [UG:limits]."""

USER_NAME_MAX: Final = 128
"""userName length limit [model:identitystore UserName]."""

STRING_MAX: Final = 1024
"""Limit of every other string attribute [model:identitystore SensitiveStringType]."""

# Fixed detail texts, quoted from AWS captures [UG:troubleshooting, UG:scim-logging-using-cloudtrail,
# slashdevops/idp-scim-sync#45, #62].
SCHEMA_VIOLATION: Final = "Request is unparsable, syntactically incorrect, or violates schema."
DUPLICATE: Final = "Refused to create a new, duplicate resource."
INVALID_JSON: Final = "Invalid JSON from RequestBody"
INVALID_FILTER: Final = "Invalid Filter format"
MISSING_PATH: Final = "Missing path in PATCH request"
NO_PATH_ONLY_ADD_REPLACE: Final = (
    'Current PATCH support allows omitting "path" attribute only for Add and Replace operations '
    "modifying a single attribute."
)
USER_NOT_FOUND: Final = "Specified user or endpoint does not exist"
# [DG:getgroup] gives no text; this mirrors the GetUser one (UNCONFIRMED).
GROUP_NOT_FOUND: Final = "Specified group or endpoint does not exist"
ENDPOINT_NOT_FOUND: Final = "Specified endpoint does not exist"
UNAUTHORIZED: Final = "The request could not be authenticated: the bearer token is missing or invalid."
THROTTLED: Final = "Rate exceeded"
INTERNAL: Final = "An unexpected internal service exception was encountered."


def list_limit_exceeded(attribute: str) -> str:
    """The text AWS sends when a multi-valued attribute holds more than one value [UG:troubleshooting]."""
    return f"List attribute {attribute} exceeds allowed limit of 1"
