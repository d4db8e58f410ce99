"""The sso-admin operations tests/fakes/aws_sso.py adds to moto, one rule each (sso-admin API reference)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws


if TYPE_CHECKING:
    from types_boto3_sso_admin.client import SSOAdminClient

GROUP = "12345678-1234-1234-1234-123456789012"
PROVIDER = "arn:aws:sso::aws:applicationProvider/custom"


@pytest.fixture
def sso(aws_env: None) -> Iterator[tuple[SSOAdminClient, str]]:
    """An sso-admin client on in-process moto, and its instance ARN."""
    with mock_aws():
        client = boto3.client("sso-admin", region_name="eu-west-1")
        yield client, client.list_instances()["Instances"][0]["InstanceArn"]


def code(caught: pytest.ExceptionInfo[ClientError]) -> str:
    return str(caught.value.response["Error"]["Code"])


def make_app(client: SSOAdminClient, instance: str, name: str = "Salesforce") -> str:
    return client.create_application(InstanceArn=instance, ApplicationProviderArn=PROVIDER, Name=name)["ApplicationArn"]


def make_set(client: SSOAdminClient, instance: str) -> str:
    return client.create_permission_set(InstanceArn=instance, Name="S3")["PermissionSet"]["PermissionSetArn"]


def assign(client: SSOAdminClient, instance: str, arn: str) -> None:
    """An account assignment of ``arn`` to GROUP in account 111111111111."""
    client.create_account_assignment(
        InstanceArn=instance,
        TargetId="111111111111",
        TargetType="AWS_ACCOUNT",
        PermissionSetArn=arn,
        PrincipalType="GROUP",
        PrincipalId=GROUP,
    )


def test_applications_are_listed_in_pages_of_max_results(sso: tuple[SSOAdminClient, str]) -> None:
    """ListApplications pages by MaxResults and NextToken, and refuses MaxResults over 100."""
    client, instance = sso
    for i in range(3):
        make_app(client, instance, f"app{i}")
    pages = client.get_paginator("list_applications").paginate(InstanceArn=instance, PaginationConfig={"PageSize": 2})
    assert [2, 1] == [len(p["Applications"]) for p in pages]
    with pytest.raises(ClientError) as caught:
        client.list_applications(InstanceArn=instance, MaxResults=101)
    assert "ValidationException" == code(caught)


def test_an_unknown_application_is_resource_not_found(sso: tuple[SSOAdminClient, str]) -> None:
    """Assigning to an application ARN that does not exist answers ResourceNotFoundException."""
    client, instance = sso
    missing = make_app(client, instance)[:-4] + "zzzz"
    with pytest.raises(ClientError) as caught:
        client.create_application_assignment(ApplicationArn=missing, PrincipalId=GROUP, PrincipalType="GROUP")
    assert "ResourceNotFoundException" == code(caught)


def test_a_malformed_principal_id_is_a_validation_error(sso: tuple[SSOAdminClient, str]) -> None:
    """PrincipalId must match the identity-store id pattern."""
    client, instance = sso
    with pytest.raises(ClientError) as caught:
        client.create_application_assignment(
            ApplicationArn=make_app(client, instance), PrincipalId="not-an-id", PrincipalType="GROUP"
        )
    assert "ValidationException" == code(caught)


def test_an_application_assignment_is_made_listed_and_deleted_once(sso: tuple[SSOAdminClient, str]) -> None:
    """Create lists the principal; creating it again conflicts; deleting a missing one is not found."""
    client, instance = sso
    app = make_app(client, instance)
    client.create_application_assignment(ApplicationArn=app, PrincipalId=GROUP, PrincipalType="GROUP")
    listed = client.list_application_assignments(ApplicationArn=app)["ApplicationAssignments"]
    assert [GROUP] == [a["PrincipalId"] for a in listed]
    with pytest.raises(ClientError) as caught:
        client.create_application_assignment(ApplicationArn=app, PrincipalId=GROUP, PrincipalType="GROUP")
    assert "ConflictException" == code(caught)
    client.delete_application_assignment(ApplicationArn=app, PrincipalId=GROUP, PrincipalType="GROUP")
    with pytest.raises(ClientError) as caught:
        client.delete_application_assignment(ApplicationArn=app, PrincipalId=GROUP, PrincipalType="GROUP")
    assert "ResourceNotFoundException" == code(caught)


def test_assignment_is_required_unless_configured_otherwise(sso: tuple[SSOAdminClient, str]) -> None:
    """GetApplicationAssignmentConfiguration says True for a new app, and what Put set after."""
    client, instance = sso
    app = make_app(client, instance)
    assert client.get_application_assignment_configuration(ApplicationArn=app)["AssignmentRequired"]
    client.put_application_assignment_configuration(ApplicationArn=app, AssignmentRequired=False)
    assert not client.get_application_assignment_configuration(ApplicationArn=app)["AssignmentRequired"]


def test_permission_set_tags_are_listed_added_and_removed(sso: tuple[SSOAdminClient, str]) -> None:
    """ListTagsForResource answers (moto itself fails it), and Tag/UntagResource change what it lists."""
    client, instance = sso
    arn = make_set(client, instance)
    client.tag_resource(InstanceArn=instance, ResourceArn=arn, Tags=[{"Key": "team", "Value": "data"}])
    assert [{"Key": "team", "Value": "data"}] == client.list_tags_for_resource(InstanceArn=instance, ResourceArn=arn)[
        "Tags"
    ]
    client.untag_resource(InstanceArn=instance, ResourceArn=arn, TagKeys=["team"])
    assert [] == client.list_tags_for_resource(InstanceArn=instance, ResourceArn=arn)["Tags"]


def test_a_permissions_boundary_is_put_read_and_absent_is_not_found(sso: tuple[SSOAdminClient, str]) -> None:
    """Get with no boundary is ResourceNotFoundException; Put then Get returns it."""
    client, instance = sso
    arn = make_set(client, instance)
    with pytest.raises(ClientError) as caught:
        client.get_permissions_boundary_for_permission_set(InstanceArn=instance, PermissionSetArn=arn)
    assert "ResourceNotFoundException" == code(caught)
    boundary = {"ManagedPolicyArn": "arn:aws:iam::aws:policy/PowerUserAccess"}
    client.put_permissions_boundary_to_permission_set(
        InstanceArn=instance, PermissionSetArn=arn, PermissionsBoundary=boundary
    )
    got = client.get_permissions_boundary_for_permission_set(InstanceArn=instance, PermissionSetArn=arn)
    assert boundary == got["PermissionsBoundary"]


def test_an_inline_policy_over_32768_characters_is_refused(sso: tuple[SSOAdminClient, str]) -> None:
    """PutInlinePolicyToPermissionSet takes 1 to 32,768 characters of JSON."""
    client, instance = sso
    arn = make_set(client, instance)
    with pytest.raises(ClientError) as caught:
        client.put_inline_policy_to_permission_set(
            InstanceArn=instance, PermissionSetArn=arn, InlinePolicy='{"a":"' + "x" * 32_800 + '"}'
        )
    assert "ValidationException" == code(caught)


def test_an_update_changes_only_the_fields_it_is_given(sso: tuple[SSOAdminClient, str]) -> None:
    """UpdatePermissionSet with a SessionDuration keeps the description (moto itself clears it)."""
    client, instance = sso
    arn = client.create_permission_set(InstanceArn=instance, Name="S3", Description="kept")["PermissionSet"][
        "PermissionSetArn"
    ]
    client.update_permission_set(InstanceArn=instance, PermissionSetArn=arn, SessionDuration="PT8H")
    described = client.describe_permission_set(InstanceArn=instance, PermissionSetArn=arn)["PermissionSet"]
    assert ("kept", "PT8H") == (described["Description"], described["SessionDuration"])


def test_an_edit_leaves_accounts_outdated_until_provisioned(sso: tuple[SSOAdminClient, str]) -> None:
    """An assignment provisions the set; an edit makes that account outdated; provisioning all brings it back."""
    client, instance = sso
    arn = make_set(client, instance)
    assign(client, instance, arn)
    old = "LATEST_PERMISSION_SET_NOT_PROVISIONED"

    def outdated() -> list[str]:
        listed = client.list_accounts_for_provisioned_permission_set(
            InstanceArn=instance, PermissionSetArn=arn, ProvisioningStatus=old
        )
        return listed["AccountIds"]

    assert [] == outdated()
    client.put_inline_policy_to_permission_set(InstanceArn=instance, PermissionSetArn=arn, InlinePolicy="{}")
    assert ["111111111111"] == outdated()
    status = client.provision_permission_set(
        InstanceArn=instance, PermissionSetArn=arn, TargetType="ALL_PROVISIONED_ACCOUNTS"
    )["PermissionSetProvisioningStatus"]
    assert "IN_PROGRESS" == status["Status"]
    described = client.describe_permission_set_provisioning_status(
        InstanceArn=instance, ProvisionPermissionSetRequestId=status["RequestId"]
    )
    assert "SUCCEEDED" == described["PermissionSetProvisioningStatus"]["Status"]
    assert [] == outdated()


def test_a_permission_set_still_assigned_cannot_be_deleted(sso: tuple[SSOAdminClient, str]) -> None:
    """DeletePermissionSet conflicts while account assignments still use the permission set."""
    client, instance = sso
    arn = make_set(client, instance)
    assign(client, instance, arn)
    with pytest.raises(ClientError) as caught:
        client.delete_permission_set(InstanceArn=instance, PermissionSetArn=arn)
    assert "ConflictException" == code(caught)
