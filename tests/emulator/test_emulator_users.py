"""/Users: auth, creation rules, uniqueness, PUT, PATCH and DELETE, over real HTTP."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx2
import pytest

from syncd.emulator import RunningEmulator


ENTERPRISE_URN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
DUPLICATE = "Refused to create a new, duplicate resource."
Body = Callable[..., dict[str, Any]]
ErrorCheck = Callable[[httpx2.Response, int], dict[str, Any]]


class TestAuth:
    def test_missing_token_is_401(self, emu: RunningEmulator, aws_error: ErrorCheck) -> None:
        """A request without an Authorization header gets 401 with the AWS error body."""
        response = httpx2.get(emu.url + "Users")
        aws_error(response, 401)

    @pytest.mark.parametrize("header", ["Bearer wrong", "Basic ZW11bGF0b3ItdGVzdC10b2tlbg==", "emulator-test-token"])
    def test_wrong_token_is_401(self, emu: RunningEmulator, aws_error: ErrorCheck, header: str) -> None:
        """A wrong token, another scheme, or a bare token is refused with 401."""
        response = httpx2.get(emu.url + "Users", headers={"Authorization": header})
        aws_error(response, 401)

    def test_right_token_is_accepted(self, scim: httpx2.Client) -> None:
        """The configured bearer token lists users."""
        assert scim.get("Users").status_code == 200


class TestCreate:
    def test_created_user_shape(self, scim: httpx2.Client, user_body: Body) -> None:
        """POST answers 201 with a UUID id, meta timestamps, the core schema only, and active true."""
        response = scim.post("Users", json=user_body(1))
        assert response.status_code == 201
        user = response.json()
        assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", user["id"])
        assert user["meta"]["resourceType"] == "User"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", user["meta"]["created"])
        assert user["meta"]["created"] == user["meta"]["lastModified"]
        assert user["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:User"]
        assert user["active"] is True
        assert user["externalId"] == "ext-1"
        assert response.headers["content-type"] == "application/json"
        assert response.headers["x-amzn-RequestId"]

    def test_enterprise_urn_only_with_extension_data(self, scim: httpx2.Client, user_body: Body) -> None:
        """The enterprise URN appears in schemas, and the data comes back, when extension data is sent."""
        body = user_body(
            2,
            schemas=["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE_URN],
            **{ENTERPRISE_URN: {"department": "Tour Operations", "manager": {"value": "m-1"}}},
        )
        user = scim.post("Users", json=body).json()
        assert ENTERPRISE_URN in user["schemas"]
        assert user[ENTERPRISE_URN] == {"department": "Tour Operations", "manager": {"value": "m-1"}}

    def test_user_without_email_lists_empty_emails(self, scim: httpx2.Client, user_body: Body) -> None:
        """A user created without emails comes back with "emails": [] as AWS returns it."""
        body = user_body(3)
        del body["emails"]
        assert scim.post("Users", json=body).json()["emails"] == []

    @pytest.mark.parametrize(
        "change",
        [
            {"userName": None},
            {"userName": ""},
            {"displayName": None},
            {"displayName": ""},
            {"name": {"familyName": "Jensen"}},
            {"name": {"givenName": "Barbara"}},
            {"name": {"givenName": "", "familyName": "Jensen"}},
        ],
    )
    def test_required_attributes(
        self, scim: httpx2.Client, user_body: Body, aws_error: ErrorCheck, change: dict[str, Any]
    ) -> None:
        """userName, displayName, name.givenName and name.familyName are required; empty counts as missing."""
        body = {k: v for k, v in {**user_body(4), **change}.items() if v is not None}
        detail = aws_error(scim.post("Users", json=body), 400)["detail"]
        assert "validation error" in detail

    def test_missing_attribute_error_names_it(
        self, scim: httpx2.Client, user_body: Body, aws_error: ErrorCheck
    ) -> None:
        """The 400 for a missing name part names the attribute, in AWS's validation wording."""
        body = user_body(5, name={"givenName": "Barbara"})
        detail = aws_error(scim.post("Users", json=body), 400)["detail"]
        assert detail.startswith("1 validation error detected: Value at 'name.familyName'")

    @pytest.mark.parametrize("user_name", ["has space", "a" * 129, "zero\u200bwidth", "tab\tname"])
    def test_user_name_constraints(
        self, scim: httpx2.Client, user_body: Body, aws_error: ErrorCheck, user_name: str
    ) -> None:
        """userName is at most 128 characters and has no whitespace or invisible characters."""
        aws_error(scim.post("Users", json=user_body(6, userName=user_name)), 400)

    def test_user_name_of_128_characters_is_accepted(self, scim: httpx2.Client, user_body: Body) -> None:
        """A 128-character userName is within the limit."""
        assert scim.post("Users", json=user_body(7, userName="b" * 128)).status_code == 201

    def test_long_display_name_is_refused(self, scim: httpx2.Client, user_body: Body, aws_error: ErrorCheck) -> None:
        """Other strings are at most 1024 characters."""
        aws_error(scim.post("Users", json=user_body(8, displayName="x" * 1025)), 400)

    def test_two_emails_are_refused(self, scim: httpx2.Client, user_body: Body, aws_error: ErrorCheck) -> None:
        """More than one email is 400 with AWS's "exceeds allowed limit of 1" text."""
        emails = [
            {"value": "a@example.com", "type": "work", "primary": True},
            {"value": "b@example.com", "type": "home", "primary": False},
        ]
        body = aws_error(scim.post("Users", json=user_body(9, emails=emails)), 400)
        assert body["detail"] == "List attribute emails exceeds allowed limit of 1"

    @pytest.mark.parametrize(
        "change",
        [
            {"emails": [{"value": "a@example.com", "type": "work"}]},
            {"emails": [{"value": "a@example.com", "type": "work", "primary": False}]},
            {"emails": [{"value": "a@example.com", "primary": True, "display": "A"}]},
            {"phoneNumbers": [{"value": "1", "type": "work"}, {"value": "2", "type": "home"}]},
            {"groups": [{"value": "g"}]},
            {"password": "secret"},
            {"nickName": ""},
            {"active": "true"},
            {"unknownAttribute": "x"},
            {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"]},
            {ENTERPRISE_URN: {"department": "x"}},
        ],
    )
    def test_schema_violations(
        self, scim: httpx2.Client, user_body: Body, aws_error: ErrorCheck, change: dict[str, Any]
    ) -> None:
        """Non-primary email, display, extra values, groups, password, empty strings, unknown data: 400."""
        aws_error(scim.post("Users", json=user_body(10, **change)), 400)

    def test_invalid_json(self, scim: httpx2.Client, aws_error: ErrorCheck) -> None:
        """A body that is not JSON is 400 "Invalid JSON from RequestBody"."""
        response = scim.post("Users", content=b"{not json", headers={"Content-Type": "application/scim+json"})
        assert aws_error(response, 400)["detail"] == "Invalid JSON from RequestBody"


class TestUniqueness:
    def test_user_name_differing_by_case_is_409(
        self, scim: httpx2.Client, user_body: Body, aws_error: ErrorCheck
    ) -> None:
        """A userName equal to an existing one but for letter case is a duplicate: 409, exact AWS body."""
        assert scim.post("Users", json=user_body(1, userName="Bjensen@Example.com")).status_code == 201
        response = scim.post("Users", json=user_body(2, userName="bjensen@example.COM"))
        assert aws_error(response, 409)["detail"] == DUPLICATE

    def test_duplicate_email_is_409(self, scim: httpx2.Client, user_body: Body, aws_error: ErrorCheck) -> None:
        """Two users may not share a primary email, whatever its case."""
        scim.post("Users", json=user_body(1))
        emails = [{"value": "USER1@example.com", "type": "work", "primary": True}]
        assert aws_error(scim.post("Users", json=user_body(2, emails=emails)), 409)["detail"] == DUPLICATE

    def test_duplicate_external_id_is_409(self, scim: httpx2.Client, user_body: Body, aws_error: ErrorCheck) -> None:
        """Two users may not share an externalId."""
        scim.post("Users", json=user_body(1))
        assert aws_error(scim.post("Users", json=user_body(2, externalId="ext-1")), 409)["detail"] == DUPLICATE

    def test_put_colliding_is_409(
        self, scim: httpx2.Client, create_user: Callable[..., str], user_body: Body, aws_error: ErrorCheck
    ) -> None:
        """A PUT that would take another user's userName is 409."""
        create_user(1)
        second = create_user(2)
        aws_error(scim.put(f"Users/{second}", json=user_body(2, userName="USER1@example.com")), 409)

    def test_patch_colliding_is_409(
        self, scim: httpx2.Client, create_user: Callable[..., str], patch_body: Body, aws_error: ErrorCheck
    ) -> None:
        """A PATCH that would take another user's externalId is 409."""
        create_user(1)
        second = create_user(2)
        body = patch_body({"op": "replace", "path": "externalId", "value": "ext-1"})
        aws_error(scim.patch(f"Users/{second}", json=body), 409)


class TestReadReplaceDelete:
    def test_get_unknown_user_is_404(self, scim: httpx2.Client, aws_error: ErrorCheck) -> None:
        """GET of an unknown id is 404 "Specified user or endpoint does not exist"."""
        body = aws_error(scim.get("Users/00000000-0000-4000-8000-000000000000"), 404)
        assert body["detail"] == "Specified user or endpoint does not exist"

    def test_put_replaces_the_user(self, scim: httpx2.Client, create_user: Callable[..., str], user_body: Body) -> None:
        """PUT answers 200 with the full, replaced user; attributes left out are gone."""
        user_id = create_user(1, nickName="Babs")
        response = scim.put(f"Users/{user_id}", json=user_body(1, displayName="Barbara"))
        assert response.status_code == 200
        user = response.json()
        assert user["displayName"] == "Barbara"
        assert "nickName" not in user
        assert user == scim.get(f"Users/{user_id}").json()

    def test_put_requires_the_same_attributes(
        self, scim: httpx2.Client, create_user: Callable[..., str], user_body: Body, aws_error: ErrorCheck
    ) -> None:
        """PUT without displayName is 400, as on POST."""
        user_id = create_user(1)
        body = user_body(1)
        del body["displayName"]
        aws_error(scim.put(f"Users/{user_id}", json=body), 400)

    def test_delete_then_get_is_404(self, scim: httpx2.Client, create_user: Callable[..., str]) -> None:
        """DELETE answers 204 without a body, and the user is gone."""
        user_id = create_user(1)
        response = scim.delete(f"Users/{user_id}")
        assert response.status_code == 204
        assert response.content == b""
        assert scim.get(f"Users/{user_id}").status_code == 404


class TestPatch:
    def test_active_as_string_false(
        self, scim: httpx2.Client, create_user: Callable[..., str], patch_body: Body
    ) -> None:
        """PATCH replace of active with the string "false" (the DG example) answers 200 and the full user."""
        user_id = create_user(1)
        response = scim.patch(
            f"Users/{user_id}", json=patch_body({"op": "replace", "path": "active", "value": "false"})
        )
        assert response.status_code == 200
        assert response.json()["active"] is False
        assert response.json()["userName"] == "user1@example.com"

    def test_value_object_without_path(
        self, scim: httpx2.Client, create_user: Callable[..., str], patch_body: Body
    ) -> None:
        """Replace without path applies each key of the value object (letter case of op ignored)."""
        user_id = create_user(1)
        op = {
            "op": "Replace",
            "value": {"nickName": "Bas", "displayName": "Barbara Jensen", "active": "false"},
        }
        user = scim.patch(f"Users/{user_id}", json=patch_body(op)).json()
        assert (user["nickName"], user["displayName"], user["active"]) == ("Bas", "Barbara Jensen", False)

    def test_sub_attribute_filter_and_enterprise_paths(
        self, scim: httpx2.Client, create_user: Callable[..., str], patch_body: Body
    ) -> None:
        """name.givenName, emails[type eq "work"].value and enterprise URN paths are patched."""
        user_id = create_user(1)
        body = patch_body(
            {"op": "replace", "path": "name.givenName", "value": "Barbara"},
            {"op": "replace", "path": 'emails[type eq "work"].value', "value": "bj@example.com"},
            {"op": "add", "path": f"{ENTERPRISE_URN}:department", "value": "Tours"},
            {"op": "add", "path": f"{ENTERPRISE_URN}:manager.value", "value": "m-9"},
        )
        user = scim.patch(f"Users/{user_id}", json=body).json()
        assert user["name"]["givenName"] == "Barbara"
        assert user["emails"][0]["value"] == "bj@example.com"
        assert user[ENTERPRISE_URN] == {"department": "Tours", "manager": {"value": "m-9"}}
        assert ENTERPRISE_URN in user["schemas"]

    @pytest.mark.parametrize(
        ("operation", "detail"),
        [
            ({"op": "remove"}, "Missing path in PATCH request"),
            ({"op": "remove", "path": "userName"}, None),
            ({"op": "remove", "path": "active"}, None),
            ({"path": "nickName", "value": "x"}, None),
            ({"op": "copy", "path": "nickName", "value": "x"}, None),
            ({"op": "replace", "path": "nickName"}, None),
            ({"op": "remove", "path": "name.givenName"}, "validation error"),
            (
                {"op": "add", "path": "emails", "value": [{"value": "x@example.com", "primary": True}]},
                "limit of 1",
            ),
            ({"op": "replace", "path": 'emails[type eq "home"].value', "value": "x@example.com"}, None),
            ({"op": "replace", "path": "groups", "value": [{"value": "g"}]}, None),
        ],
    )
    def test_refused_operations(
        self,
        scim: httpx2.Client,
        create_user: Callable[..., str],
        patch_body: Body,
        aws_error: ErrorCheck,
        operation: dict[str, Any],
        detail: str | None,
    ) -> None:
        """Missing path on remove, removing userName/active, missing op or value, and rule breaks are 400."""
        user_id = create_user(1)
        body = aws_error(scim.patch(f"Users/{user_id}", json=patch_body(operation)), 400)
        if detail is not None:
            assert detail in body["detail"]

    def test_two_operations_on_active_are_refused(
        self, scim: httpx2.Client, create_user: Callable[..., str], patch_body: Body, aws_error: ErrorCheck
    ) -> None:
        """Several operations on active in one request are 400, and nothing changes."""
        user_id = create_user(1)
        body = patch_body(
            {"op": "replace", "path": "active", "value": False},
            {"op": "replace", "path": "active", "value": True},
        )
        aws_error(scim.patch(f"Users/{user_id}", json=body), 400)
        assert scim.get(f"Users/{user_id}").json()["active"] is True

    def test_patch_unknown_user_is_404(self, scim: httpx2.Client, patch_body: Body, aws_error: ErrorCheck) -> None:
        """PATCH of an unknown id is 404."""
        body = patch_body({"op": "replace", "path": "active", "value": False})
        aws_error(scim.patch("Users/00000000-0000-4000-8000-000000000000", json=body), 404)
