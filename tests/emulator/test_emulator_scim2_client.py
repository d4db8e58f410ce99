"""Compatibility: scim2-client, configured the way syncd's target configures it, works against the emulator."""

from __future__ import annotations

import httpx2
import pytest
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_models import (
    Email,
    EnterpriseUser,
    Group,
    GroupMember,
    Name,
    PatchOp,
    PatchOperation,
    ResourceType,
    SCIMException,
    ScimPolicy,
    ScimProvider,
    ServiceProviderConfig,
    User,
)

from syncd.emulator import RunningEmulator


def test_scim2_client_create_and_conflict(emu: RunningEmulator, scim: httpx2.Client) -> None:
    """scim2-client creates a User[EnterpriseUser] and a Group, patches members, gets a 409 SCIMException."""
    provider = ScimProvider(
        models=[User, EnterpriseUser, Group],
        resource_types=[ResourceType.from_resource(User[EnterpriseUser]), ResourceType.from_resource(Group)],
        config=ServiceProviderConfig(patch={"supported": True}, filter={"supported": True}),
        policy=ScimPolicy(unknown=ScimPolicy.Unknown.ignore),
    )
    client = SyncSCIMClient(scim, provider=provider)
    user_model = client.get_resource_model("User")
    assert user_model is User[EnterpriseUser]

    user = User[EnterpriseUser](
        user_name="bjensen@example.com",
        display_name="Babs Jensen",
        name=Name(given_name="Barbara", family_name="Jensen"),
        emails=[Email(value="bjensen@example.com", type="work", primary=True)],
        external_id="701984",
        active=True,
    )
    user[EnterpriseUser] = EnterpriseUser(employee_number="701984", department="Tour Operations")
    created = client.create(user)
    assert created.id is not None
    assert created[EnterpriseUser].department == "Tour Operations"

    group = client.create(Group(display_name="Tour Guides", members=[GroupMember(value=created.id)]))
    assert group.id is not None
    assert group.members is None  # CreateGroup answers without members [DG:creategroup]
    assert emu.state.members(group.id) == {created.id}

    removal = PatchOp[Group](
        operations=[PatchOperation[Group](op="remove", path="members", value=[{"value": created.id}])]
    )
    assert client.modify(Group, group.id, removal) is None  # 204, no body [DG:patchgroup]
    assert emu.state.members(group.id) == set()

    duplicate = User[EnterpriseUser](
        user_name="BJensen@example.com", display_name="B", name=Name(given_name="B", family_name="J")
    )
    with pytest.raises(SCIMException) as raised:
        client.create(duplicate)
    assert raised.value.status == 409
