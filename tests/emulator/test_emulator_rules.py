"""Identity Center's documented SCIM rules, one test each, for the rules the other emulator
tests do not already name.

The emulator is only as good as its strictness: a softer fake once let a group PATCH that AWS
refuses pass every test (goauthentik/authentik#12321 shows AWS's answer). Where each rule of
the SCIM developer guide (docs.aws.amazon.com/singlesignon/latest/developerguide/) is tested:

========================================================================  =====================================
Rule                                                                      Test
========================================================================  =====================================
Bearer token only; anything else 401                                      test_emulator_users.py TestAuth
Error body: schema + schemas, detail, status string, request id, no       conftest.py ``aws_error`` (every
scimType                                                                  error test)
/Bulk, /Me, /.search, PUT /Groups, unknown paths: 404                     test_unsupported_endpoints_are_404
startIndex, attributes, excludedAttributes, sorting; count 1-100: 400     test_bad_parameters_are_400
No cursor: first page only; cursor pages: nextCursor, no totalResults     test_without_cursor_only_the_first_page,
                                                                          test_250_users_in_three_pages
Cursor alphabet ``[-a-zA-Z0-9+=/:_]``; filter changed mid-paging: 400     test_cursor_*, test_changed_filter_*
Filters: ``eq`` only, at most two clauses joined by ``and``               test_unsupported_filters_are_400
Filter attributes and combinations per resource                           test_unsupported_filters_are_400,
                                                                          test_id_and_member_checks_membership
Member filter naming an unknown user: 404                                 test_members_value_unknown_user_is_404
userName filter ignores case                                              test_user_name_filter_ignores_case
Required userName, displayName, name.givenName/familyName (POST, PUT)     test_required_attributes,
                                                                          test_put_requires_the_same_attributes
userName 1-128, no whitespace; other strings 1-1024                       test_user_name_constraints, ...
At most one email/address/phone/role; the email primary; no display       test_two_emails_are_refused,
                                                                          test_schema_violations
Unsupported user attributes (password, groups, ims, photos, ...)          test_unsupported_user_attributes
Roles carry only value, type, primary                                     test_roles_carry_only_value_type_primary
manager.displayName is not supported                                      test_manager_display_name_is_refused
userName, primary email, externalId unique (any case): 409                TestUniqueness
Re-creating a deleted user gives a new id                                 test_recreated_user_gets_a_new_id
PUT of an unknown user: 404 (UNCONFIRMED)                                 test_put_unknown_user_is_404
PatchUser: op mandatory, path for remove, value for add/replace           test_refused_operations (users)
PatchUser: remove of userName or active refused                           test_refused_operations (users)
PatchUser: several ops on active refused                                  test_two_operations_on_active_are_refused
PatchUser: several ops on userName refused                                test_two_operations_on_user_name_are_refused
PatchUser: only the modifiable attributes (not roles, not groups)         test_roles_cannot_be_patched
PatchUser: filters in paths are ``eq`` only                               test_path_filters_are_eq_only
PatchUser: 200 with the full user; "active": "false" as a string          test_active_as_string_false
PatchGroup: 204, no body                                                  test_100_member_adds_is_204
PatchGroup: only displayName, externalId, members                         test_refused_operations (groups)
PatchGroup: at most 100 membership changes, summed over operations        test_101_member_adds_is_400,
                                                                          test_limit_sums_over_operations
PatchGroup: no replace of members, no remove-all                          test_refused_operations (groups)
PatchGroup: path omitted only for add/replace of a single attribute       test_path_less_op_on_two_attributes_*,
                                                                          test_path_less_op_on_members_*
PatchGroup: one op per attribute, each with its path, is accepted         test_one_op_per_attribute_with_path
PatchGroup: remove without path is "Missing path in PATCH request"        test_group_remove_without_path_*
Groups: displayName required, unique (409), 1-1024, whitespace allowed    TestCreateAndRead,
                                                                          test_group_display_name_length
Groups: members are users only (no nested groups)                         test_group_cannot_be_a_member
CreateGroup: at most 100 members; answers without members                 test_create_with_101_members_is_400, ...
GET /Groups never returns members                                         test_get_and_list_show_empty_members
Identity store quota: 100,000 users and 100,000 groups                    test_user_quota, test_group_quota
20 TPS: 429 above it                                                      test_emulator_runtime.py TestThrottle
========================================================================  =====================================
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx2
import pytest

from syncd.emulator import EmulatorState, RunningEmulator, running_emulator
from tests.emulator.conftest import EMU_TOKEN, ENTERPRISE_URN, GROUP_URN, USER_URN


NO_PATH_TEXT = (
    'Current PATCH support allows omitting "path" attribute only for Add and Replace operations '
    "modifying a single attribute."
)
Body = Callable[..., dict[str, Any]]
ErrorCheck = Callable[[httpx2.Response, int], dict[str, Any]]
MakeUser = Callable[..., str]
MakeGroup = Callable[..., str]


class TestPatchGroupPaths:
    def test_path_less_op_on_two_attributes_is_400(
        self, scim: httpx2.Client, create_group: MakeGroup, patch_body: Body, aws_error: ErrorCheck
    ) -> None:
        """Rule PatchGroup "path omitted only for a single attribute": displayName + externalId without path is 400."""
        group_id = create_group("Old", externalId="e-1")
        operation = {"op": "replace", "value": {"id": group_id, "displayName": "New", "externalId": "e-2"}}
        assert aws_error(scim.patch(f"Groups/{group_id}", json=patch_body(operation)), 400)["detail"] == NO_PATH_TEXT
        group = scim.get(f"Groups/{group_id}").json()
        assert (group["displayName"], group["externalId"]) == ("Old", "e-1")

    def test_path_less_op_on_members_is_400(
        self,
        scim: httpx2.Client,
        create_group: MakeGroup,
        create_user: MakeUser,
        patch_body: Body,
        aws_error: ErrorCheck,
    ) -> None:
        """Rule PatchGroup "path omitted only for a single attribute": members without path is 400 with AWS's text."""
        group_id = create_group()
        operation = {"op": "add", "value": {"members": [{"value": create_user(1)}]}}
        assert aws_error(scim.patch(f"Groups/{group_id}", json=patch_body(operation)), 400)["detail"] == NO_PATH_TEXT

    def test_one_op_per_attribute_with_path(
        self, scim: httpx2.Client, create_group: MakeGroup, patch_body: Body
    ) -> None:
        """Rule PatchGroup paths: one replace per attribute, each with its path, renames and re-keys the group."""
        group_id = create_group("Old", externalId="e-1")
        body = patch_body(
            {"op": "replace", "path": "displayName", "value": "New"},
            {"op": "replace", "path": "externalId", "value": "e-2"},
        )
        assert scim.patch(f"Groups/{group_id}", json=body).status_code == 204
        group = scim.get(f"Groups/{group_id}").json()
        assert (group["id"], group["displayName"], group["externalId"]) == (group_id, "New", "e-2")

    def test_group_remove_without_path_is_missing_path(
        self, scim: httpx2.Client, create_group: MakeGroup, patch_body: Body, aws_error: ErrorCheck
    ) -> None:
        """Rule PatchGroup "remove needs a path": a remove without path is 400 "Missing path in PATCH request"."""
        group_id = create_group(externalId="e-1")
        response = scim.patch(f"Groups/{group_id}", json=patch_body({"op": "remove", "value": {"externalId": "e-1"}}))
        assert aws_error(response, 400)["detail"] == "Missing path in PATCH request"


