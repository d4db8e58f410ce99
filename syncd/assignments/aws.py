"""The one boto3 seam: sso-admin and Organizations, for account assignments.

Everything here is synchronous (boto3 is); :mod:`syncd.assignments.manager` runs it in threads.
Clients come from a ``boto3.Session`` passed in, so credentials follow boto3's standard chain
(environment, profile, instance or task role) and ``AWS_ENDPOINT_URL`` is honoured by botocore
itself (tests pass a moto session, or point ``AWS_ENDPOINT_URL`` at ``moto_server``).

AWS facts this module relies on (``docs/references.md``):

* every list call is paginated, and Organizations may return an *empty page with a NextToken*:
  only botocore's paginators are used, and they follow NextToken to the end (§B.3);
* ``list_account_assignments`` needs both AccountId and PermissionSetArn (§B.1);
* ``list_permission_sets`` returns ARNs only: names come from ``describe_permission_set`` (§B.1);
* ``list_accounts_for_parent`` returns direct children only, so OUs are walked recursively (§B.3);
* Account ``Status`` is retired on 9 Sept 2026 in favour of ``State``; both are read (§B.3);
* throttling is retried by botocore's adaptive mode, which also slows the client down (a client-
  side token bucket) when AWS throttles; Identity Center's APIs share 20 TPS (§B.1 quotas).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from syncd.assignments.config import AwsConfig
from syncd.assignments.resolve import Account, Directory
from syncd.errors import AssignmentError


if TYPE_CHECKING:
    import boto3
    from types_boto3_organizations.client import OrganizationsClient
    from types_boto3_sso_admin.client import SSOAdminClient
    from types_boto3_sso_admin.type_defs import AccountAssignmentOperationStatusTypeDef


__all__ = ["BOTO_CONFIG", "AwsAccess", "Instance", "OperationStatus", "error_code"]

log = structlog.get_logger("syncd.assignments")

BOTO_CONFIG = Config(retries={"mode": "adaptive", "max_attempts": 10}, user_agent_extra="syncd")
"""Every client's botocore config: adaptive retries (throttling, 5xx, network), 10 attempts in all."""

DESCRIBE_WORKERS = 8
"""describe_permission_set calls in flight at once (one per permission set, once per run)."""


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ``ClientError`` (``ConflictException``...), else the class name."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code") or "ClientError")
    return type(exc).__name__


def error_text(exc: BaseException) -> str:
    """``Code: message`` of an AWS error, for people to read."""
    if isinstance(exc, ClientError):
        message = exc.response.get("Error", {}).get("Message") or ""
        return f"{error_code(exc)}: {message}" if message else error_code(exc)
    return f"{type(exc).__name__}: {exc}"


@dataclass(frozen=True, slots=True)
class Instance:
    """The Identity Center instance assignments are made in."""

    arn: str
    identity_store_id: str


@dataclass(frozen=True, slots=True)
class OperationStatus:
    """Where an asynchronous create or delete stands: IN_PROGRESS, SUCCEEDED or FAILED (§B.1)."""

    status: str
    request_id: str
    failure_reason: str = ""

    @classmethod
    def of(cls, data: AccountAssignmentOperationStatusTypeDef) -> OperationStatus:
        """From sso-admin's ``AccountAssignmentOperationStatus``."""
        return cls(
            status=str(data.get("Status", "")),
            request_id=str(data.get("RequestId", "")),
            failure_reason=str(data.get("FailureReason") or ""),
        )


