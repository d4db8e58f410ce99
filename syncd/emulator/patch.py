"""PATCH semantics for users and groups [DG:patchuser, DG:patchgroup].

Both take ``{"schemas": [PatchOp URN], "Operations": [...]}``; each operation has a mandatory
``op`` (``add``, ``replace`` or ``remove``, any letter case, as AWS examples use both
``replace`` and ``Replace``), a ``path`` (mandatory for ``remove``: "Missing path in PATCH
request") and a ``value`` (mandatory for ``add`` / ``replace``). A request is all or nothing:
it is applied to a copy and validated before anything is stored.

Users: ``path`` may be ``attr``, ``attr.sub``, ``attr[sub eq "v"]``, ``attr[sub eq "v"].sub``, and
any of those behind the core or enterprise URN (``urn:…:enterprise:2.0:User:department``).
Without ``path`` the value is an object whose keys are applied one by one (the DG example sets
``nickName``, ``displayName`` and ``active`` this way). ``active`` may be the string "true" or
"false". ``remove`` of ``userName`` or ``active``, or more than one operation on either, is 400;
so is a path on ``roles``, which is not among PatchUser's modifiable attributes.
A value filter that matches nothing is 400 for add/replace (RFC 7644 §3.5.2.3 "noTarget") and a
no-op for remove. The result must still pass every POST rule (so removing a required attribute
is 400).

Groups: only ``displayName``, ``externalId`` and ``members``. ``add``/``remove`` on ``members``
with a list of ``{"value": userId}``; ``replace`` on members and remove-all (no value) are 400;
more than 100 membership changes summed over the operations is 400 with AWS's generic text
[slashdevops/idp-scim-sync#62]. ``remove`` with path ``members[value eq "<userId>"]`` is accepted
(UNCONFIRMED for AWS). Without ``path`` only ``add``/``replace`` of a *single* attribute,
``displayName`` or ``externalId`` (with a matching ``id``, which the DG example sends), is
allowed; anything else is 400 "Current PATCH support allows omitting "path" attribute only for
Add and Replace operations modifying a single attribute." (goauthentik/authentik#12321).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from syncd.emulator.constants import (
    ENTERPRISE_URN,
    MAX_MEMBER_CHANGES,
    MISSING_PATH,
    NO_PATH_ONLY_ADD_REPLACE,
    PATCH_OP_URN,
    USER_URN,
)
from syncd.emulator.errors import ScimError
from syncd.emulator.validation import (
    ENTERPRISE_STRINGS,
    MANAGER_SUBS,
    MULTI_SUBS,
    NAME_SUBS,
    USER_STRINGS,
    check_group_string,
    normalise_user,
    parse_member_refs,
    schema_violation,
)


Op = Literal["add", "replace", "remove"]

_PATH_RE: Final = re.compile(
    r"^(?P<attr>[A-Za-z$][A-Za-z0-9_$-]*)(?:\[(?P<filter>[^\]]*)\])?(?:\.(?P<sub>[A-Za-z$][A-Za-z0-9_$]*))?$"
)
_VALUE_FILTER_RE: Final = re.compile(
    r'^\s*(?P<attr>[A-Za-z$][A-Za-z0-9_$]*)\s+(?i:eq)\s+(?:"(?P<str>(?:[^"\\]|\\.)*)"|(?P<lit>true|false))\s*$'
)
_CORE_SIMPLE: Final = frozenset({"userName", "externalId", "active", *USER_STRINGS})
_CORE_COMPLEX: Final[Mapping[str, tuple[str, ...]]] = {"name": NAME_SUBS}
_EXT_SIMPLE: Final = frozenset(ENTERPRISE_STRINGS)
_EXT_COMPLEX: Final[Mapping[str, tuple[str, ...]]] = {"manager": MANAGER_SUBS}
_PATCHABLE_MULTI: Final = frozenset({"emails", "addresses", "phoneNumbers"})
"""Multi-valued attributes PatchUser may change: its list of modifiable attributes names these
three, not ``roles`` [DG:patchuser]."""


@dataclass(frozen=True, slots=True)
class PatchOperation:
    """One validated operation: ``op`` lower-cased, ``path`` and ``value`` as sent."""

    op: Op
    path: str | None
    value: Any
    has_value: bool


def parse_operations(body: Any) -> list[PatchOperation]:
    """Check a PatchOp envelope and return its operations.

    Raises:
        ScimError: 400 for a missing PatchOp schema, an empty or malformed ``Operations`` list,
            an unknown or missing ``op``, a ``remove`` without ``path`` [UG:scim-logging-using-cloudtrail],
            or an ``add``/``replace`` without ``value`` [DG:patchuser].
    """
    if not isinstance(body, dict):
        raise schema_violation("the body must be a JSON object")
    if set(body) - {"schemas", "Operations"}:
        raise schema_violation("a PatchOp has only 'schemas' and 'Operations'")
    schemas = body.get("schemas")
    if not isinstance(schemas, list) or schemas != [PATCH_OP_URN]:
        raise schema_violation(f"'schemas' must be [{PATCH_OP_URN!r}]")
    operations = body.get("Operations")
    if not isinstance(operations, list) or not operations:
        raise schema_violation("'Operations' must be a non-empty list")
    parsed: list[PatchOperation] = []
    for raw in operations:
        if not isinstance(raw, dict) or set(raw) - {"op", "path", "value"}:
            raise schema_violation("an operation has only 'op', 'path' and 'value'")
        op = raw.get("op")
        if not isinstance(op, str) or op.lower() not in ("add", "replace", "remove"):
            raise schema_violation("'op' is mandatory and must be add, replace or remove")
        name: Op = op.lower()  # type: ignore[assignment]
        path = raw.get("path")
        if path is not None and (not isinstance(path, str) or not path):
            raise schema_violation("'path' must be a non-empty string")
        has_value = raw.get("value") is not None
        if name == "remove" and path is None:
            raise ScimError(400, MISSING_PATH)
        if name != "remove" and not has_value:
            raise schema_violation(f"'value' is mandatory for {name}")
        parsed.append(PatchOperation(op=name, path=path, value=raw.get("value"), has_value=has_value))
    return parsed


# --- users -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Target:
    extension: bool
    attr: str
    value_filter: tuple[str, str | bool] | None
    sub: str | None


def _parse_value_filter(text: str) -> tuple[str, str | bool]:
    match = _VALUE_FILTER_RE.match(text)
    if match is None:
        raise schema_violation(f"unsupported value filter [{text}]: only 'sub eq \"value\"'")
    if match.group("lit") is not None:
        return match.group("attr"), match.group("lit") == "true"
    try:
        return match.group("attr"), json.loads('"' + match.group("str") + '"')
    except json.JSONDecodeError:
        raise schema_violation("bad escape in a value filter") from None


def _parse_user_path(path: str) -> _Target:
    extension = False
    rest = path
    if path.lower().startswith(ENTERPRISE_URN.lower()):
        rest = path[len(ENTERPRISE_URN) :]
        if rest == "":
            return _Target(extension=True, attr="", value_filter=None, sub=None)
        if not rest.startswith(":"):
            raise schema_violation(f"unknown path {path!r}")
        extension, rest = True, rest[1:]
    elif path.lower().startswith(USER_URN.lower() + ":"):
        rest = path[len(USER_URN) + 1 :]
    match = _PATH_RE.match(rest)
    if match is None:
        raise schema_violation(f"unknown path {path!r}")
    attr, raw_filter, sub = match.group("attr"), match.group("filter"), match.group("sub")
    value_filter = _parse_value_filter(raw_filter) if raw_filter is not None else None
    simple = _EXT_SIMPLE if extension else _CORE_SIMPLE
    complex_ = _EXT_COMPLEX if extension else _CORE_COMPLEX
    if attr in simple:
        if value_filter is not None or sub is not None:
            raise schema_violation(f"'{attr}' has no sub-attributes")
    elif attr in complex_:
        if value_filter is not None:
            raise schema_violation(f"'{attr}' is not multi-valued")
        if sub is not None and sub not in complex_[attr]:
            raise schema_violation(f"unknown sub-attribute '{attr}.{sub}'")
    elif not extension and attr in MULTI_SUBS:
        if attr not in _PATCHABLE_MULTI:
            raise schema_violation(f"attribute '{attr}' cannot be patched")  # [DG:patchuser]
        if sub is not None and sub not in MULTI_SUBS[attr]:
            raise schema_violation(f"unknown sub-attribute '{attr}.{sub}'")
        if value_filter is not None and value_filter[0] not in MULTI_SUBS[attr]:
            raise schema_violation(f"unknown sub-attribute '{attr}.{value_filter[0]}' in filter")
    else:
        raise schema_violation(f"attribute '{attr}' cannot be patched")
    return _Target(extension=extension, attr=attr, value_filter=value_filter, sub=sub)


def _coerce_active(value: Any) -> bool:
    # [DG:patchuser] the example sends "active": "false" (a string).
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise schema_violation("'active' must be true or false")


def _object_value(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise schema_violation(f"the value for '{what}' must be an object")
    return dict(value)


def _apply_multi(container: dict[str, Any], op: Op, target: _Target, value: Any) -> None:
    items: list[dict[str, Any]] = [dict(item) for item in container.get(target.attr) or []]
    if target.value_filter is None and target.sub is None:
        if op == "remove":
            items = []
        else:
            new = value if isinstance(value, list) else [value]
            items = items + new if op == "add" else list(new)
        container[target.attr] = items
        return
    if target.value_filter is None:
        matches = list(range(len(items)))
    else:
        key, wanted = target.value_filter
        matches = [i for i, item in enumerate(items) if item.get(key) == wanted]
    if not matches:
        if op == "remove":
            return
        raise schema_violation(f"no value of '{target.attr}' matches the path (noTarget)")
    for i in reversed(matches):
        if target.sub is not None:
            if op == "remove":
                items[i].pop(target.sub, None)
            else:
                items[i][target.sub] = value
        elif op == "remove":
            del items[i]
        else:
            items[i].update(_object_value(value, target.attr))
    container[target.attr] = items


def _apply_user_target(work: dict[str, Any], op: Op, target: _Target, value: Any) -> None:
    if target.extension and target.attr == "":
        if op == "remove":
            work.pop(ENTERPRISE_URN, None)
        else:
            work[ENTERPRISE_URN] = {**work.get(ENTERPRISE_URN, {}), **_object_value(value, ENTERPRISE_URN)}
        return
    container = copy.deepcopy(work.get(ENTERPRISE_URN, {})) if target.extension else work
    attr = target.attr
    if attr in (_EXT_SIMPLE if target.extension else _CORE_SIMPLE):
        if op == "remove":
            container.pop(attr, None)
        else:
            container[attr] = _coerce_active(value) if attr == "active" and not target.extension else value
    elif attr in (_EXT_COMPLEX if target.extension else _CORE_COMPLEX):
        current = dict(container.get(attr) or {})
        if target.sub is not None:
            if op == "remove":
                current.pop(target.sub, None)
            else:
                current[target.sub] = value
        elif op == "remove":
            current = {}
        else:
            # RFC 7644 §3.5.2.3: sub-attributes not given are left unchanged.
            current.update(_object_value(value, attr))
        if current:
            container[attr] = current
        else:
            container.pop(attr, None)
    else:
        _apply_multi(container, op, target, value)
    if target.extension:
        if container:
            work[ENTERPRISE_URN] = container
        else:
            work.pop(ENTERPRISE_URN, None)


def apply_user_patch(current: Mapping[str, Any], body: Any) -> dict[str, Any]:
    """Apply a PatchOp to a user's storage form and return the new, validated storage form.

    Raises:
        ScimError: 400 for a malformed request or a result that breaks a user rule.
    """
    operations = parse_operations(body)
    work = copy.deepcopy(dict(current))
    guarded = {"userName": 0, "active": 0}
    for operation in operations:
        steps: list[tuple[_Target, Any]] = []
        if operation.path is None:
            for key, value in _object_value(operation.value, "the operation").items():
                if key == ENTERPRISE_URN:
                    for ext_key, ext_value in _object_value(value, ENTERPRISE_URN).items():
                        steps.append((_parse_user_path(f"{ENTERPRISE_URN}:{ext_key}"), ext_value))
                else:
                    steps.append((_parse_user_path(key), value))
        else:
            steps.append((_parse_user_path(operation.path), operation.value))
        for target, value in steps:
            if not target.extension and target.attr in guarded:
                if operation.op == "remove":
                    raise schema_violation(f"'{target.attr}' cannot be removed")  # [DG:patchuser]
                guarded[target.attr] += 1
                if guarded[target.attr] > 1:
                    raise schema_violation(f"more than one operation on '{target.attr}'")  # [DG:patchuser]
            if operation.op != "remove" and value is None:
                raise schema_violation("'value' is mandatory for add and replace")
            _apply_user_target(work, operation.op, target, value)
    return normalise_user(work)


# --- groups ------------------------------------------------------------------------------


@dataclass(slots=True)
class GroupPatch:
    """A validated PatchGroup request, in operation order.

    Attributes:
        attributes: ``(name, value)`` pairs; value None removes (externalId only).
        members: ``(op, userId)`` pairs, op ``add`` or ``remove``.
    """

    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    members: list[tuple[Literal["add", "remove"], str]] = field(default_factory=list)


_MEMBER_FILTER_RE: Final = re.compile(r'^members\[\s*value\s+(?i:eq)\s+"(?P<id>[^"\\]*)"\s*\]$')


def parse_group_patch(group_id: str, body: Any) -> GroupPatch:
    """Validate a PatchGroup body [DG:patchgroup] and return what it asks for.

    Raises:
        ScimError: 400 for anything Identity Center refuses (see the module docstring).
    """
    result = GroupPatch()
    for operation in parse_operations(body):
        path = operation.path
        if path is None:
            value = _object_value(operation.value, "the operation")
            attributes = set(value) - {"id"}
            if len(attributes) != 1 or not attributes <= {"displayName", "externalId"}:
                # One attribute only (the DG example sends {id, displayName}); two, or members,
                # is AWS's 400 with this text (goauthentik/authentik#12321).
                raise ScimError(400, NO_PATH_ONLY_ADD_REPLACE, reason=f"attributes without path: {sorted(attributes)}")
            if "id" in value and value["id"] != group_id:
                raise schema_violation("'id' in the value does not match the group")
            for key in ("displayName", "externalId"):
                if key in value:
                    result.attributes.append((key, check_group_string(value[key], key)))
            continue
        if path in ("displayName", "externalId"):
            if operation.op == "remove":
                if path == "displayName":
                    raise schema_violation("'displayName' is required and cannot be removed")
                result.attributes.append((path, None))
            else:
                result.attributes.append((path, check_group_string(operation.value, path)))
            continue
        if path == "members":
            if operation.op == "replace":
                raise schema_violation("replacing members is not supported")  # [DG:patchgroup]
            if not operation.has_value:
                raise schema_violation("removing all members is not supported")  # [DG:patchgroup]
            ids = parse_member_refs(operation.value)
            if not ids:
                raise schema_violation("'members' value must list at least one member")
            result.members.extend((operation.op, user_id) for user_id in ids)
            continue
        match = _MEMBER_FILTER_RE.match(path)
        if match is not None:
            # UNCONFIRMED for AWS: the RFC filtered remove; ssosync / idp-scim-sync use path "members".
            if operation.op != "remove" or operation.has_value:
                raise schema_violation("a filtered members path is only accepted for remove without value")
            result.members.append(("remove", match.group("id")))
            continue
        raise schema_violation(f"path {path!r} is not supported on Groups (displayName, externalId, members)")
    if len(result.members) > MAX_MEMBER_CHANGES:
        raise schema_violation(f"more than {MAX_MEMBER_CHANGES} membership changes in one request")
    return result
