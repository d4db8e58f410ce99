"""Validate User and Group bodies against Identity Center's rules and normalise them for storage.

The rules [DG:createuser, DG:putuser, DG:creategroup, DG:limitations, model:identitystore]:

* required on POST and PUT: ``userName``, ``displayName``, ``name.givenName``, ``name.familyName``;
  an empty string counts as missing (minimum length 1);
* ``userName`` is 1–128 letters, marks, symbols, numbers or punctuation (no whitespace); every
  other string is 1–1024 of the same plus tab, CR, LF, space and no-break space;
* ``emails``, ``addresses``, ``phoneNumbers`` and ``roles`` hold at most one value; the ``display``
  sub-attribute is rejected; the single email must be ``primary: true``;
* ``password``, ``groups``, ``ims``, ``photos``, ``x509Certificates``, ``entitlements`` are refused;
* the enterprise extension carries employeeNumber, costCenter, organization, division,
  department and manager.value / manager.$ref (manager.displayName is not supported).

Choices where AWS is silent (UNCONFIRMED), made on the strict side:

* attribute names must be spelt exactly (RFC 7643 would allow any case);
* unknown attributes are refused; ``id`` and ``meta`` are read-only and ignored (RFC 7644 §3.3);
* ``schemas`` must name the core schema, and the enterprise URN when extension data is sent;
* ``active`` on POST and PUT must be a JSON boolean (PATCH also takes "true"/"false");
* JSON ``null`` means "no value" (RFC 7643 §2.5), so a required attribute sent as null is missing.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Any, Final

from syncd.emulator.constants import (
    ENTERPRISE_URN,
    GROUP_URN,
    MAX_MEMBER_CHANGES,
    SCHEMA_VIOLATION,
    STRING_MAX,
    USER_NAME_MAX,
    USER_URN,
    list_limit_exceeded,
)
from syncd.emulator.errors import ScimError


NAME_SUBS: Final = (
    "formatted",
    "familyName",
    "givenName",
    "middleName",
    "honorificPrefix",
    "honorificSuffix",
)
"""Sub-attributes of ``name``, in the order AWS returns them [DG:createuser]."""

USER_STRINGS: Final = (
    "displayName",
    "nickName",
    "profileUrl",
    "title",
    "userType",
    "preferredLanguage",
    "locale",
    "timezone",
)
"""Single-valued core string attributes besides ``userName`` and ``externalId`` [DG:limitations]."""

MULTI_SUBS: Final[Mapping[str, tuple[str, ...]]] = {
    "emails": ("value", "type", "primary"),
    "addresses": (
        "formatted",
        "streetAddress",
        "locality",
        "region",
        "postalCode",
        "country",
        "type",
        "primary",
    ),
    "phoneNumbers": ("value", "type", "primary"),
    "roles": ("value", "type", "primary"),
}
"""Multi-valued attributes (one value at most) and the sub-attributes each may carry [DG:createuser]."""

ENTERPRISE_STRINGS: Final = ("employeeNumber", "costCenter", "organization", "division", "department")
MANAGER_SUBS: Final = ("value", "$ref")
UNSUPPORTED_USER_ATTRIBUTES: Final = frozenset(
    {"password", "groups", "ims", "photos", "x509Certificates", "entitlements"}
)
"""Core attributes Identity Center refuses [DG:limitations]."""

USER_ORDER: Final = (
    "userName",
    "name",
    "displayName",
    *USER_STRINGS[1:],
    "active",
    "emails",
    "addresses",
    "phoneNumbers",
    "roles",
)
"""Key order of a returned user after ``id``, ``externalId``, ``meta``, ``schemas`` (AWS samples)."""

_READ_ONLY: Final = frozenset({"id", "meta"})
_USER_KEYS: Final = frozenset(
    {"schemas", "userName", "name", "externalId", "active", ENTERPRISE_URN, *USER_STRINGS, *MULTI_SUBS}
)
_GROUP_KEYS: Final = frozenset({"schemas", "displayName", "externalId", "members"})

USER_NAME_PATTERN: Final = r"[\p{L}\p{M}\p{S}\p{N}\p{P}]+"
STRING_PATTERN: Final = r"[\p{L}\p{M}\p{S}\p{N}\p{P}\t\n\r \u00A0]+"
_SPACES: Final = frozenset("\t\n\r \u00a0")


def schema_violation(reason: str) -> ScimError:
    """A 400 with AWS's generic schema text; ``reason`` is kept for the emulator's debug header."""
    return ScimError(400, SCHEMA_VIOLATION, reason=reason)


class _Violations:
    """Collects constraint failures and reports them the way AWS's validation layer does."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, path: str, constraint: str) -> None:
        self.items.append(f"Value at '{path}' failed to satisfy constraint: Member must {constraint}")

    def raise_if_any(self) -> None:
        if not self.items:
            return
        n = len(self.items)
        noun = "error" if n == 1 else "errors"
        raise ScimError(400, f"{n} validation {noun} detected: " + "; ".join(self.items))


