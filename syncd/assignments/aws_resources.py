"""The boto3 seam for access as code: permission sets' contents, provisioning, applications.

Built on :class:`~syncd.assignments.aws.AwsAccess` (same clients, same instance). Reads raise
:class:`~syncd.errors.AssignmentError` saying what could not be read and which permission it
needs; writes raise botocore's errors, which the manager sorts into retries and failures.

AWS facts relied on (sso-admin API reference,
https://docs.aws.amazon.com/singlesignon/latest/APIReference/):

* a permission set's contents are read with DescribePermissionSet, ListManagedPoliciesIn…,
  ListCustomerManagedPolicyReferencesIn…, GetInlinePolicyFor…, GetPermissionsBoundaryFor… and
  ListTagsForResource; an absent SessionDuration is the default ``PT1H``; an absent inline policy
  is an empty string; an absent boundary is assumed to answer ResourceNotFoundException
  (unconfirmed; either way it reads as "none");
* ProvisionPermissionSet is asynchronous: DescribePermissionSetProvisioningStatus is polled;
  ListAccountsForProvisionedPermissionSet with ``LATEST_PERMISSION_SET_NOT_PROVISIONED`` names
  the accounts still on an older version;
* application assignments are synchronous (CreateApplicationAssignment returns nothing to poll).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from syncd.assignments.aws import AwsAccess, error_code
from syncd.assignments.permission_sets import Step
from syncd.model import PermissionSetSpec


if TYPE_CHECKING:
    from types_boto3_sso_admin.client import SSOAdminClient


__all__ = ["Application", "ProvisionStatus", "ResourcesApi"]

DEFAULT_SESSION = "PT1H"
"""The session duration of a permission set created without one."""


@dataclass(frozen=True, slots=True)
class ProvisionStatus:
    """Where a ProvisionPermissionSet request stands."""

    status: str
    request_id: str
    failure_reason: str | None = None

    @classmethod
    def of(cls, data: Any) -> ProvisionStatus:
        """From a ``PermissionSetProvisioningStatus`` structure."""
        return cls(str(data.get("Status", "")), str(data.get("RequestId", "")), data.get("FailureReason"))


@dataclass(frozen=True, slots=True)
class Application:
    """An Identity Center application: its ARN, name, and whether users need an assignment to use it."""

    arn: str
    name: str
    status: str = "ENABLED"


class ResourcesApi:
    """Permission sets and applications of the instance ``aws`` reaches."""

    def __init__(self, aws: AwsAccess) -> None:
        """Use ``aws``'s sso-admin client and instance."""
        self.aws = aws

    @property
    def sso(self) -> SSOAdminClient:
        """The sso-admin client."""
        return self.aws.sso_admin

    @property
    def instance_arn(self) -> str:
        """The instance's ARN."""
        return self.aws.instance().arn

    def _pages(self, operation: str, key: str, **params: Any) -> list[Any]:
        """Every item of ``key`` in the pages of ``operation`` (botocore's paginator follows NextToken)."""
        pages = self.sso.get_paginator(operation).paginate(**params)  # type: ignore[call-overload]
        return [item for page in pages for item in page.get(key, [])]

    # -- permission sets: reads ------------------------------------------------------------

    def read_permission_set(self, name: str, arn: str) -> PermissionSetSpec:
        """What AWS holds for permission set ``arn`` (named ``name``)."""
        ps = {"InstanceArn": self.instance_arn, "PermissionSetArn": arn}
        with self.aws._reading(
            f"permission set {name}",
            "sso:DescribePermissionSet, sso:ListManagedPoliciesInPermissionSet,"
            " sso:ListCustomerManagedPolicyReferencesInPermissionSet, sso:GetInlinePolicyForPermissionSet,"
            " sso:GetPermissionsBoundaryForPermissionSet and sso:ListTagsForResource",
        ):
            described = self.sso.describe_permission_set(**ps).get("PermissionSet", {})
            managed = self._pages("list_managed_policies_in_permission_set", "AttachedManagedPolicies", **ps)
            customer = self._pages(
                "list_customer_managed_policy_references_in_permission_set", "CustomerManagedPolicyReferences", **ps
            )
            inline = self.sso.get_inline_policy_for_permission_set(**ps).get("InlinePolicy") or None
            boundary: str | tuple[str, str] | None = None
            try:
                found = self.sso.get_permissions_boundary_for_permission_set(**ps).get("PermissionsBoundary", {})
            except ClientError as exc:
                if error_code(exc) != "ResourceNotFoundException":
                    raise
            else:
                if found.get("ManagedPolicyArn"):
                    boundary = str(found["ManagedPolicyArn"])
                elif found.get("CustomerManagedPolicyReference"):
                    ref = found["CustomerManagedPolicyReference"]
                    boundary = (str(ref["Name"]), str(ref.get("Path") or "/"))
            tags = self._pages("list_tags_for_resource", "Tags", InstanceArn=self.instance_arn, ResourceArn=arn)
        return PermissionSetSpec(
            name=name,
            description=described.get("Description") or None,
            session_duration=described.get("SessionDuration") or DEFAULT_SESSION,
            relay_state=described.get("RelayState") or None,
            managed_policies=frozenset(str(p["Arn"]) for p in managed if p.get("Arn")),
            customer_managed_policies=frozenset((str(p["Name"]), str(p.get("Path") or "/")) for p in customer),
            inline_policy=_canonical_policy(inline),
            permissions_boundary=boundary,
            tags=tuple(sorted((str(t["Key"]), str(t.get("Value", ""))) for t in tags)),
        )

    def provisioned_accounts(self, arn: str, *, outdated: bool = False) -> list[str]:
        """Accounts ``arn`` is provisioned to (``outdated``: only those not on its latest version)."""
        params: dict[str, Any] = {"InstanceArn": self.instance_arn, "PermissionSetArn": arn}
        if outdated:
            params["ProvisioningStatus"] = "LATEST_PERMISSION_SET_NOT_PROVISIONED"
        with self.aws._reading(f"the accounts {arn} is provisioned to", "sso:ListAccountsForProvisionedPermissionSet"):
            pages = self.sso.get_paginator("list_accounts_for_provisioned_permission_set").paginate(**params)
            return sorted({str(a) for page in pages for a in page.get("AccountIds", [])})

    def principals_using(self, arn: str, accounts: Iterable[str]) -> list[tuple[str, str, str]]:
        """Every (account, principal type, principal id) assigned ``arn`` in ``accounts``."""
        found: list[tuple[str, str, str]] = []
        paginator = self.sso.get_paginator("list_account_assignments")
        with self.aws._reading(f"the assignments of {arn}", "sso:ListAccountAssignments"):
            for account in accounts:
                pages = paginator.paginate(InstanceArn=self.instance_arn, AccountId=account, PermissionSetArn=arn)
                found.extend(
                    (account, str(a.get("PrincipalType", "")), str(a.get("PrincipalId", "")))
                    for page in pages
                    for a in page.get("AccountAssignments", [])
                )
        return found

    def provisioned_to(self, account_id: str) -> list[str]:
        """ARNs of the permission sets provisioned to ``account_id``."""
        with self.aws._reading(
            f"the permission sets of account {account_id}", "sso:ListPermissionSetsProvisionedToAccount"
        ):
            pages = self.sso.get_paginator("list_permission_sets_provisioned_to_account").paginate(
                InstanceArn=self.instance_arn, AccountId=account_id
            )
            return sorted({str(arn) for page in pages for arn in page.get("PermissionSets", [])})

    # -- permission sets: writes (botocore errors) -----------------------------------------

    def create_permission_set(self, spec: PermissionSetSpec) -> str:
        """Create an empty permission set with ``spec``'s name, fields and tags; its ARN."""
        params: dict[str, Any] = {
            "InstanceArn": self.instance_arn,
            "Name": spec.name,
            "SessionDuration": spec.session_duration,
            "Tags": [{"Key": k, "Value": v} for k, v in spec.tags],
        }
        if spec.description is not None:
            params["Description"] = spec.description
        if spec.relay_state is not None:
            params["RelayState"] = spec.relay_state
        response = self.sso.create_permission_set(**params)
        return str(response["PermissionSet"]["PermissionSetArn"])

    def run_step(self, arn: str, step: Step) -> None:
        """One call of :func:`syncd.assignments.permission_sets.steps` on ``arn``."""
        getattr(self.sso, step.operation)(InstanceArn=self.instance_arn, **{step.arn_key: arn}, **step.params)

    def provision(self, arn: str, account: str | None = None) -> ProvisionStatus:
        """Provision ``arn`` to ``account``, or to every account it is provisioned to (None)."""
        params: dict[str, Any] = {"InstanceArn": self.instance_arn, "PermissionSetArn": arn}
        if account is None:
            params["TargetType"] = "ALL_PROVISIONED_ACCOUNTS"
        else:
            params.update(TargetType="AWS_ACCOUNT", TargetId=account)
        response = self.sso.provision_permission_set(**params)
        return ProvisionStatus.of(response["PermissionSetProvisioningStatus"])

    def provisioning_status(self, request_id: str) -> ProvisionStatus:
        """Where a ProvisionPermissionSet request stands."""
        response = self.sso.describe_permission_set_provisioning_status(
            InstanceArn=self.instance_arn, ProvisionPermissionSetRequestId=request_id
        )
        return ProvisionStatus.of(response["PermissionSetProvisioningStatus"])

    def delete_permission_set(self, arn: str) -> None:
        """Delete ``arn``."""
        self.sso.delete_permission_set(InstanceArn=self.instance_arn, PermissionSetArn=arn)

    # -- applications ----------------------------------------------------------------------

    def applications(self) -> list[Application]:
        """Every application of the instance."""
        with self.aws._reading("the Identity Center applications", "sso:ListApplications"):
            pages = self.sso.get_paginator("list_applications").paginate(InstanceArn=self.instance_arn)
            return [
                Application(str(a["ApplicationArn"]), str(a.get("Name", "")), str(a.get("Status", "ENABLED")))
                for page in pages
                for a in page.get("Applications", [])
                if a.get("ApplicationArn")
            ]

    def assignment_required(self, arn: str) -> bool:
        """Whether users need an assignment to use application ``arn``."""
        with self.aws._reading(f"the assignment configuration of {arn}", "sso:GetApplicationAssignmentConfiguration"):
            response = self.sso.get_application_assignment_configuration(ApplicationArn=arn)
        return bool(response.get("AssignmentRequired", True))

    def application_groups(self, arn: str) -> frozenset[str]:
        """Ids of the groups assigned application ``arn`` (users are left out)."""
        with self.aws._reading(f"the assignments of application {arn}", "sso:ListApplicationAssignments"):
            pages = self.sso.get_paginator("list_application_assignments").paginate(ApplicationArn=arn)
            return frozenset(
                str(a["PrincipalId"])
                for page in pages
                for a in page.get("ApplicationAssignments", [])
                if a.get("PrincipalType") == "GROUP" and a.get("PrincipalId")
            )

    def assign_application(self, arn: str, group_id: str) -> None:
        """Give group ``group_id`` access to application ``arn``."""
        self.sso.create_application_assignment(ApplicationArn=arn, PrincipalId=group_id, PrincipalType="GROUP")

    def unassign_application(self, arn: str, group_id: str) -> None:
        """Take application ``arn`` away from group ``group_id``."""
        self.sso.delete_application_assignment(ApplicationArn=arn, PrincipalId=group_id, PrincipalType="GROUP")


def _canonical_policy(text: str | None) -> str | None:
    """An inline policy as compact, key-sorted JSON (how syncd sends it), so equal policies compare equal."""
    if not text:
        return None
    try:
        return json.dumps(json.loads(text), separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    except ValueError:
        return text
