"""/Groups: creation, GET without members, PATCH limits and forms, membership filters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx2
import pytest

from syncd.emulator import RunningEmulator


GROUP_URN = "urn:ietf:params:scim:schemas:core:2.0:Group"
SCHEMA_TEXT = "Request is unparsable, syntactically incorrect, or violates schema."
Body = Callable[..., dict[str, Any]]
ErrorCheck = Callable[[httpx2.Response, int], dict[str, Any]]
MakeUser = Callable[..., str]
MakeGroup = Callable[..., str]


def add(*ids: str) -> dict[str, Any]:
    """A PATCH operation adding ``ids`` as members."""
    return {"op": "add", "path": "members", "value": [{"value": i} for i in ids]}


def remove(*ids: str) -> dict[str, Any]:
    """A PATCH operation removing ``ids`` from the members."""
    return {"op": "remove", "path": "members", "value": [{"value": i} for i in ids]}


@pytest.fixture
def user_ids(emu: RunningEmulator) -> list[str]:
    """120 users made by hand in the state (no HTTP), in creation order."""
    return [
        emu.state.add_user(
            user_name=f"member{i}@example.com", display_name=f"Member {i}", given_name="M", family_name=str(i)
        )["id"]
        for i in range(120)
    ]


class TestCreateAndRead:
    def test_create_answers_without_members(self, scim: httpx2.Client, create_user: MakeUser) -> None:
        """POST answers 201 with id, externalId, meta, schemas and displayName, and no members."""
        user_id = create_user(1)
        body = {
            "schemas": [GROUP_URN],
            "displayName": "Group Bar",
            "externalId": "g-1",
            "members": [{"value": user_id}],
        }
        response = scim.post("Groups", json=body)
        assert response.status_code == 201
        group = response.json()
        assert set(group) == {"id", "externalId", "meta", "schemas", "displayName"}
        assert group["meta"]["resourceType"] == "Group"
        assert group["schemas"] == [GROUP_URN]

    def test_get_and_list_show_empty_members(
        self, emu: RunningEmulator, scim: httpx2.Client, create_user: MakeUser, create_group: MakeGroup
    ) -> None:
        """GET /Groups/{id} and GET /Groups return "members": [] even for a group with members."""
        group_id = create_group("Group Foo", members=[create_user(1)])
        assert len(emu.state.members(group_id)) == 1
        assert scim.get(f"Groups/{group_id}").json()["members"] == []
        listed = scim.get("Groups").json()["Resources"]
        assert [g["members"] for g in listed] == [[]]

    def test_display_name_with_spaces(self, scim: httpx2.Client, create_group: MakeGroup) -> None:
        """A displayName may hold whitespace."""
        group_id = create_group("All  staff\tEU")
        assert scim.get(f"Groups/{group_id}").json()["displayName"] == "All  staff\tEU"

    def test_duplicate_display_name_is_409(
        self, scim: httpx2.Client, create_group: MakeGroup, aws_error: ErrorCheck
    ) -> None:
        """A second group with the same displayName is 409 with the AWS duplicate text."""
        create_group("Engineering")
        response = scim.post("Groups", json={"schemas": [GROUP_URN], "displayName": "Engineering"})
        assert aws_error(response, 409)["detail"] == "Refused to create a new, duplicate resource."

    def test_missing_display_name_is_400(self, scim: httpx2.Client, aws_error: ErrorCheck) -> None:
        """displayName is required."""
        aws_error(scim.post("Groups", json={"schemas": [GROUP_URN], "externalId": "x"}), 400)

    def test_create_with_100_members(self, emu: RunningEmulator, scim: httpx2.Client, user_ids: list[str]) -> None:
        """POST with 100 members is accepted and records them."""
        body = {
            "schemas": [GROUP_URN],
            "displayName": "Big",
            "members": [{"value": i} for i in user_ids[:100]],
        }
        response = scim.post("Groups", json=body)
        assert response.status_code == 201
        assert emu.state.members(response.json()["id"]) == set(user_ids[:100])

    def test_create_with_101_members_is_400(
        self, scim: httpx2.Client, user_ids: list[str], aws_error: ErrorCheck
    ) -> None:
        """POST with 101 members is 400 with AWS's generic schema text."""
        body = {
            "schemas": [GROUP_URN],
            "displayName": "Big",
            "members": [{"value": i} for i in user_ids[:101]],
        }
        assert aws_error(scim.post("Groups", json=body), 400)["detail"] == SCHEMA_TEXT

    def test_get_unknown_group_is_404(self, scim: httpx2.Client, aws_error: ErrorCheck) -> None:
        """GET of an unknown group id is 404."""
        aws_error(scim.get("Groups/00000000-0000-4000-8000-000000000000"), 404)

    def test_put_group_is_404(self, scim: httpx2.Client, create_group: MakeGroup, aws_error: ErrorCheck) -> None:
        """There is no documented PutGroup, so PUT /Groups/{id} is 404."""
        group_id = create_group()
        aws_error(scim.put(f"Groups/{group_id}", json={"schemas": [GROUP_URN], "displayName": "X"}), 404)