def _allowed_char(char: str, allow_space: bool) -> bool:
    if allow_space and char in _SPACES:
        return True
    return unicodedata.category(char)[0] in "LMSNP"


def _check_string(
    value: Any, path: str, violations: _Violations, *, max_len: int = STRING_MAX, allow_space: bool = True
) -> str:
    if not isinstance(value, str):
        raise schema_violation(f"'{path}' must be a string")
    if len(value) < 1:
        violations.add(path, "have length greater than or equal to 1")
        return value
    if len(value) > max_len:
        violations.add(path, f"have length less than or equal to {max_len}")
    if not all(_allowed_char(c, allow_space) for c in value):
        pattern = STRING_PATTERN if allow_space else USER_NAME_PATTERN
        violations.add(path, f"satisfy regular expression pattern: {pattern}")
    return value


def _check_keys(obj: Mapping[str, Any], allowed: frozenset[str] | tuple[str, ...], where: str) -> None:
    for key in obj:
        if key not in allowed:
            raise schema_violation(f"attribute '{key}' is not supported in {where}")


def _object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise schema_violation(f"'{path}' must be an object")
    return {k: v for k, v in value.items() if v is not None}


def _check_schemas(body: Mapping[str, Any], core: str, allowed: frozenset[str]) -> list[str]:
    schemas = body.get("schemas")
    if not isinstance(schemas, list) or not all(isinstance(s, str) for s in schemas):
        raise schema_violation("'schemas' must be a list of schema URNs")
    if core not in schemas:
        raise schema_violation(f"'schemas' must contain {core}")
    for urn in schemas:
        if urn not in allowed:
            raise schema_violation(f"schema {urn} is not supported")
    return list(schemas)


def _multi_valued(name: str, value: Any, violations: _Violations) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise schema_violation(f"'{name}' must be a list")
    if len(value) > 1:
        # [UG:troubleshooting] "List attribute emails exceeds allowed limit of 1"
        raise ScimError(400, list_limit_exceeded(name))
    result: list[dict[str, Any]] = []
    for item in value:
        entry = _object(item, name)
        if "display" in entry:
            raise schema_violation(f"'{name}.display' is not supported")  # [DG:createuser]
        _check_keys(entry, MULTI_SUBS[name], name)
        clean: dict[str, Any] = {}
        for sub in MULTI_SUBS[name]:
            if sub not in entry:
                continue
            if sub == "primary":
                if not isinstance(entry[sub], bool):
                    raise schema_violation(f"'{name}.primary' must be a boolean")
                clean[sub] = entry[sub]
            else:
                clean[sub] = _check_string(entry[sub], f"{name}.{sub}", violations)
        if name != "addresses" and "value" not in clean:
            violations.add(f"{name}.value", "not be null")
        if name == "emails" and clean.get("primary") is not True:
            # [DG:createuser] the single email must be the primary one.
            raise schema_violation("the email must have 'primary': true")
        result.append(clean)
    return result


def _enterprise(value: Any, violations: _Violations) -> dict[str, Any]:
    data = _object(value, ENTERPRISE_URN)
    _check_keys(data, (*ENTERPRISE_STRINGS, "manager"), "the enterprise extension")
    clean: dict[str, Any] = {}
    for key in ENTERPRISE_STRINGS:
        if key in data:
            clean[key] = _check_string(data[key], f"{ENTERPRISE_URN}:{key}", violations)
    if "manager" in data:
        manager = _object(data["manager"], "manager")
        if "displayName" in manager:
            raise schema_violation("'manager.displayName' is not supported")  # [DG:limitations]
        _check_keys(manager, MANAGER_SUBS, "manager")
        checked = {k: _check_string(manager[k], f"manager.{k}", violations) for k in MANAGER_SUBS if k in manager}
        if checked:
            clean["manager"] = checked
    return clean


