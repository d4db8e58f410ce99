"""What moto's sso-admin lacks, added to it faithfully from the sso-admin API reference.

moto (5.2) implements permission sets and account assignments but has no application APIs at
all, answers ``ListTagsForResource`` with a 500, has no permissions-boundary calls and no
provisioning status, ignores ``TargetId`` when provisioning, never marks a permission set as
provisioned when an assignment is created, and overwrites every field on ``UpdatePermissionSet``.
:func:`install` adds or replaces those operations on moto's own backend and response classes,
so in-process ``mock_aws`` and ``ThreadedMotoServer`` both serve them. Shapes, errors and paging
follow the API reference (https://docs.aws.amazon.com/singlesignon/latest/APIReference/), as
botocore's service model for sso-admin 2020-07-20 spells them:

* applications: ``CreateApplication``, ``DescribeApplication``, ``ListApplications`` (MaxResults
  1–100, NextToken), ``DeleteApplication``; ``CreateApplicationAssignment``,
  ``DeleteApplicationAssignment``, ``DescribeApplicationAssignment``,
  ``ListApplicationAssignments`` (paged), ``Get``/``PutApplicationAssignmentConfiguration``
  (``AssignmentRequired``, true unless set otherwise). An unknown application is
  ResourceNotFoundException; a malformed ARN or principal id, or an out-of-range MaxResults, is
  ValidationException; assigning the same principal twice is ConflictException (unconfirmed for
  AWS; the strict answer);
* permission sets: tags (``ListTagsForResource``, ``TagResource``, ``UntagResource``), the
  permissions boundary (``Put``/``Get``/``DeletePermissionsBoundary…``; Get with none attached is
  ResourceNotFoundException, unconfirmed), an inline policy over 32,768 characters or not JSON is
  ValidationException, ``UpdatePermissionSet`` changes only the fields it is given;
* provisioning: every change to a permission set's contents makes the accounts it is provisioned
  to ``LATEST_PERMISSION_SET_NOT_PROVISIONED`` until ``ProvisionPermissionSet`` (``AWS_ACCOUNT``
  with a ``TargetId``, or ``ALL_PROVISIONED_ACCOUNTS``) reaches them; creating an account
  assignment provisions the permission set to that account; ``ProvisionPermissionSet`` answers
  ``IN_PROGRESS`` and ``DescribePermissionSetProvisioningStatus`` then ``SUCCEEDED``;
  ``ListAccountsForProvisionedPermissionSet`` and ``ListPermissionSetsProvisionedToAccount`` take
  the ``ProvisioningStatus`` filter;
* ``DeletePermissionSet`` of a permission set that account assignments still use is
  ConflictException (the console asks for them to be removed first; the API's answer is
  unconfirmed, this is the strict one).

:data:`CALLS` records every sso-admin action served, so tests can count AWS writes.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from moto.core.exceptions import JsonRESTError
from moto.core.utils import unix_time
from moto.moto_api._internal import mock_random as random
from moto.ssoadmin.models import SSOAdminBackend
from moto.ssoadmin.responses import SSOAdminResponse


__all__ = ["CALLS", "READ_PREFIXES", "install", "writes"]

APPLICATION_ARN = re.compile(
    r"arn:aws(-[a-z]{1,5}){0,3}:sso::\d{12}:application/(sso)?ins-[a-zA-Z0-9-.]{16}/apl-[a-zA-Z0-9]{16}"
)
PROVIDER_ARN = re.compile(r"arn:aws(-[a-z]{1,5}){0,3}:sso::aws:applicationProvider/[a-zA-Z0-9-/]+")
PRINCIPAL_ID = re.compile(
    r"([0-9a-f]{10}-|)[A-Fa-f0-9]{8}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{12}"
)
POLICY_MAX = 32_768
READ_PREFIXES = ("list_", "describe_", "get_")

CALLS: list[str] = []
"""Every sso-admin action served since the last ``CALLS.clear()``, in snake_case."""
_CALLS_LOCK = threading.Lock()


def writes() -> list[str]:
    """The actions in :data:`CALLS` that change something."""
    with _CALLS_LOCK:
        return [c for c in CALLS if not c.startswith(READ_PREFIXES)]


def _error(kind: str, message: str) -> JsonRESTError:
    return JsonRESTError(error_type=kind, message=message)


@dataclass
class _Application:
    arn: str
    provider_arn: str
    name: str
    instance_arn: str
    account: str
    description: str | None
    status: str
    portal_options: dict[str, Any] | None
    created: float = field(default_factory=unix_time)
    assignment_required: bool = True
    assignments: list[tuple[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "ApplicationArn": self.arn,
            "ApplicationProviderArn": self.provider_arn,
            "Name": self.name,
            "ApplicationAccount": self.account,
            "InstanceArn": self.instance_arn,
            "Status": self.status,
            "CreatedDate": self.created,
        }
        if self.description is not None:
            data["Description"] = self.description
        if self.portal_options is not None:
            data["PortalOptions"] = self.portal_options
        return data


@dataclass
class _Extra:
    """The state moto has no room for, per backend (so moto's reset clears it too)."""

    applications: dict[str, _Application] = field(default_factory=dict)
    boundaries: dict[str, dict[str, Any]] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    provisioned: dict[str, dict[str, int]] = field(default_factory=dict)
    requests: dict[str, dict[str, Any]] = field(default_factory=dict)


def _extra(backend: SSOAdminBackend) -> _Extra:
    extra = backend.__dict__.get("_syncd_extra")
    if extra is None:
        extra = _Extra()
        backend.__dict__["_syncd_extra"] = extra
    return extra


def _page(items: list[Any], params: dict[str, Any], default: int = 100) -> tuple[list[Any], str | None]:
    """One page of ``items`` per MaxResults (1–100) and an opaque NextToken (an offset)."""
    limit = params.get("MaxResults", default)
    if not isinstance(limit, int) or not 1 <= limit <= 100:
        raise _error("ValidationException", "1 validation error detected: MaxResults must be between 1 and 100")
    token = params.get("NextToken")
    try:
        start = int(token) if token else 0
    except ValueError:
        raise _error("ValidationException", "The NextToken is invalid") from None
    chunk = items[start : start + limit]
    more = start + limit < len(items)
    return chunk, str(start + limit) if more else None


def _check(pattern: re.Pattern[str], value: Any, name: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise _error(
            "ValidationException", f"1 validation error detected: Value at '{name}' failed to satisfy constraint"
        )
    return value


class _Ops:
    """The added operations, as methods of moto's SSOAdminResponse (``self`` is the response)."""

    # -- applications ----------------------------------------------------------------------

    @staticmethod
    def _app(self: SSOAdminResponse, arn: Any) -> _Application:
        _check(APPLICATION_ARN, arn, "applicationArn")
        app = _extra(self.ssoadmin_backend).applications.get(arn)
        if app is None:
            raise _error("ResourceNotFoundException", f"Application {arn} not found")
        return app

    @staticmethod
    def create_application(self: SSOAdminResponse) -> str:
        params = json.loads(self.body)
        instance_arn = params.get("InstanceArn", "")
        if not any(i.instance_arn == instance_arn for i in self.ssoadmin_backend.instances):
            raise _error("ResourceNotFoundException", f"Instance {instance_arn} not found")
        _check(PROVIDER_ARN, params.get("ApplicationProviderArn"), "applicationProviderArn")
        name = params.get("Name")
        if not isinstance(name, str) or not 1 <= len(name) <= 100:
            raise _error("ValidationException", "Name must be 1 to 100 characters")
        instance_id = instance_arn.rsplit("/", 1)[-1]
        arn = f"arn:aws:sso::{self.current_account}:application/{instance_id}/apl-{random.get_random_string(16)}"
        _extra(self.ssoadmin_backend).applications[arn] = _Application(
            arn=arn,
            provider_arn=params["ApplicationProviderArn"],
            name=name,
            instance_arn=instance_arn,
            account=self.current_account,
            description=params.get("Description"),
            status=params.get("Status", "ENABLED"),
            portal_options=params.get("PortalOptions"),
        )
        return json.dumps({"ApplicationArn": arn})

    @staticmethod
    def describe_application(self: SSOAdminResponse) -> str:
        return json.dumps(_Ops._app(self, json.loads(self.body).get("ApplicationArn")).to_json())

    @staticmethod
    def delete_application(self: SSOAdminResponse) -> str:
        app = _Ops._app(self, json.loads(self.body).get("ApplicationArn"))
        del _extra(self.ssoadmin_backend).applications[app.arn]
        return "{}"

    @staticmethod
    def list_applications(self: SSOAdminResponse) -> str:
        params = json.loads(self.body)
        wanted = params.get("InstanceArn")
        found = [a for a in _extra(self.ssoadmin_backend).applications.values() if a.instance_arn == wanted]
        chosen = params.get("Filter") or {}
        if chosen.get("ApplicationAccount"):
            found = [a for a in found if a.account == chosen["ApplicationAccount"]]
        if chosen.get("ApplicationProvider"):
            found = [a for a in found if a.provider_arn == chosen["ApplicationProvider"]]
        page, token = _page(found, params)
        body: dict[str, Any] = {"Applications": [a.to_json() for a in page]}
        if token:
            body["NextToken"] = token
        return json.dumps(body)

    @staticmethod
    def _principal(params: dict[str, Any]) -> tuple[str, str]:
        kind = params.get("PrincipalType")
        if kind not in ("USER", "GROUP"):
            raise _error("ValidationException", "PrincipalType must be USER or GROUP")
        return kind, _check(PRINCIPAL_ID, params.get("PrincipalId"), "principalId")

    @staticmethod
    def create_application_assignment(self: SSOAdminResponse) -> str:
        params = json.loads(self.body)
        app = _Ops._app(self, params.get("ApplicationArn"))
        principal = _Ops._principal(params)
        if principal in app.assignments:
            raise _error("ConflictException", "The principal is already assigned to this application")
        app.assignments.append(principal)
        return "{}"

    @staticmethod
    def delete_application_assignment(self: SSOAdminResponse) -> str:
        params = json.loads(self.body)
        app = _Ops._app(self, params.get("ApplicationArn"))
        principal = _Ops._principal(params)
        if principal not in app.assignments:
            raise _error("ResourceNotFoundException", "Application assignment not found")
        app.assignments.remove(principal)
        return "{}"

    @staticmethod
    def describe_application_assignment(self: SSOAdminResponse) -> str:
        params = json.loads(self.body)
        app = _Ops._app(self, params.get("ApplicationArn"))
        kind, principal_id = _Ops._principal(params)
        if (kind, principal_id) not in app.assignments:
            raise _error("ResourceNotFoundException", "Application assignment not found")
        return json.dumps({"ApplicationArn": app.arn, "PrincipalType": kind, "PrincipalId": principal_id})

    @staticmethod
    def list_application_assignments(self: SSOAdminResponse) -> str:
        params = json.loads(self.body)
        app = _Ops._app(self, params.get("ApplicationArn"))
        page, token = _page(app.assignments, params)
        body: dict[str, Any] = {
            "ApplicationAssignments": [
                {"ApplicationArn": app.arn, "PrincipalType": kind, "PrincipalId": pid} for kind, pid in page
            ]
        }
        if token:
            body["NextToken"] = token
        return json.dumps(body)

    @staticmethod
    def get_application_assignment_configuration(self: SSOAdminResponse) -> str:
        app = _Ops._app(self, json.loads(self.body).get("ApplicationArn"))
        return json.dumps({"AssignmentRequired": app.assignment_required})

    @staticmethod
    def put_application_assignment_configuration(self: SSOAdminResponse) -> str:
        params = json.loads(self.body)
        app = _Ops._app(self, params.get("ApplicationArn"))
        if not isinstance(params.get("AssignmentRequired"), bool):
            raise _error("ValidationException", "AssignmentRequired is required")
        app.assignment_required = params["AssignmentRequired"]
        return "{}"

    # -- permission sets: tags, boundary, inline policy, updates ---------------------------

    @staticmethod
    def _permission_set(self: SSOAdminResponse, params: dict[str, Any], key: str = "PermissionSetArn") -> Any:
        backend = self.ssoadmin_backend
        arn = params.get(key)
        for ps in backend.permission_sets:
            if ps.permission_set_arn == arn:
                return ps
        raise _error("ResourceNotFoundException", f"Could not find PermissionSet with id {str(arn).rsplit('/', 1)[-1]}")

    @staticmethod
    def list_tags_for_resource(self: SSOAdminResponse) -> str:
        params = json.loads(self.body)
        ps = _Ops._permission_set(self, params, "ResourceArn")
        page, token = _page(list(ps.tags or []), {"NextToken": params.get("NextToken"), "MaxResults": 50})
        body: dict[str, Any] = {"Tags": page}
        if token:
            body["NextToken"] = token
        return json.dumps(body)

    @staticmethod
    def tag_resource(self: SSOAdminResponse) -> str:
        params = json.loads(self.body)
        ps = _Ops._permission_set(self, params, "ResourceArn")
        tags = {t["Key"]: t["Value"] for t in ps.tags or []}
        tags.update({t["Key"]: t["Value"] for t in params.get("Tags", [])})
        if len(tags) > 50:
            raise _error("ServiceQuotaExceededException", "A resource can have at most 50 tags")
        ps.tags = [{"Key": k, "Value": v} for k, v in tags.items()]
        return "{}"

    @staticmethod
    def untag_resource(self: SSOAdminResponse) -> str:
        params = json.loads(self.body)
        ps = _Ops._permission_set(self, params, "ResourceArn")
        gone = set(params.get("TagKeys", []))
        ps.tags = [t for t in ps.tags or [] if t["Key"] not in gone]
        return "{}"

    @staticmethod
    def put_permissions_boundary_to_permission_set(self: SSOAdminResponse) -> str:
        params = json.loads(self.body)
        ps = _Ops._permission_set(self, params)
        boundary = params.get("PermissionsBoundary") or {}
        if bool(boundary.get("ManagedPolicyArn")) == bool(boundary.get("CustomerManagedPolicyReference")):
            raise _error(
                "ValidationException",
                "PermissionsBoundary takes either ManagedPolicyArn or CustomerManagedPolicyReference",
            )
        _extra(self.ssoadmin_backend).boundaries[ps.permission_set_arn] = boundary
        _changed(self.ssoadmin_backend, ps.permission_set_arn)
        return "{}"

    @staticmethod
    def get_permissions_boundary_for_permission_set(self: SSOAdminResponse) -> str:
        ps = _Ops._permission_set(self, json.loads(self.body))
        boundary = _extra(self.ssoadmin_backend).boundaries.get(ps.permission_set_arn)
        if boundary is None:
            raise _error("ResourceNotFoundException", "Permissions boundary not found for the permission set")
        return json.dumps({"PermissionsBoundary": boundary})

    @staticmethod
    def delete_permissions_boundary_from_permission_set(self: SSOAdminResponse) -> str:
        ps = _Ops._permission_set(self, json.loads(self.body))
        if _extra(self.ssoadmin_backend).boundaries.pop(ps.permission_set_arn, None) is None:
            raise _error("ResourceNotFoundException", "Permissions boundary not found for the permission set")
        _changed(self.ssoadmin_backend, ps.permission_set_arn)
        return "{}"

    @staticmethod
    def put_inline_policy_to_permission_set(self: SSOAdminResponse) -> str:
        params = json.loads(self.body)
        ps = _Ops._permission_set(self, params)
        policy = params.get("InlinePolicy")
        if not isinstance(policy, str) or not 1 <= len(policy) <= POLICY_MAX:
            raise _error("ValidationException", f"InlinePolicy must be 1 to {POLICY_MAX} characters")
        try:
            json.loads(policy)
        except ValueError:
            raise _error("ValidationException", "The policy is not valid JSON") from None
        ps.inline_policy = policy
        _changed(self.ssoadmin_backend, ps.permission_set_arn)
        return "{}"

    @staticmethod
    def update_permission_set(self: SSOAdminResponse) -> str:
        params = json.loads(self.body)
        ps = _Ops._permission_set(self, params)
        for key, attribute in (
            ("Description", "description"),
            ("SessionDuration", "session_duration"),
            ("RelayState", "relay_state"),
        ):
            if key in params:
                setattr(ps, attribute, params[key])
        _changed(self.ssoadmin_backend, ps.permission_set_arn)
        return "{}"

    @staticmethod
    def delete_permission_set(self: SSOAdminResponse) -> str:
        params = json.loads(self.body)
        ps = _Ops._permission_set(self, params)
        if any(a.permission_set_arn == ps.permission_set_arn for a in self.ssoadmin_backend.account_assignments):
            raise _error(
                "ConflictException", "The permission set is still assigned; delete its account assignments first"
            )
        self.ssoadmin_backend.delete_permission_set(params["InstanceArn"], ps.permission_set_arn)
        extra = _extra(self.ssoadmin_backend)
        extra.provisioned.pop(ps.permission_set_arn, None)
        extra.boundaries.pop(ps.permission_set_arn, None)
        return json.dumps({})

    # -- provisioning ----------------------------------------------------------------------

    @staticmethod
    def provision_permission_set(self: SSOAdminResponse) -> str:
        params = json.loads(self.body)
        ps = _Ops._permission_set(self, params)
        extra = _extra(self.ssoadmin_backend)
        on = extra.provisioned.setdefault(ps.permission_set_arn, {})
        kind = params.get("TargetType")
        if kind == "AWS_ACCOUNT":
            target = params.get("TargetId")
            if not isinstance(target, str) or not re.fullmatch(r"\d{12}", target):
                raise _error("ValidationException", "TargetId is required with TargetType AWS_ACCOUNT")
            accounts = [target]
        elif kind == "ALL_PROVISIONED_ACCOUNTS":
            accounts = sorted(on)
        else:
            raise _error("ValidationException", "TargetType must be AWS_ACCOUNT or ALL_PROVISIONED_ACCOUNTS")
        version = extra.versions.get(ps.permission_set_arn, 0)
        for account in accounts:
            on[account] = version
        request = {
            "Status": "IN_PROGRESS",
            "RequestId": str(uuid.uuid4()),
            "PermissionSetArn": ps.permission_set_arn,
            "CreatedDate": unix_time(),
        }
        if kind == "AWS_ACCOUNT":
            request["AccountId"] = accounts[0]
        extra.requests[request["RequestId"]] = request
        return json.dumps({"PermissionSetProvisioningStatus": request})

    @staticmethod
    def describe_permission_set_provisioning_status(self: SSOAdminResponse) -> str:
        params = json.loads(self.body)
        request = _extra(self.ssoadmin_backend).requests.get(params.get("ProvisionPermissionSetRequestId", ""))
        if request is None:
            raise _error("ResourceNotFoundException", "Provisioning request not found")
        request["Status"] = "SUCCEEDED"
        return json.dumps({"PermissionSetProvisioningStatus": request})

    @staticmethod
    def list_accounts_for_provisioned_permission_set(self: SSOAdminResponse) -> str:
        params = json.loads(self.body)
        ps = _Ops._permission_set(self, params)
        extra = _extra(self.ssoadmin_backend)
        version = extra.versions.get(ps.permission_set_arn, 0)
        accounts = sorted(
            account
            for account, at in extra.provisioned.get(ps.permission_set_arn, {}).items()
            if _status_matches(params.get("ProvisioningStatus"), at == version)
        )
        page, token = _page(accounts, params)
        body: dict[str, Any] = {"AccountIds": page}
        if token:
            body["NextToken"] = token
        return json.dumps(body)

    @staticmethod
    def list_permission_sets_provisioned_to_account(self: SSOAdminResponse) -> str:
        params = json.loads(self.body)
        account = params.get("AccountId")
        extra = _extra(self.ssoadmin_backend)
        arns = sorted(
            arn
            for arn, on in extra.provisioned.items()
            if account in on
            and _status_matches(params.get("ProvisioningStatus"), on[account] == extra.versions.get(arn, 0))
        )
        page, token = _page(arns, params)
        body: dict[str, Any] = {"PermissionSets": page}
        if token:
            body["NextToken"] = token
        return json.dumps(body)


def _status_matches(wanted: str | None, latest: bool) -> bool:
    if wanted == "LATEST_PERMISSION_SET_PROVISIONED":
        return latest
    if wanted == "LATEST_PERMISSION_SET_NOT_PROVISIONED":
        return not latest
    return True


def _changed(backend: SSOAdminBackend, arn: str) -> None:
    """A permission set's contents changed: the accounts it is on now run an older version."""
    extra = _extra(backend)
    extra.versions[arn] = extra.versions.get(arn, 0) + 1


def _bumping(original: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a moto backend method that changes a permission set's policies."""

    def changed(self: SSOAdminBackend, *args: Any, **kwargs: Any) -> Any:
        result = original(self, *args, **kwargs)
        arn = kwargs.get("permission_set_arn") or (args[1] if len(args) > 1 else None)
        if arn:
            _changed(self, arn)
        return result

    return changed


def _provisioning_create(original: Callable[..., Any]) -> Callable[..., Any]:
    """Creating an account assignment provisions the permission set to that account."""

    def create(self: SSOAdminBackend, *args: Any, **kwargs: Any) -> Any:
        result = original(self, *args, **kwargs)
        arn, account = kwargs["permission_set_arn"], kwargs["target_id"]
        extra = _extra(self)
        extra.provisioned.setdefault(arn, {})[account] = extra.versions.get(arn, 0)
        return result

    return create


_installed = False
_install_lock = threading.Lock()


def install() -> None:
    """Add the operations above to moto's sso-admin (idempotent; for the whole test session)."""
    global _installed
    with _install_lock:
        if _installed:
            return
        for name, member in vars(_Ops).items():
            if isinstance(member, staticmethod) and not name.startswith("_"):
                setattr(SSOAdminResponse, name, member.__func__)
        for name in (
            "attach_managed_policy_to_permission_set",
            "detach_managed_policy_from_permission_set",
            "attach_customer_managed_policy_reference_to_permission_set",
            "detach_customer_managed_policy_reference_from_permission_set",
            "delete_inline_policy_from_permission_set",
        ):
            setattr(SSOAdminBackend, name, _bumping(getattr(SSOAdminBackend, name)))
        SSOAdminBackend.create_account_assignment = _provisioning_create(  # type: ignore[method-assign]
            SSOAdminBackend.create_account_assignment
        )
        original_call = SSOAdminResponse.call_action

        def call_action(self: SSOAdminResponse) -> Any:
            from moto.core.utils import camelcase_to_underscores

            with _CALLS_LOCK:
                CALLS.append(camelcase_to_underscores(self._get_action()))
            return original_call(self)

        SSOAdminResponse.call_action = call_action  # type: ignore[method-assign]
        _installed = True
