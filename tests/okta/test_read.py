"""Full reads: paging, status mapping, profile mapping, group types, scope, malformed records."""

from __future__ import annotations

import itertools

import httpx2
import pytest

from connectors import base
from connectors.kit import next_link
from connectors.okta import OktaSettings
from syncd.errors import SourceError
from syncd.model import SourceRead
from tests.fakes.okta import FakeOkta
from tests.okta.conftest import MakeSource, expected, read, summary


pytestmark = pytest.mark.anyio


def _page_chain(fake: FakeOkta, path: str) -> list[tuple[httpx2.Request, httpx2.Response]]:
    return [(q, r) for q, r in zip(fake.requests, fake.responses, strict=True) if q.url.path == path]


async def test_users_are_read_across_link_pages(fake: FakeOkta, make_source: MakeSource) -> None:
    """More than 200 users come back over several pages, each requested by the previous next link."""
    ids = {fake.add_user(f"user{i}@example.com") for i in range(450)}

    result = await read(make_source())

    assert ids == {u.id for u in result.users}
    chain = _page_chain(fake, "/api/v1/users")
    assert len(chain) == 3
    assert all(len(r.json()) <= 200 for _, r in chain)
    for (_, response), (following, _) in itertools.pairwise(chain):
        assert next_link(response) == str(following.url)
    assert next_link(chain[-1][1]) is None
    assert all(q.url.params["limit"] == "200" for q, _ in chain)


async def test_group_members_are_read_across_link_pages(fake: FakeOkta, make_source: MakeSource) -> None:
    """A group of 250 members is read in two member pages and keeps every member."""
    members = [fake.add_user(f"m{i}@example.com") for i in range(250)]
    group = fake.add_group("Engineering")
    fake.add_member(group, *members)

    result = await read(make_source())

    (engineering,) = result.groups
    assert set(members) == set(engineering.members)
    assert len(engineering.members) == 250
    assert len(fake.calls(f"/api/v1/groups/{group}/users")) == 2


async def test_deprovisioned_users_are_read(fake: FakeOkta, make_source: MakeSource) -> None:
    """DEPROVISIONED users, which the default listing hides, are read and marked inactive."""
    gone = fake.add_user("gone@example.com", status="DEPROVISIONED")
    fake.add_user("here@example.com")

    result = await read(make_source())

    assert {gone: False} == {u.id: u.active for u in result.users if u.id == gone}
    assert fake.calls("/api/v1/users")[0].params == {"search": "status pr", "limit": "200"}


@pytest.mark.parametrize(
    ("status", "active"),
    [
        ("ACTIVE", True),
        ("RECOVERY", True),
        ("LOCKED_OUT", True),
        ("PASSWORD_EXPIRED", True),
        ("SUSPENDED", False),
        ("DEPROVISIONED", False),
    ],
)
async def test_status_maps_to_active(fake: FakeOkta, make_source: MakeSource, status: str, active: bool) -> None:
    """Each Okta status maps to the documented active flag."""
    user = fake.add_user(status=status)

    result = await read(make_source())

    assert [(user, active)] == [(u.id, u.active) for u in result.users]


@pytest.mark.parametrize("status", ["STAGED", "PROVISIONED"])
async def test_staged_users_are_skipped_by_default(fake: FakeOkta, make_source: MakeSource, status: str) -> None:
    """STAGED and PROVISIONED users are skipped with a reason naming include_staged."""
    user = fake.add_user(status=status)

    result = await read(make_source())

    assert result.users == []
    (skip,) = result.skipped
    assert ("user", user) == (skip.kind, skip.id)
    assert status in skip.reason
    assert "include_staged" in skip.reason


@pytest.mark.parametrize("status", ["STAGED", "PROVISIONED"])
async def test_staged_users_are_synced_disabled_when_included(
    fake: FakeOkta, make_source: MakeSource, status: str
) -> None:
    """With include_staged, STAGED and PROVISIONED users are read with active=false."""
    user = fake.add_user(status=status)

    result = await read(make_source(include_staged=True))

    assert [(user, False)] == [(u.id, u.active) for u in result.users]
    assert result.skipped == []


