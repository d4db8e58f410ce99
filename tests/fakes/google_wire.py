"""Google's wire forms, shared by the fake Directory API and the fake token and IAM endpoints.

* the error body of Google's older JSON APIs (the Directory API), ``{"error": {"code", "message", "errors": [{"message",
  "domain", "reason"}], "status"}}`` (google-api-python-client ``googleapiclient/http.py`` reads
  ``errors[0].reason``; ``status`` is not always there), and the newer APIs' form (IAM);
* partial responses, ``fields=nextPageToken,users(id,name/givenName)`` ("Performance Tips:
  Partial response" of the Google APIs): parsed, checked against the resource's fields, applied;
* RFC 3339 timestamps with milliseconds, as the Directory API writes them;
* the answers the quotas and injected faults give, and the ``maxResults`` rule.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx2


def rfc3339(epoch: float) -> str:
    """``2024-05-01T10:00:00.000Z``, the Directory API's timestamp form."""
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def etag_of(data: Any) -> str:
    """An entity tag that changes whenever ``data`` does: quoted, as Google sends it."""
    digest = hashlib.sha256(repr(data).encode()).hexdigest()  # the fake's records keep their key order
    return f'"{digest[:27]}/{digest[27:54]}"'


def error(
    status: int,
    message: str,
    reason: str,
    *,
    domain: str = "global",
    state: str | None = None,
    detail: str | None = None,
    extra: Mapping[str, str] | None = None,
) -> httpx2.Response:
    """A Directory API error response; ``state`` is the optional ``status`` text, ``detail`` the
    ``errors[0].message`` when it differs from the message."""
    item: dict[str, Any] = {"message": detail or message, "domain": domain, "reason": reason, **(extra or {})}
    body: dict[str, Any] = {"code": status, "message": message, "errors": [item]}
    if state is not None:
        body["status"] = state
    return httpx2.Response(status, json={"error": body})


NOT_AUTHORIZED = "Not Authorized to access this resource/api"


def rate_limited() -> httpx2.Response:
    """403 ``userRateLimitExceeded``: the queries-per-minute-per-user quota is spent."""
    return error(
        403,
        "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute per user' of service "
        "'admin.googleapis.com' for consumer 'project_number:100000000001'.",
        "userRateLimitExceeded",
        domain="usageLimits",
        state="PERMISSION_DENIED",
    )


def injected(kind: str, request: httpx2.Request) -> httpx2.Response:
    """The answer to an injected fault (see ``FakeGoogle.inject``); ``network`` raises instead."""
    if kind == "network":
        raise httpx2.ConnectError("fake: connection reset", request=request)
    if kind == "userRateLimitExceeded":
        return rate_limited()
    if kind == "quotaExceeded":
        return error(403, "Quota exceeded", "quotaExceeded", domain="usageLimits", state="PERMISSION_DENIED")
    if kind == "rateLimitExceeded":
        return error(429, "Rate Limit Exceeded", "rateLimitExceeded", domain="usageLimits", state="RESOURCE_EXHAUSTED")
    if kind == "notAuthorized":
        return error(403, NOT_AUTHORIZED, "forbidden")
    if kind == "backendError":
        return error(503, "Backend Error", "backendError", state="UNAVAILABLE")
    status = int(kind)
    if status >= 500:
        return error(status, "Internal error encountered.", "backendError", state="INTERNAL")
    return error(status, "Injected error", "badRequest")


def page_size(default: int, maximum: int, params: Mapping[str, str]) -> int | httpx2.Response:
    """``maxResults`` (``default`` when absent), or the 400 for a value outside ``[1, maximum]``."""
    raw = params.get("maxResults")
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        return error(
            400,
            f"Invalid value '{raw}'. Values must be within the range: [1, {maximum}]",
            "invalid",
            state="INVALID_ARGUMENT",
        )
    return int(raw)


def rpc_error(status: int, message: str, state: str, reason: str, domain: str) -> httpx2.Response:
    """The error body of Google's newer (gRPC-based) APIs such as IAM Credentials: no ``errors``
    list, a ``google.rpc.ErrorInfo`` in ``details`` instead (AIP-193)."""
    info = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason, "domain": domain}
    return httpx2.Response(
        status, json={"error": {"code": status, "message": message, "status": state, "details": [info]}}
    )


def oauth_error(status: int, code: str, description: str) -> httpx2.Response:
    """An OAuth 2.0 token endpoint error (RFC 6749 §5.2)."""
    return httpx2.Response(status, json={"error": code, "error_description": description})


# --- partial responses ---------------------------------------------------------------------------

Schema = Mapping[str, "Schema | None"]
"""Field name -> the fields of its value (for objects and arrays of objects), or None for a leaf
or an object whose sub-fields the fake does not check."""

Selection = dict[str, "Selection | None"]
"""Field name -> the sub-selection, or None for the whole value."""


class BadFields(ValueError):
    """``fields=`` names something the resource does not have, or cannot be parsed."""


_NAME = re.compile(r"[A-Za-z_*][\w*]*")