class TestGroups:
    @pytest.mark.parametrize("name", ["", "x" * 1025])
    def test_group_display_name_length(self, scim: httpx2.Client, aws_error: ErrorCheck, name: str) -> None:
        """Rule Groups "displayName is 1-1024 characters": an empty or 1025-character name is 400."""
        aws_error(scim.post("Groups", json={"schemas": [GROUP_URN], "displayName": name}), 400)

    def test_group_cannot_be_a_member(
        self,
        emu: RunningEmulator,
        scim: httpx2.Client,
        create_group: MakeGroup,
        patch_body: Body,
        aws_error: ErrorCheck,
    ) -> None:
        """Rule Groups "no nested groups, members are users only": adding a group as a member is 400."""
        inner = create_group("Inner")
        outer = create_group("Outer")
        operation = {"op": "add", "path": "members", "value": [{"value": inner}]}
        aws_error(scim.patch(f"Groups/{outer}", json=patch_body(operation)), 400)
        assert emu.state.members(outer) == set()


class TestPatchUser:
    def test_two_operations_on_user_name_are_refused(
        self, scim: httpx2.Client, create_user: MakeUser, patch_body: Body, aws_error: ErrorCheck
    ) -> None:
        """Rule PatchUser "several ops on userName are rejected": two replaces of userName are 400, nothing changes."""
        user_id = create_user(1)
        body = patch_body(
            {"op": "replace", "path": "userName", "value": "a@example.com"},
            {"op": "replace", "path": "userName", "value": "b@example.com"},
        )
        aws_error(scim.patch(f"Users/{user_id}", json=body), 400)
        assert scim.get(f"Users/{user_id}").json()["userName"] == "user1@example.com"

    def test_roles_cannot_be_patched(
        self, scim: httpx2.Client, create_user: MakeUser, patch_body: Body, aws_error: ErrorCheck
    ) -> None:
        """Rule PatchUser "only the modifiable attributes": roles is not among them, so a PATCH of roles is 400."""
        user_id = create_user(1)
        operation = {"op": "add", "path": "roles", "value": [{"value": "admin", "primary": True}]}
        aws_error(scim.patch(f"Users/{user_id}", json=patch_body(operation)), 400)

    @pytest.mark.parametrize("path", ['emails[type ne "work"].value', 'emails[type co "wo"].value', "emails[type pr]"])
    def test_path_filters_are_eq_only(
        self, scim: httpx2.Client, create_user: MakeUser, patch_body: Body, aws_error: ErrorCheck, path: str
    ) -> None:
        """Rule PatchUser "filters in paths: eq only": ne, co and pr in a path filter are 400."""
        user_id = create_user(1)
        operation = {"op": "replace", "path": path, "value": "x@example.com"}
        aws_error(scim.patch(f"Users/{user_id}", json=patch_body(operation)), 400)
        assert scim.get(f"Users/{user_id}").json()["emails"][0]["value"] == "user1@example.com"