class TestPatch:
    def test_100_member_adds_is_204(
        self,
        emu: RunningEmulator,
        scim: httpx2.Client,
        create_group: MakeGroup,
        patch_body: Body,
        user_ids: list[str],
    ) -> None:
        """PATCH adding 100 members answers 204 with no body and records them."""
        group_id = create_group()
        response = scim.patch(f"Groups/{group_id}", json=patch_body(add(*user_ids[:100])))
        assert response.status_code == 204
        assert response.content == b""
        assert emu.state.members(group_id) == set(user_ids[:100])

    def test_101_member_adds_is_400(
        self,
        emu: RunningEmulator,
        scim: httpx2.Client,
        create_group: MakeGroup,
        patch_body: Body,
        user_ids: list[str],
        aws_error: ErrorCheck,
    ) -> None:
        """PATCH adding 101 members is 400 with the generic schema text, and nothing is added."""
        group_id = create_group()
        response = scim.patch(f"Groups/{group_id}", json=patch_body(add(*user_ids[:101])))
        assert aws_error(response, 400)["detail"] == SCHEMA_TEXT
        assert emu.state.members(group_id) == set()

    def test_limit_sums_over_operations(
        self,
        scim: httpx2.Client,
        create_group: MakeGroup,
        patch_body: Body,
        user_ids: list[str],
        aws_error: ErrorCheck,
    ) -> None:
        """60 adds plus 41 removes in one request exceed the 100-change limit."""
        group_id = create_group(members=user_ids[60:100])
        body = patch_body(add(*user_ids[:60]), remove(*user_ids[60:101]))
        aws_error(scim.patch(f"Groups/{group_id}", json=body), 400)

    def test_add_and_remove(
        self,
        emu: RunningEmulator,
        scim: httpx2.Client,
        create_group: MakeGroup,
        patch_body: Body,
        user_ids: list[str],
    ) -> None:
        """add and remove on path members change membership; re-adding or removing a non-member is a no-op."""
        group_id = create_group(members=user_ids[:3])
        body = patch_body(add(user_ids[3], user_ids[0]), remove(user_ids[1], user_ids[50]))
        assert scim.patch(f"Groups/{group_id}", json=body).status_code == 204
        assert emu.state.members(group_id) == {user_ids[0], user_ids[2], user_ids[3]}

    def test_filtered_remove(
        self,
        emu: RunningEmulator,
        scim: httpx2.Client,
        create_group: MakeGroup,
        patch_body: Body,
        user_ids: list[str],
    ) -> None:
        """remove with path members[value eq "id"] takes that member out (accepted; UNCONFIRMED for AWS)."""
        group_id = create_group(members=user_ids[:2])
        body = patch_body({"op": "remove", "path": f'members[value eq "{user_ids[0]}"]'})
        assert scim.patch(f"Groups/{group_id}", json=body).status_code == 204
        assert emu.state.members(group_id) == {user_ids[1]}

    @pytest.mark.parametrize(
        "operation",
        [
            {"op": "replace", "path": "members", "value": [{"value": "x"}]},
            {"op": "remove", "path": "members"},
            {"op": "add", "value": {"members": [{"value": "x"}]}},
            {"op": "remove", "value": {"displayName": "x"}},
            {"op": "remove", "path": "displayName"},
            {"op": "add", "path": "description", "value": "x"},
            {"op": "add", "path": "members", "value": [{"value": "x", "display": "X"}]},
        ],
    )
    def test_refused_operations(
        self,
        emu: RunningEmulator,
        scim: httpx2.Client,
        create_group: MakeGroup,
        patch_body: Body,
        user_ids: list[str],
        aws_error: ErrorCheck,
        operation: dict[str, Any],
    ) -> None:
        """replace of members, remove-all, members without path, other attributes and extra keys are 400."""
        group_id = create_group(members=user_ids[:2])
        aws_error(scim.patch(f"Groups/{group_id}", json=patch_body(operation)), 400)
        assert emu.state.members(group_id) == set(user_ids[:2])

    def test_unknown_member_is_400(
        self, scim: httpx2.Client, create_group: MakeGroup, patch_body: Body, aws_error: ErrorCheck
    ) -> None:
        """Adding a user id that does not exist is 400 (our choice; UNCONFIRMED for AWS)."""
        group_id = create_group()
        aws_error(scim.patch(f"Groups/{group_id}", json=patch_body(add("no-such-user"))), 400)

    def test_replace_without_path_renames(self, scim: httpx2.Client, create_group: MakeGroup, patch_body: Body) -> None:
        """replace without path and an {id, displayName} value renames the group (DG example)."""
        group_id = create_group("Old", externalId="e-1")
        operation = {"op": "replace", "value": {"id": group_id, "displayName": "New"}}
        assert scim.patch(f"Groups/{group_id}", json=patch_body(operation)).status_code == 204
        group = scim.get(f"Groups/{group_id}").json()
        assert (group["displayName"], group["externalId"]) == ("New", "e-1")

    def test_rename_onto_existing_name_is_409(
        self, scim: httpx2.Client, create_group: MakeGroup, patch_body: Body, aws_error: ErrorCheck
    ) -> None:
        """A PATCH renaming a group to another group's displayName is 409."""
        create_group("Taken")
        group_id = create_group("Mine")
        body = patch_body({"op": "replace", "path": "displayName", "value": "Taken"})
        aws_error(scim.patch(f"Groups/{group_id}", json=body), 409)