class AwsAccess:
    """sso-admin and Organizations, as the assignment rules need them.

    Reads (:meth:`instance`, :meth:`directory`, :meth:`group_principals`) raise
    :class:`~syncd.errors.AssignmentError` saying what could not be read and why. The
    operations (:meth:`start_create` and friends) raise botocore's own errors, which the manager
    sorts into retries and failures.
    """

    def __init__(self, sso_admin: SSOAdminClient, organizations: OrganizationsClient, config: AwsConfig) -> None:
        """Wrap two clients; prefer :meth:`from_session`."""
        self.sso_admin = sso_admin
        self.organizations = organizations
        self.config = config
        self._instance: Instance | None = None

    @classmethod
    def from_session(cls, session: boto3.Session, config: AwsConfig) -> AwsAccess:
        """Build both clients from ``session`` with :data:`BOTO_CONFIG` and ``[aws] region``.

        Raises:
            AssignmentError: no region is configured anywhere.
        """
        try:
            sso_admin = session.client("sso-admin", region_name=config.region, config=BOTO_CONFIG)
            organizations = session.client("organizations", region_name=config.region, config=BOTO_CONFIG)
        except NoRegionError:
            raise AssignmentError(
                "no AWS region for Identity Center: set [aws] region (the instance's region) or AWS_REGION"
            ) from None
        return cls(sso_admin, organizations, config)

    # -- reads -----------------------------------------------------------------------------

    @contextmanager
    def _reading(self, what: str, permission: str) -> Iterator[None]:
        try:
            yield
        except NoCredentialsError:
            raise AssignmentError(
                f"cannot read {what}: no AWS credentials were found (environment, profile, instance or task role)"
            ) from None
        except ClientError as exc:
            hint = ""
            if error_code(exc) in {"AccessDeniedException", "AccessDenied", "UnauthorizedOperation"}:
                hint = f"; syncd's AWS credentials need {permission}"
            if error_code(exc) == "AWSOrganizationsNotInUseException":
                hint = "; account assignments need AWS Organizations"
            raise AssignmentError(f"cannot read {what} from AWS: {error_text(exc)}{hint}") from exc
        except BotoCoreError as exc:
            raise AssignmentError(f"cannot read {what} from AWS: {error_text(exc)}") from exc

    def instance(self) -> Instance:
        """The instance of ``[aws] instance_arn`` and ``identity_store_id``, found with list_instances if unset.

        Raises:
            AssignmentError: no instance, several and none chosen, or the configured one is not there.
        """
        if self._instance is not None:
            return self._instance
        arn, store = self.config.instance_arn, self.config.identity_store_id
        if arn is None or store is None:
            with self._reading("the Identity Center instances", "sso:ListInstances"):
                pages = self.sso_admin.get_paginator("list_instances").paginate()
                instances = [i for page in pages for i in page.get("Instances", [])]
            usable = [i for i in instances if i.get("Status", "ACTIVE") == "ACTIVE" and i.get("InstanceArn")]
            if arn is not None:
                usable = [i for i in usable if i.get("InstanceArn") == arn]
            elif store is not None:
                usable = [i for i in usable if i.get("IdentityStoreId") == store]
            if not usable:
                wanted = f" matching [aws] {'instance_arn' if arn else 'identity_store_id'}" if arn or store else ""
                raise AssignmentError(
                    f"no active IAM Identity Center instance{wanted} is visible to syncd's AWS credentials"
                    f" in region {self.sso_admin.meta.region_name}; check [aws] region and the account"
                )
            if len(usable) > 1:
                arns = ", ".join(sorted(str(i.get("InstanceArn")) for i in usable))
                raise AssignmentError(f"several Identity Center instances are visible ({arns}); set [aws] instance_arn")
            arn = str(usable[0]["InstanceArn"])
            store = str(usable[0].get("IdentityStoreId", ""))
        self._instance = Instance(arn, store)
        log.info("aws.instance", instance_arn=arn, identity_store_id=store)
        return self._instance

    def permission_sets(self) -> dict[str, str]:
        """Every permission set of the instance: ARN → name (list, then describe each, in parallel)."""
        instance_arn = self.instance().arn
        with self._reading("the permission sets", "sso:ListPermissionSets and sso:DescribePermissionSet"):
            pages = self.sso_admin.get_paginator("list_permission_sets").paginate(InstanceArn=instance_arn)
            arns = [arn for page in pages for arn in page.get("PermissionSets", [])]

            def name(arn: str) -> str:
                described = self.sso_admin.describe_permission_set(InstanceArn=instance_arn, PermissionSetArn=arn)
                return str(described.get("PermissionSet", {}).get("Name", ""))

            with ThreadPoolExecutor(max_workers=DESCRIBE_WORKERS, thread_name_prefix="syncd-ps") as pool:
                names = list(pool.map(name, arns))
        return dict(zip(arns, names, strict=True))

    def accounts(self) -> dict[str, Account]:
        """Every account of the organisation, in any state: id → :class:`Account`."""
        with self._reading("the organisation's accounts", "organizations:ListAccounts"):
            pages = self.organizations.get_paginator("list_accounts").paginate()
            found = [a for page in pages for a in page.get("Accounts", [])]
        return {
            str(a["Id"]): Account(
                str(a["Id"]),
                str(a.get("Name", "")),
                # State replaces Status (retired 9 Sept 2026, docs/references.md §B.3); read either.
                str(a.get("State") or a.get("Status") or "ACTIVE"),
            )
            for a in found
            if a.get("Id")
        }

    def accounts_below(self, parent_id: str) -> frozenset[str] | None:
        """Ids of every account below an OU or root, nested OUs included; None if it does not exist."""
        ids: set[str] = set()
        pending = [parent_id]
        accounts = self.organizations.get_paginator("list_accounts_for_parent")
        children = self.organizations.get_paginator("list_organizational_units_for_parent")
        with self._reading(
            f"the accounts below {parent_id}",
            "organizations:ListAccountsForParent and organizations:ListOrganizationalUnitsForParent",
        ):
            while pending:
                parent = pending.pop()
                try:
                    for page in accounts.paginate(ParentId=parent):
                        ids.update(str(a["Id"]) for a in page.get("Accounts", []) if a.get("Id"))
                except ClientError as exc:
                    if parent == parent_id and error_code(exc) == "ParentNotFoundException":
                        return None
                    raise
                for ou_page in children.paginate(ParentId=parent):
                    pending.extend(str(ou["Id"]) for ou in ou_page.get("OrganizationalUnits", []) if ou.get("Id"))
        return frozenset(ids)

    def directory(self, ous: Iterable[str]) -> Directory:
        """Everything the rules refer to, read once: permission sets, accounts, and the accounts below ``ous``."""
        instance = self.instance()
        permission_sets = self.permission_sets()
        accounts = self.accounts()
        below: dict[str, frozenset[str]] = {}
        for ou in dict.fromkeys(ous):
            found = self.accounts_below(ou)
            if found is not None:
                below[ou] = found
        log.info(
            "aws.directory",
            permission_sets=len(permission_sets),
            accounts=len(accounts),
            ous=len(below),
        )
        return Directory(instance.arn, permission_sets, accounts, below)

    def group_principals(self, account_id: str, permission_set_arn: str) -> frozenset[str]:
        """Ids of the groups holding ``permission_set_arn`` in ``account_id`` (users are left out).

        A permission set that no longer exists holds nothing (ResourceNotFoundException).
        """
        instance_arn = self.instance().arn
        paginator = self.sso_admin.get_paginator("list_account_assignments")
        with self._reading(f"the assignments of {permission_set_arn} in {account_id}", "sso:ListAccountAssignments"):
            try:
                pages = paginator.paginate(
                    InstanceArn=instance_arn, AccountId=account_id, PermissionSetArn=permission_set_arn
                )
                return frozenset(
                    str(a["PrincipalId"])
                    for page in pages
                    for a in page.get("AccountAssignments", [])
                    if a.get("PrincipalType") == "GROUP" and a.get("PrincipalId")
                )
            except ClientError as exc:
                # A permission set deleted since syncd recorded an assignment of it (assumed to
                # answer ResourceNotFoundException like the other sso-admin calls; unconfirmed).
                if error_code(exc) == "ResourceNotFoundException":
                    return frozenset()
                raise

    # -- operations (raise botocore errors) ------------------------------------------------

    def _assignment(self, account_id: str, permission_set_arn: str, principal_id: str) -> dict[str, Any]:
        """The six parameters create and delete both require (docs/references.md §B.1); only groups are assigned."""
        return {
            "InstanceArn": self.instance().arn,
            "TargetId": account_id,
            "TargetType": "AWS_ACCOUNT",
            "PermissionSetArn": permission_set_arn,
            "PrincipalType": "GROUP",
            "PrincipalId": principal_id,
        }

    def start_create(self, account_id: str, permission_set_arn: str, principal_id: str) -> OperationStatus:
        """Ask for a group's assignment; it completes asynchronously (poll :meth:`creation_status`)."""
        response = self.sso_admin.create_account_assignment(
            **self._assignment(account_id, permission_set_arn, principal_id)
        )
        return OperationStatus.of(response["AccountAssignmentCreationStatus"])

    def start_delete(self, account_id: str, permission_set_arn: str, principal_id: str) -> OperationStatus:
        """Ask for a group's assignment to go; it completes asynchronously (poll :meth:`deletion_status`)."""
        response = self.sso_admin.delete_account_assignment(
            **self._assignment(account_id, permission_set_arn, principal_id)
        )
        return OperationStatus.of(response["AccountAssignmentDeletionStatus"])

    def creation_status(self, request_id: str) -> OperationStatus:
        """Where a create stands (botocore has no waiter for it, docs/references.md §B.1)."""
        response = self.sso_admin.describe_account_assignment_creation_status(
            InstanceArn=self.instance().arn, AccountAssignmentCreationRequestId=request_id
        )
        return OperationStatus.of(response["AccountAssignmentCreationStatus"])

    def deletion_status(self, request_id: str) -> OperationStatus:
        """Where a delete stands."""
        response = self.sso_admin.describe_account_assignment_deletion_status(
            InstanceArn=self.instance().arn, AccountAssignmentDeletionRequestId=request_id
        )
        return OperationStatus.of(response["AccountAssignmentDeletionStatus"])
