"""Listing: classic and cursor pages, cursor encoding, query parameters, the filter grammar."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx2
import pytest
from scim2_models import ResourceType, Schema, ServiceProviderConfig

from syncd.emulator import RunningEmulator


ErrorCheck = Callable[[httpx2.Response, int], dict[str, Any]]
CURSOR_CHARS = set("-abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+=/:_")


@pytest.fixture
def many_users(emu: RunningEmulator) -> list[str]:
    """250 users made by hand in the state, in creation order."""
    return [
        emu.state.add_user(
            user_name=f"person{i:03d}@example.com",
            display_name=f"Person {i}",
            given_name="Person",
            family_name=f"N{i}",
            email=f"person{i:03d}@example.com",
            external_id=f"x{i}",
        )["id"]
        for i in range(250)
    ]


def get_page(scim: httpx2.Client, resource: str, cursor: str, **params: str) -> httpx2.Response:
    """GET a cursor page, URL-encoding the cursor and keeping an empty one as a bare ``cursor``."""
    query = "&".join([f"{k}={quote(v, safe='')}" for k, v in params.items()] + [f"cursor={quote(cursor, safe='')}"])
    return scim.get(f"{resource}?{query}")


class TestCursorPaging:
    def test_250_users_in_three_pages(self, scim: httpx2.Client, many_users: list[str]) -> None:
        """count=100 walks 250 users in pages of 100, 100 and 50; the last page has no nextCursor."""
        sizes, seen, cursor = [], [], ""
        while True:
            response = get_page(scim, "Users", cursor, count="100")
            assert response.status_code == 200, response.text
            page = response.json()
            assert "totalResults" not in page
            assert "startIndex" not in page
            assert page["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:ListResponse"]
            assert page["itemsPerPage"] == len(page["Resources"])
            sizes.append(len(page["Resources"]))
            seen += [u["id"] for u in page["Resources"]]
            if "nextCursor" not in page:
                break
            assert set(page["nextCursor"]) <= CURSOR_CHARS
            cursor = page["nextCursor"]
        assert sizes == [100, 100, 50]
        assert seen == many_users

    def test_bare_cursor_starts_paging(self, scim: httpx2.Client, many_users: list[str]) -> None:
        """The first request may carry "?cursor" with no "=" at all."""
        page = scim.get("Users?cursor&count=10").json()
        assert [u["id"] for u in page["Resources"]] == many_users[:10]
        assert "nextCursor" in page

    def test_cursor_with_plus_round_trips_only_when_encoded(
        self, emu: RunningEmulator, scim: httpx2.Client, many_users: list[str], aws_error: ErrorCheck
    ) -> None:
        """A cursor holding "+" and "=" works URL-encoded; sent raw its "+" becomes a space and is 400."""
        after = next(n for n in range(1, 10_000) if "+" in emu.state.cursors.encode("Users", n, None))
        cursor = emu.state.cursors.encode("Users", after, None)
        assert "=" in cursor
        page = scim.get(f"Users?count=5&cursor={quote(cursor, safe='')}").json()
        expected_start = after if after < len(many_users) else len(many_users)
        assert [u["id"] for u in page["Resources"]] == many_users[expected_start : expected_start + 5]
        aws_error(scim.get(f"Users?count=5&cursor={cursor}"), 400)

    def test_every_issued_cursor_has_padding(self, scim: httpx2.Client, many_users: list[str]) -> None:
        """Issued cursors use the standard base64 alphabet with "=" padding, so clients must encode them."""
        page = scim.get("Users?cursor=&count=3").json()
        assert page["nextCursor"].endswith("=")

    def test_changed_filter_mid_paging_is_400(
        self, scim: httpx2.Client, many_users: list[str], aws_error: ErrorCheck
    ) -> None:
        """A cursor issued for one filter is refused with another filter (400 ValidationException)."""
        first = get_page(scim, "Users", "", count="100").json()
        response = get_page(
            scim, "Users", first["nextCursor"], count="100", filter='userName eq "person001@example.com"'
        )
        aws_error(response, 400)

    @pytest.mark.parametrize("cursor", ["bm90LWEtY3Vyc29y", "abc def", "A" * 44])
    def test_unknown_cursor_is_400(
        self, scim: httpx2.Client, many_users: list[str], aws_error: ErrorCheck, cursor: str
    ) -> None:
        """A cursor the emulator did not issue is 400."""
        aws_error(get_page(scim, "Users", cursor), 400)

    def test_user_cursor_on_groups_is_400(
        self, scim: httpx2.Client, many_users: list[str], aws_error: ErrorCheck
    ) -> None:
        """A cursor from a /Users listing is refused by /Groups."""
        cursor = get_page(scim, "Users", "", count="1").json()["nextCursor"]
        aws_error(get_page(scim, "Groups", cursor, count="1"), 400)

    def test_cursor_from_another_instance_is_400(self, scim: httpx2.Client, aws_error: ErrorCheck) -> None:
        """A well-formed cursor signed by another emulator is unknown here."""
        from syncd.emulator import EmulatorState

        cursor = EmulatorState().cursors.encode("Users", 1, None)
        aws_error(get_page(scim, "Users", cursor), 400)


class TestClassicList:
    def test_without_cursor_only_the_first_page(self, scim: httpx2.Client, many_users: list[str]) -> None:
        """Without a cursor the answer is the first 100, totalResults counting what was returned."""
        page = scim.get("Users").json()
        assert len(page["Resources"]) == 100
        assert (page["totalResults"], page["itemsPerPage"], page["startIndex"]) == (100, 100, 1)
        assert "nextCursor" not in page
        assert [u["id"] for u in page["Resources"]] == many_users[:100]

    def test_empty_filter_result(self, scim: httpx2.Client) -> None:
        """A filter that matches nothing gives an empty ListResponse."""
        page = scim.get("Users", params={"filter": 'userName eq "nobody@example.com"'}).json()
        assert (page["totalResults"], page["Resources"]) == (0, [])

    @pytest.mark.parametrize(
        "query",
        ["count=0", "count=101", "count=abc", "count=", "startIndex=1", "attributes=userName",
         "excludedAttributes=emails", "sortBy=userName", "count=5&count=6", "foo=bar"],
    )  # fmt: skip
    def test_bad_parameters_are_400(self, scim: httpx2.Client, aws_error: ErrorCheck, query: str) -> None:
        """count outside 1–100, startIndex, attributes, excludedAttributes, sortBy, repeats: 400."""
        aws_error(scim.get(f"Users?{query}"), 400)

    def test_count_limits_the_page(self, scim: httpx2.Client, many_users: list[str]) -> None:
        """count=7 returns seven users."""
        assert len(scim.get("Users?count=7").json()["Resources"]) == 7


class TestFilters:
    @pytest.mark.parametrize(
        "expression",
        [
            'userName sw "person"',
            'userName co "person"',
            "userName pr",
            'userName eq "a" or userName eq "b"',
            '(userName eq "a")',
            "userName eq person001@example.com",
            'not (userName eq "a")',
            'emails[type eq "work"]',
            'userName eq "a" and externalId eq "b"',
            'displayName eq "a"',
            'userName eq "a" and userName eq "b"',
            'userName eq "a" and id eq "b" and externalId eq "c"',
            "",
        ],
    )
    def test_unsupported_filters_are_400(self, scim: httpx2.Client, aws_error: ErrorCheck, expression: str) -> None:
        """Only eq, two clauses at most joined by and, known attributes; else "Invalid Filter format"."""
        response = scim.get("Users", params={"filter": expression})
        assert aws_error(response, 400)["detail"] == "Invalid Filter format"

    def test_user_name_filter_ignores_case(self, scim: httpx2.Client, many_users: list[str]) -> None:
        """userName eq matches regardless of letter case, and keywords may be upper-case."""
        page = scim.get("Users", params={"filter": 'USERNAME EQ "Person007@Example.COM"'}).json()
        assert [u["id"] for u in page["Resources"]] == [many_users[7]]

    def test_external_id_filter(self, scim: httpx2.Client, many_users: list[str]) -> None:
        """externalId eq finds the user with that externalId."""
        page = scim.get("Users", params={"filter": 'externalId eq "x42"'}).json()
        assert [u["id"] for u in page["Resources"]] == [many_users[42]]

    def test_id_and_manager(self, emu: RunningEmulator, scim: httpx2.Client, many_users: list[str]) -> None:
        """id eq ... and manager eq ... matches only when the user has that manager."""
        urn = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
        body = {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "add", "path": f"{urn}:manager.value", "value": many_users[1]}],
        }
        assert scim.patch(f"Users/{many_users[0]}", json=body).status_code == 200
        hit = scim.get("Users", params={"filter": f'manager eq "{many_users[1]}" and id eq "{many_users[0]}"'})
        miss = scim.get("Users", params={"filter": f'id eq "{many_users[0]}" and manager eq "{many_users[2]}"'})
        assert [u["id"] for u in hit.json()["Resources"]] == [many_users[0]]
        assert miss.json()["Resources"] == []

    def test_group_display_name_filter(self, emu: RunningEmulator, scim: httpx2.Client) -> None:
        """displayName eq finds a group, keeping cursor mode when asked."""
        group = emu.state.add_group(display_name="Tour Guides", external_id="tg")
        page = scim.get("Groups?cursor&filter=" + quote('displayName eq "Tour Guides"')).json()
        assert [g["id"] for g in page["Resources"]] == [group["id"]]
        assert page["Resources"][0]["members"] == []
        assert "nextCursor" not in page


class TestEndpoints:
    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("POST", "Bulk"),
            ("GET", "Me"),
            ("POST", ".search"),
            ("POST", "Users/.search"),
            ("GET", "Users/a/b"),
            ("GET", "Users/"),
            ("DELETE", "Users"),
            ("PUT", "Groups"),
            ("GET", "Nothing"),
            ("POST", "ServiceProviderConfig"),
        ],
    )
    def test_unsupported_endpoints_are_404(
        self, scim: httpx2.Client, aws_error: ErrorCheck, method: str, path: str
    ) -> None:
        """/Bulk, /Me, /.search, PUT /Groups and unknown paths or methods are 404."""
        aws_error(scim.request(method, path, json={}), 404)

    def test_outside_base_path_is_404(self, emu: RunningEmulator, aws_error: ErrorCheck) -> None:
        """Only /scim/v2/ is served."""
        base = emu.url.removesuffix("scim/v2/")
        aws_error(httpx2.get(base + "v2/Users", headers={"Authorization": "Bearer emulator-test-token"}), 404)

    def test_service_provider_config(self, scim: httpx2.Client) -> None:
        """ServiceProviderConfig matches AWS's: bearer auth, no bulk, filter max 50, patch, no sort/etag."""
        raw = scim.get("ServiceProviderConfig").json()
        config = ServiceProviderConfig.model_validate(raw)
        assert config.patch is not None
        assert config.patch.supported is True
        assert (raw["bulk"]["supported"], raw["filter"]["maxResults"], raw["sort"]["supported"]) == (
            False,
            50,
            False,
        )
        assert raw["authenticationSchemes"][0]["type"] == "oauthbearertoken"

    def test_schemas_and_resource_types_are_valid(self, scim: httpx2.Client) -> None:
        """/Schemas, /Schemas/{urn} and /ResourceTypes parse as RFC 7643 documents."""
        listed = scim.get("Schemas").json()["Resources"]
        schemas = {s.id: s for s in (Schema.model_validate(raw) for raw in listed)}
        assert set(schemas) == {
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
            "urn:ietf:params:scim:schemas:core:2.0:Group",
        }
        user_name = next(a for a in listed[0]["attributes"] if a["name"] == "userName")
        assert (user_name["required"], user_name["caseExact"], user_name["uniqueness"]) == (
            True,
            False,
            "server",
        )
        one = scim.get("Schemas/urn:ietf:params:scim:schemas:core:2.0:Group")
        assert one.json()["id"] == "urn:ietf:params:scim:schemas:core:2.0:Group"
        types = [ResourceType.model_validate(raw) for raw in scim.get("ResourceTypes").json()["Resources"]]
        assert sorted(t.id or "" for t in types) == ["Group", "User"]