class TestMembershipFilters:
    def test_users_groups_value_lists_members(
        self, scim: httpx2.Client, create_group: MakeGroup, user_ids: list[str]
    ) -> None:
        """GET /Users?filter=groups.value eq "<groupId>" lists exactly the group's members."""
        group_id = create_group(members=user_ids[5:8])
        create_group("Other", members=user_ids[:2])
        response = scim.get("Users", params={"filter": f'groups.value eq "{group_id}"'})
        assert response.status_code == 200
        assert [u["id"] for u in response.json()["Resources"]] == user_ids[5:8]

    def test_groups_members_value_lists_groups(
        self, scim: httpx2.Client, create_group: MakeGroup, user_ids: list[str]
    ) -> None:
        """GET /Groups?filter=members.value eq "<userId>" lists the groups holding that user."""
        first = create_group("A", members=user_ids[:2])
        create_group("B", members=user_ids[2:3])
        third = create_group("C", members=user_ids[:1])
        response = scim.get("Groups", params={"filter": f'members.value eq "{user_ids[0]}"'})
        assert [g["id"] for g in response.json()["Resources"]] == [first, third]

    def test_members_value_unknown_user_is_404(self, scim: httpx2.Client, aws_error: ErrorCheck) -> None:
        """A member filter naming a user that does not exist is 404, not an empty list."""
        response = scim.get("Groups", params={"filter": 'members.value eq "no-such-user"'})
        aws_error(response, 404)

    @pytest.mark.parametrize("template", ['id eq "{g}" and members eq "{u}"', 'member eq "{u}" and id eq "{g}"'])
    def test_id_and_member_checks_membership(
        self, scim: httpx2.Client, create_group: MakeGroup, user_ids: list[str], template: str
    ) -> None:
        """id + member(s), either order, returns the group if the user is in it and nothing otherwise."""
        group_id = create_group(members=user_ids[:1])
        hit = scim.get("Groups", params={"filter": template.format(g=group_id, u=user_ids[0])}).json()
        miss = scim.get("Groups", params={"filter": template.format(g=group_id, u=user_ids[1])}).json()
        assert [g["id"] for g in hit["Resources"]] == [group_id]
        assert miss["Resources"] == []

    def test_deleting_a_user_removes_memberships(
        self,
        emu: RunningEmulator,
        scim: httpx2.Client,
        create_group: MakeGroup,
        user_ids: list[str],
    ) -> None:
        """DELETE of a user takes it out of every group it was in."""
        first = create_group("A", members=user_ids[:2])
        second = create_group("B", members=user_ids[:1])
        assert scim.delete(f"Users/{user_ids[0]}").status_code == 204
        assert emu.state.members(first) == {user_ids[1]}
        assert emu.state.members(second) == set()
        listed = scim.get("Users", params={"filter": f'groups.value eq "{first}"'}).json()["Resources"]
        assert [u["id"] for u in listed] == [user_ids[1]]

    def test_deleting_a_group(self, emu: RunningEmulator, scim: httpx2.Client, create_group: MakeGroup) -> None:
        """DELETE of a group answers 204, and the group is gone."""
        group_id = create_group()
        assert scim.delete(f"Groups/{group_id}").status_code == 204
        assert scim.get(f"Groups/{group_id}").status_code == 404
        assert emu.state.groups == []