class TestUsers:
    @pytest.mark.parametrize("attribute", ["ims", "photos", "x509Certificates", "entitlements"])
    def test_unsupported_user_attributes(
        self, scim: httpx2.Client, user_body: Body, aws_error: ErrorCheck, attribute: str
    ) -> None:
        """Rule Users "not supported: password, ims, photos, x509Certificates, entitlements, groups": 400."""
        aws_error(scim.post("Users", json=user_body(1, **{attribute: [{"value": "x"}]})), 400)

    @pytest.mark.parametrize(
        ("role", "status"),
        [({"value": "admin", "type": "work", "primary": True}, 201), ({"value": "admin", "display": "Admin"}, 400)],
    )
    def test_roles_carry_only_value_type_primary(
        self, scim: httpx2.Client, user_body: Body, role: dict[str, Any], status: int
    ) -> None:
        """Rule Users "roles may only carry value, type and primary": those are accepted, display is 400."""
        assert scim.post("Users", json=user_body(1, roles=[role])).status_code == status

    def test_manager_display_name_is_refused(self, scim: httpx2.Client, user_body: Body, aws_error: ErrorCheck) -> None:
        """Rule Users enterprise extension "manager.displayName is not supported": 400."""
        body = user_body(
            1, schemas=[USER_URN, ENTERPRISE_URN], **{ENTERPRISE_URN: {"manager": {"value": "m", "displayName": "M"}}}
        )
        aws_error(scim.post("Users", json=body), 400)

    def test_recreated_user_gets_a_new_id(self, scim: httpx2.Client, create_user: MakeUser) -> None:
        """Rule Users "ids are the service's": deleting and re-creating a user with the same name gives a new id."""
        first = create_user(1)
        assert scim.delete(f"Users/{first}").status_code == 204
        assert create_user(1) != first

    def test_put_unknown_user_is_404(self, scim: httpx2.Client, user_body: Body, aws_error: ErrorCheck) -> None:
        """Rule PutUser on an unknown id (UNCONFIRMED, the strict choice): 404."""
        aws_error(scim.put("Users/00000000-0000-4000-8000-000000000000", json=user_body(1)), 404)


@contextmanager
def _client(state: EmulatorState) -> Iterator[httpx2.Client]:
    """A client of an emulator serving ``state``."""
    with (
        running_emulator(token=EMU_TOKEN, state=state) as emu,
        httpx2.Client(base_url=emu.url, headers={"Authorization": f"Bearer {EMU_TOKEN}"}) as scim,
    ):
        yield scim


class TestQuotas:
    def test_user_quota(self, user_body: Body) -> None:
        """Rule identity store quota "100,000 users" (raisable; lowered here): a create beyond it is 400."""
        with _client(EmulatorState(max_users=2)) as scim:
            codes = [scim.post("Users", json=user_body(n)).status_code for n in range(3)]
        assert codes == [201, 201, 400]
        assert EmulatorState().max_users == 100_000

    def test_group_quota(self) -> None:
        """Rule identity store quota "100,000 groups" (lowered here): a create beyond it is 400."""
        with _client(EmulatorState(max_groups=1)) as scim:
            codes = [
                scim.post("Groups", json={"schemas": [GROUP_URN], "displayName": f"g{n}"}).status_code for n in range(2)
            ]
        assert codes == [201, 400]
        assert EmulatorState().max_groups == 100_000