def parse_fields(text: str, schema: Schema) -> Selection:
    """Parse a ``fields`` expression against ``schema``; BadFields where Google answers 400."""
    position = 0

    def selection(level: Schema | None) -> Selection:
        nonlocal position
        out: Selection = {}
        while True:
            path, position = _path(text, position)
            below = _schema_at(level, path)  # checks every name of the path
            inner: Selection | None = None
            if position < len(text) and text[position] == "(":
                position += 1
                inner = selection(below)
                if position >= len(text) or text[position] != ")":
                    raise BadFields(f"Invalid field selection {text}: missing )")
                position += 1
            _merge(out, path[0], _chain(path[1:], inner))
            if position < len(text) and text[position] == ",":
                position += 1
                continue
            return out

    result = selection(schema)
    if position != len(text):
        raise BadFields(f"Invalid field selection {text[position:]}")
    return result


def _path(text: str, position: int) -> tuple[list[str], int]:
    parts: list[str] = []
    while True:
        match = _NAME.match(text, position)
        if not match:
            raise BadFields(f"Invalid field selection {text[position:] or text}")
        parts.append(match.group())
        position = match.end()
        if position < len(text) and text[position] == "/":
            position += 1
            continue
        return parts, position


def _schema_at(level: Schema | None, path: list[str]) -> Schema | None:
    for name in path:
        if level is None or name == "*":
            return None
        if name not in level:
            raise BadFields(f"Invalid field selection {name}")
        level = level[name]
    return level


def _chain(rest: list[str], inner: Selection | None) -> Selection | None:
    """``a/b/c(d)`` below ``a``: ``{"b": {"c": {"d": None}}}``."""
    if not rest:
        return inner
    return {rest[0]: _chain(rest[1:], inner)}


def _merge(out: Selection, name: str, nested: Selection | None) -> None:
    if name in out and out[name] is None:
        return
    if nested is None or name not in out:
        out[name] = nested
        return
    existing = out[name]
    assert existing is not None
    for key, value in nested.items():
        _merge(existing, key, value)


def apply_fields(data: Any, selection: Selection | None) -> Any:
    """Keep only the selected fields of ``data`` (objects and arrays of objects alike)."""
    if selection is None:
        return data
    if isinstance(data, list):
        return [apply_fields(item, selection) for item in data]
    if not isinstance(data, dict):
        return data
    if "*" in selection:
        return {key: apply_fields(value, selection["*"]) for key, value in data.items()}
    return {key: apply_fields(data[key], sub) for key, sub in selection.items() if key in data}


# --- resource fields (Admin SDK Directory API reference, "Resource: User", "Group", "Member") -------

_USER_NAME: Schema = dict.fromkeys(("givenName", "familyName", "fullName", "displayName"))
_ORGANIZATION: Schema = dict.fromkeys(
    (
        "name",
        "title",
        "primary",
        "type",
        "customType",
        "department",
        "symbol",
        "location",
        "description",
        "domain",
        "costCenter",
        "fullTimeEquivalent",
    )
)
_TYPED_VALUE: Schema = dict.fromkeys(("value", "type", "customType"))
_EMAIL: Schema = dict.fromkeys(("address", "primary", "type", "customType"))
USER_FIELDS: Schema = {
    **dict.fromkeys(
        (
            "kind",
            "id",
            "etag",
            "primaryEmail",
            "password",
            "hashFunction",
            "isAdmin",
            "isDelegatedAdmin",
            "agreedToTerms",
            "suspended",
            "suspensionReason",
            "archived",
            "changePasswordAtNextLogin",
            "ipWhitelisted",
            "ims",
            "addresses",
            "phones",
            "languages",
            "posixAccounts",
            "sshPublicKeys",
            "websites",
            "locations",
            "keywords",
            "gender",
            "notes",
            "aliases",
            "nonEditableAliases",
            "customerId",
            "orgUnitPath",
            "isMailboxSetup",
            "isEnrolledIn2Sv",
            "isEnforcedIn2Sv",
            "includeInGlobalAddressList",
            "thumbnailPhotoUrl",
            "thumbnailPhotoEtag",
            "customSchemas",
            "lastLoginTime",
            "creationTime",
            "deletionTime",
            "recoveryEmail",
            "recoveryPhone",
            "isGuestUser",
            "guestAccountInfo",
        )
    ),
    "name": _USER_NAME,
    "emails": _EMAIL,
    "externalIds": _TYPED_VALUE,
    "relations": _TYPED_VALUE,
    "organizations": _ORGANIZATION,
}
GROUP_FIELDS: Schema = dict.fromkeys(
    (
        "kind",
        "id",
        "etag",
        "email",
        "name",
        "description",
        "directMembersCount",
        "adminCreated",
        "aliases",
        "nonEditableAliases",
    )
)
MEMBER_FIELDS: Schema = dict.fromkeys(("kind", "etag", "id", "email", "role", "type", "status", "delivery_settings"))
USERS_LIST: Schema = {"kind": None, "etag": None, "trigger_event": None, "nextPageToken": None, "users": USER_FIELDS}
GROUPS_LIST: Schema = {"kind": None, "etag": None, "nextPageToken": None, "groups": GROUP_FIELDS}
MEMBERS_LIST: Schema = {"kind": None, "etag": None, "nextPageToken": None, "members": MEMBER_FIELDS}