async def test_profile_fields_are_mapped(fake: FakeOkta, make_source: MakeSource) -> None:
    """login, email, names, displayName and the enterprise properties land in SourceUser fields."""
    user = fake.add_user(
        "ada@example.com",
        email="ada.lovelace@example.com",
        firstName="Ada",
        lastName="Lovelace",
        displayName="Ada L.",
        employeeNumber=1815,
        costCenter="CC-1",
        organization="Analytical",
        division="Engines",
        department="Research",
        manager="Charles Babbage",
        nickName="ignored",
    )

    (got,) = (await read(make_source())).users

    assert user == got.id
    assert (
        got.user_name,
        got.email,
        got.given_name,
        got.family_name,
        got.display_name,
    ) == ("ada@example.com", "ada.lovelace@example.com", "Ada", "Lovelace", "Ada L.")
    assert dict(got.enterprise) == {
        "employee_number": "1815",
        "cost_center": "CC-1",
        "organization": "Analytical",
        "division": "Engines",
        "department": "Research",
        "manager": "Charles Babbage",
    }


async def test_everyone_is_skipped_and_app_groups_kept(fake: FakeOkta, make_source: MakeSource) -> None:
    """The BUILT_IN Everyone group is left out; APP_GROUP and OKTA_GROUP groups are read."""
    user = fake.add_user()
    app = fake.add_group("AD Admins", type="APP_GROUP")
    okta = fake.add_group("Staff")
    fake.add_member(app, user)
    fake.add_member(okta, user)

    result = await read(make_source(), groups=("*",))

    assert {app: ("AD Admins", frozenset({user})), okta: ("Staff", frozenset({user}))} == summary(result)[1]
    assert fake.everyone not in fake.member_listings()


async def test_everyone_is_read_when_named_explicitly(fake: FakeOkta, make_source: MakeSource) -> None:
    """A scope pattern that names Everyone without wildcards brings it in, with all users."""
    users = {fake.add_user() for _ in range(3)}

    result = await read(make_source(), groups=("everyone",))

    assert {fake.everyone: ("Everyone", frozenset(users))} == summary(result)[1]


async def test_scope_with_members_reads_only_members_of_synced_groups(fake: FakeOkta, make_source: MakeSource) -> None:
    """users="members" reads no user listing: only the members of groups the scope wants."""
    eng = fake.add_group("eng-platform")
    ops = fake.add_group("ops")
    a, b, c = fake.add_user(), fake.add_user(), fake.add_user()
    fake.add_member(eng, a, b)
    fake.add_member(ops, c)

    result = await read(make_source(), groups=("ENG-*",), users="members")

    assert result.prefiltered
    assert expected(fake, groups=("ENG-*",), users="members") == summary(result)
    assert {a, b} == {u.id for u in result.users}
    assert fake.calls("/api/v1/users") == []
    assert [eng] == fake.member_listings()


async def test_scope_with_all_users_reads_every_user(fake: FakeOkta, make_source: MakeSource) -> None:
    """users="all" reads every user but the members of synced groups only."""
    eng = fake.add_group("eng")
    ops = fake.add_group("ops")
    a, b = fake.add_user(), fake.add_user()
    fake.add_member(eng, a)
    fake.add_member(ops, b)

    result = await read(make_source(), groups=("eng",), users="all")

    assert not result.prefiltered
    assert expected(fake, groups=("eng",)) == summary(result)
    assert [eng] == fake.member_listings()


async def test_malformed_records_are_skipped_and_counted(fake: FakeOkta, make_source: MakeSource) -> None:
    """A user without an id or a profile is skipped with a reason; the rest of the read goes on."""
    good = fake.add_user()
    fake.extra_user_records = [{"status": "ACTIVE", "profile": {"login": "x@example.com"}}, {"id": "00ubad"}]

    result = await read(make_source())

    assert [good] == [u.id for u in result.users]
    assert [(s.kind, s.id) for s in result.skipped] == [("user", "?"), ("user", "00ubad")]
    assert "no profile" in result.skipped[1].reason