def normalise_user(body: Mapping[str, Any]) -> dict[str, Any]:
    """Check a user's attributes (no ``schemas`` check) and return them in storage form.

    Storage form: only supported keys, in AWS order, ``emails`` always present (AWS returns
    ``"emails": []``), ``active`` always present, and the enterprise data under its URN only
    when there is some.

    Raises:
        ScimError: 400 for a schema or constraint violation.
    """
    data = {k: v for k, v in body.items() if v is not None and k not in _READ_ONLY and k != "schemas"}
    for key in data:
        if key in UNSUPPORTED_USER_ATTRIBUTES:
            raise schema_violation(f"attribute '{key}' is not supported")
    _check_keys(data, _USER_KEYS, "a User")
    violations = _Violations()
    out: dict[str, Any] = {}

    if "userName" in data:
        out["userName"] = _check_string(
            data["userName"], "userName", violations, max_len=USER_NAME_MAX, allow_space=False
        )
    else:
        violations.add("userName", "not be null")

    name = _object(data.get("name", {}), "name")
    _check_keys(name, NAME_SUBS, "name")
    out["name"] = {sub: _check_string(name[sub], f"name.{sub}", violations) for sub in NAME_SUBS if sub in name}
    for required in ("givenName", "familyName"):
        if required not in name:
            violations.add(f"name.{required}", "not be null")

    if "displayName" not in data:
        violations.add("displayName", "not be null")
    for key in USER_STRINGS:
        if key in data:
            out[key] = _check_string(data[key], key, violations)
    if "externalId" in data:
        out["externalId"] = _check_string(data["externalId"], "externalId", violations)

    active = data.get("active", True)
    # Omitted on create: we store active=true. AWS's default is not documented (UNCONFIRMED;
    # the DG examples show many users with active false) [docs/references.md §A.4].
    if not isinstance(active, bool):
        raise schema_violation("'active' must be a boolean")
    out["active"] = active

    for multi in MULTI_SUBS:
        if multi in data:
            values = _multi_valued(multi, data[multi], violations)
            if values or multi == "emails":
                out[multi] = values
        elif multi == "emails":
            out[multi] = []

    if ENTERPRISE_URN in data:
        extension = _enterprise(data[ENTERPRISE_URN], violations)
        if extension:
            out[ENTERPRISE_URN] = extension

    violations.raise_if_any()
    order: tuple[str, ...] = ("externalId", *USER_ORDER, ENTERPRISE_URN)
    return {key: out[key] for key in order if key in out}


def validate_user(body: Any) -> dict[str, Any]:
    """Validate a POST/PUT /Users body and return the user's storage form (see `normalise_user`).

    Raises:
        ScimError: 400 for a schema or constraint violation.
    """
    if not isinstance(body, dict):
        raise schema_violation("the body must be a JSON object")
    schemas = _check_schemas(body, USER_URN, frozenset({USER_URN, ENTERPRISE_URN}))
    if body.get(ENTERPRISE_URN) and ENTERPRISE_URN not in schemas:
        raise schema_violation(f"enterprise data sent but 'schemas' lacks {ENTERPRISE_URN}")
    return normalise_user(body)


def parse_member_refs(value: Any, path: str = "members") -> list[str]:
    """Read a list of ``{"value": "<userId>"}`` (the member format AWS takes [DG:patchgroup]).

    Raises:
        ScimError: 400 if it is not a list of such objects.
    """
    if not isinstance(value, list):
        raise schema_violation(f"'{path}' must be a list")
    ids: list[str] = []
    for item in value:
        if not isinstance(item, dict) or set(item) != {"value"} or not isinstance(item["value"], str):
            raise schema_violation(f'each \'{path}\' entry must be exactly {{"value": "<userId>"}}')
        ids.append(item["value"])
    return ids


def validate_group(body: Any) -> tuple[dict[str, Any], list[str]]:
    """Validate a POST /Groups body; return its storage form and the member user ids.

    Raises:
        ScimError: 400 for a schema or constraint violation, or more than 100 members
            [DG:creategroup; slashdevops/idp-scim-sync#62 for the text].
    """
    if not isinstance(body, dict):
        raise schema_violation("the body must be a JSON object")
    _check_schemas(body, GROUP_URN, frozenset({GROUP_URN}))
    data = {k: v for k, v in body.items() if v is not None and k not in _READ_ONLY}
    _check_keys(data, _GROUP_KEYS, "a Group")
    violations = _Violations()
    out: dict[str, Any] = {}
    if "displayName" in data:
        out["displayName"] = _check_string(data["displayName"], "displayName", violations)
    else:
        violations.add("displayName", "not be null")
    if "externalId" in data:
        out["externalId"] = _check_string(data["externalId"], "externalId", violations)
    violations.raise_if_any()
    members = parse_member_refs(data.get("members", []))
    if len(members) > MAX_MEMBER_CHANGES:
        raise schema_violation(f"at most {MAX_MEMBER_CHANGES} members per request")
    return {key: out[key] for key in ("externalId", "displayName") if key in out}, members


def check_group_string(value: Any, path: str) -> str:
    """Check a group ``displayName`` / ``externalId`` value (1–1024, whitespace allowed).

    Raises:
        ScimError: 400 if it breaks a constraint.
    """
    violations = _Violations()
    result = _check_string(value, path, violations)
    violations.raise_if_any()
    return result