async def test_a_failure_mid_listing_fails_the_whole_read(fake: FakeOkta, make_source: MakeSource) -> None:
    """A 400 on the second user page raises SourceError instead of returning part of the users."""
    for _ in range(250):
        fake.add_user()
    fake.inject(400, on=2, path="/api/v1/users")

    with pytest.raises(SourceError, match=r"HTTP 400 \(E0000001"):
        await read(make_source())


async def test_a_group_deleted_during_the_read_is_left_out(fake: FakeOkta, make_source: MakeSource) -> None:
    """A group that vanishes between the group listing and its member listing (404) is omitted."""
    user = fake.add_user()
    doomed, kept = fake.add_group("doomed"), fake.add_group("kept")
    fake.add_member(doomed, user)
    fake.add_member(kept, user)

    def delete_on_listing(request: httpx2.Request) -> None:
        if request.url.path == f"/api/v1/groups/{doomed}/users" and doomed in fake.groups:
            fake.delete_group(doomed)

    fake.before = delete_on_listing

    result = await read(make_source())

    assert [kept] == [g.id for g in result.groups]
    assert result.complete


async def test_requests_are_counted(fake: FakeOkta, make_source: MakeSource) -> None:
    """SourceRead.requests is the number of HTTP requests the read sent."""
    for _ in range(201):
        fake.add_user()
    fake.add_group("a")
    fake.add_group("b")

    result = await read(make_source())

    assert len(fake.requests) == result.requests == 2 + 1 + 2


async def test_the_registry_builds_the_connector(fake: FakeOkta) -> None:
    """base.get("okta") returns the registered type, whose factory reads through the Deps' transport."""
    user = fake.add_user()
    source_type = base.get("okta")
    settings = source_type.settings.model_validate({"url": fake.url, "token": fake.token})
    assert isinstance(settings, OktaSettings)
    source = source_type.factory(settings, base.Deps(transport=fake.transport))
    try:
        result = await read(source)  # type: ignore[arg-type]
    finally:
        await source.aclose()

    assert [user] == [u.id for u in result.users]
    assert "okta" in base.names()


async def _read_with(transport: httpx2.MockTransport, make_source: MakeSource) -> SourceRead:
    return await read(make_source(transport=transport))


async def test_a_listing_that_is_not_an_array_fails(make_source: MakeSource) -> None:
    """An answer that is not a bare JSON array (e.g. an HTML error page or an object) fails the read."""
    transport = httpx2.MockTransport(lambda request: httpx2.Response(200, json={"users": []}))

    with pytest.raises(SourceError, match="JSON array"):
        await _read_with(transport, make_source)


async def test_a_next_link_to_another_host_is_not_followed(make_source: MakeSource) -> None:
    """A next link that leaves the org's host fails the read rather than send our token there."""
    seen: list[str] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(str(request.url.host))
        return httpx2.Response(200, json=[], headers={"Link": '<https://evil.example.com/x>; rel="next"'})

    with pytest.raises(SourceError, match="another host"):
        await _read_with(httpx2.MockTransport(handler), make_source)
    assert {"acme.okta.com"} == set(seen)


async def test_a_next_link_that_repeats_a_page_fails(make_source: MakeSource) -> None:
    """A next link pointing back at a page already read fails instead of looping forever."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json=[], headers={"Link": f'<{request.url}>; rel="next"'})

    with pytest.raises(SourceError, match="repeats a page"):
        await _read_with(httpx2.MockTransport(handler), make_source)


@pytest.mark.parametrize("users", ["members", "all"])
async def test_a_member_id_is_the_users_own_string(fake: FakeOkta, make_source: MakeSource, users: str) -> None:
    """A user in three groups is held as one id string: every group's member is the user record's
    own id, not a copy per member listing (half a million copies at 100k users)."""
    people = [fake.add_user(f"p{i}@example.com") for i in range(3)]
    for name in ("eng", "ops", "all-staff"):
        fake.add_member(fake.add_group(name), *people)

    result = await read(make_source(), users=users)

    by_id = {u.id: u.id for u in result.users}
    assert 3 == len(result.groups)
    assert all(member is by_id[member] for group in result.groups for member in group.members)
