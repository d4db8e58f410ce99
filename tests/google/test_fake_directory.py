"""The fake Directory API, rule by rule: a fake softer than Google proves nothing about the connector."""

from __future__ import annotations

import asyncio

import httpx2
import pytest

from tests.fakes.google import API_URL, DIRECTORY, FakeGoogle
from tests.fakes.google_auth import ServiceAccount
from tests.fakes.google_domain import flattened, populate
from tests.google.conftest import ADMIN, admin_token, get, reason


pytestmark = pytest.mark.anyio


@pytest.fixture
def token(fake: FakeGoogle, account: ServiceAccount) -> str:
    """A token acting as the domain's admin with the three read scopes."""
    return admin_token(fake, account)


async def test_lists_answer_in_the_kind_envelope_with_an_etag(fake: FakeGoogle, token: str) -> None:
    """users, groups and members lists carry their kind and an etag beside the array."""
    group = fake.add_group("team@example.com")
    fake.add_member(group, next(iter(fake.users)))

    users = (await get(fake, "/users", token, customer="my_customer")).json()
    groups = (await get(fake, "/groups", token, customer="my_customer")).json()
    members = (await get(fake, f"/groups/{group}/members", token)).json()

    assert (users["kind"], groups["kind"], members["kind"]) == (
        "admin#directory#users",
        "admin#directory#groups",
        "admin#directory#members",
    )
    assert all(body["etag"].startswith('"') for body in (users, groups, members))
    assert fake.responses[-1].headers["date"].endswith("GMT")
    assert users["users"][0]["kind"] == "admin#directory#user"
    assert members["members"][0]["kind"] == "admin#directory#member"


async def test_empty_arrays_are_left_out(fake: FakeGoogle, token: str) -> None:
    """An empty page has no array key at all, and a user without aliases or relations has none of those keys."""
    group = fake.add_group("empty@example.com")

    members = (await get(fake, f"/groups/{group}/members", token)).json()
    groups = (await get(fake, "/groups", token, domain="example.com", maxResults="1")).json()
    (admin,) = (await get(fake, "/users", token, customer="my_customer")).json()["users"]

    assert "members" not in members
    assert "nextPageToken" not in members
    assert len(groups["groups"]) == 1
    assert not {"aliases", "relations", "externalIds", "organizations"} & admin.keys()


async def test_users_pages_hold_at_most_500_and_default_to_100(fake: FakeGoogle, token: str) -> None:
    """maxResults above 500 is refused; 500 is one full page; without maxResults a page holds 100."""
    for i in range(500):
        fake.add_user(f"u{i:03d}@example.com")

    too_many = await get(fake, "/users", token, customer="my_customer", maxResults="501")
    full = (await get(fake, "/users", token, customer="my_customer", maxResults="500")).json()
    default = (await get(fake, "/users", token, customer="my_customer")).json()

    assert (too_many.status_code, reason(too_many)) == (400, "invalid")
    assert len(full["users"]) == 500
    assert "nextPageToken" in full  # 501 users with the admin
    assert len(default["users"]) == 100


@pytest.mark.parametrize("path", ["/groups", "/groups/{group}/members"])
async def test_group_and_member_pages_hold_at_most_200(fake: FakeGoogle, token: str, path: str) -> None:
    """Groups and members pages default to 200 and refuse maxResults above 200."""
    group = fake.add_group("big@example.com")
    for i in range(200):
        fake.add_group(f"g{i:03d}@example.com")
        fake.add_member(group, fake.add_user(f"m{i:03d}@example.com"))
    url = path.format(group=group)
    params = {"customer": "my_customer"} if path == "/groups" else {}

    refused = await get(fake, url, token, maxResults="201", **params)
    page = (await get(fake, url, token, **params)).json()

    assert (refused.status_code, reason(refused)) == (400, "invalid")
    key = "groups" if path == "/groups" else "members"
    assert len(page[key]) == 200
    assert ("nextPageToken" in page) is (key == "groups")


async def test_next_page_token_walks_the_listing_and_ends(fake: FakeGoogle, token: str) -> None:
    """Following nextPageToken returns each user once; the last page has no token."""
    for i in range(4):
        fake.add_user(f"p{i}@example.com")
    seen: list[str] = []
    params = {"customer": "my_customer", "maxResults": "2"}
    pages = 0
    while True:
        body = (await get(fake, "/users", token, **params)).json()
        pages += 1
        seen += [u["primaryEmail"] for u in body["users"]]
        if "nextPageToken" not in body:
            break
        params["pageToken"] = body["nextPageToken"]

    assert pages == 3
    assert sorted(seen) == sorted(u.email for u in fake.users.values())


async def test_a_page_token_works_only_for_its_listing_and_users_tokens_expire(
    fake: FakeGoogle, account: ServiceAccount, token: str
) -> None:
    """A users page token is refused on the groups listing, and on the users listing after three days."""
    for i in range(3):
        fake.add_user(f"t{i}@example.com")
        fake.add_group(f"tg{i}@example.com")
    first = (await get(fake, "/users", token, customer="my_customer", maxResults="1")).json()

    elsewhere = await get(fake, "/groups", token, customer="my_customer", pageToken=first["nextPageToken"])
    fresh = await get(fake, "/users", token, customer="my_customer", pageToken=first["nextPageToken"])
    fake.advance(3 * 86_400 + 1)
    token = admin_token(fake, account)  # the first one has expired meanwhile
    stale = await get(fake, "/users", token, customer="my_customer", pageToken=first["nextPageToken"])

    assert elsewhere.status_code == 400
    assert fresh.status_code == 200
    assert stale.status_code == 400


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({}, 400),
        ({"customer": "C99other"}, 400),
        ({"domain": "other.example"}, 400),
        ({"customer": "my_customer"}, 200),
        ({"customer": "C03fake01"}, 200),
        ({"domain": "example.com"}, 200),
    ],
)
async def test_users_and_groups_need_this_customer_or_domain(
    fake: FakeGoogle, token: str, params: dict[str, str], status: int
) -> None:
    """Without customer or domain, or with another's, users and groups listings answer 400."""
    users = await get(fake, "/users", token, **params)
    groups = await get(fake, "/groups", token, **params)

    assert (users.status_code, groups.status_code) == (status, status)
    if status == 400:
        assert reason(users) == "badRequest"


async def test_groups_by_user_key_refuse_a_customer_too(fake: FakeGoogle, token: str) -> None:
    """groups.list takes userKey alone; userKey with customer is a 400."""
    group = fake.add_group("mine@example.com")
    fake.add_member(group, next(iter(fake.users)))

    alone = (await get(fake, "/groups", token, userKey=ADMIN)).json()
    both = await get(fake, "/groups", token, userKey=ADMIN, customer="my_customer")

    assert [g["email"] for g in alone["groups"]] == ["mine@example.com"]
    assert both.status_code == 400


async def test_fields_trim_the_answer(fake: FakeGoogle, token: str) -> None:
    """fields=nextPageToken,users(id,name/givenName) returns only those fields, no kind nor etag."""
    fake.add_user("x@example.com", given_name="Xavier")

    body = (
        await get(
            fake,
            "/users",
            token,
            customer="my_customer",
            maxResults="1",
            fields="nextPageToken,users(id,name/givenName)",
        )
    ).json()

    assert set(body) == {"users", "nextPageToken"}
    assert set(body["users"][0]) == {"id", "name"}
    assert set(body["users"][0]["name"]) == {"givenName"}


@pytest.mark.parametrize("fields", ["users(id,nosuchfield)", "users(name/middleName)", "users(id", "bogus"])
async def test_fields_naming_what_the_resource_lacks_are_refused(fake: FakeGoogle, token: str, fields: str) -> None:
    """A fields expression naming an unknown field, or unbalanced, answers 400 invalidParameter."""
    response = await get(fake, "/users", token, customer="my_customer", fields=fields)

    assert (response.status_code, reason(response)) == (400, "invalidParameter")


async def test_unknown_query_parameters_are_refused(fake: FakeGoogle, token: str) -> None:
    """A parameter the method does not define (limit is Okta's) answers 400."""
    response = await get(fake, "/users", token, customer="my_customer", limit="10")

    assert response.status_code == 400


async def test_derived_membership_adds_nested_users_and_keeps_group_rows(fake: FakeGoogle, token: str) -> None:
    """includeDerivedMembership=true lists nested groups' users after the GROUP row, duplicates kept."""
    top, middle, bottom = (fake.add_group(f"{n}@example.com") for n in ("top", "middle", "bottom"))
    alice, bob = fake.add_user("alice@example.com"), fake.add_user("bob@example.com")
    fake.add_member(bottom, bob)
    fake.add_member(middle, alice, bottom)
    fake.add_member(top, alice, middle)

    direct = (await get(fake, f"/groups/{top}/members", token)).json()["members"]
    derived = (await get(fake, f"/groups/{top}/members", token, includeDerivedMembership="true")).json()["members"]

    assert [(m["type"], m["id"]) for m in direct] == [("USER", alice), ("GROUP", middle)]
    assert [(m["type"], m["id"]) for m in derived] == [
        ("USER", alice),
        ("GROUP", middle),
        ("USER", alice),
        ("GROUP", bottom),
        ("USER", bob),
    ]


async def test_a_cycle_is_refused_but_derived_listing_of_one_ends(fake: FakeGoogle, token: str) -> None:
    """add_member refuses a cycle as Google does; forced, a derived listing still ends, each group once."""
    a, b = fake.add_group("a@example.com"), fake.add_group("b@example.com")
    user = fake.add_user("c@example.com")
    fake.add_member(a, b)
    fake.add_member(b, user)
    with pytest.raises(ValueError, match="cycle"):
        fake.add_member(b, a)
    fake.add_member(b, a, allow_cycle=True)

    rows = (await get(fake, f"/groups/{a}/members", token, includeDerivedMembership="true")).json()["members"]

    assert [(m["type"], m["id"]) for m in rows] == [("GROUP", b), ("USER", user), ("GROUP", a)]


async def test_customer_and_external_members_are_rows_without_user_records(fake: FakeGoogle, token: str) -> None:
    """A CUSTOMER row has the customer id and no email; an outsider's USER row has an id no user has."""
    group = fake.add_group("mixed@example.com")
    fake.add_customer_member(group)
    outsider = fake.add_external_member(group, "partner@other.example")
    legacy = fake.add_external_member(group, "old@other.example", type="EXTERNAL")

    rows = (await get(fake, f"/groups/{group}/members", token)).json()["members"]
    user_ids = {u["id"] for u in (await get(fake, "/users", token, customer="my_customer")).json()["users"]}

    customer, external, other = rows
    assert (customer["type"], customer["id"], "email" in customer) == ("CUSTOMER", fake.customer_id, False)
    assert (external["type"], external["email"]) == ("USER", "partner@other.example")
    assert other["type"] == "EXTERNAL"
    assert not {outsider, legacy} & user_ids


async def test_group_key_is_an_id_an_email_or_an_alias(fake: FakeGoogle, token: str) -> None:
    """members.list finds a group by id, email or alias, and answers 404 notFound for anything else."""
    group = fake.add_group("keyed@example.com")
    fake.groups[group].aliases.append("alias@example.com")
    fake.add_member(group, next(iter(fake.users)))

    found = [
        await get(fake, f"/groups/{key}/members", token) for key in (group, "keyed@example.com", "alias@example.com")
    ]
    missing = await get(fake, "/groups/nobody@example.com/members", token)

    assert {len(r.json()["members"]) for r in found} == {1}
    assert (missing.status_code, reason(missing)) == (404, "notFound")


async def test_etags_change_with_the_resource_and_only_then(fake: FakeGoogle, token: str) -> None:
    """A user's etag is stable across reads and changes when the user does."""

    async def etag() -> str:
        users = (await get(fake, "/users", token, customer="my_customer")).json()["users"]
        return next(u["etag"] for u in users if u["primaryEmail"] == "e@example.com")

    user = fake.add_user("e@example.com")
    first, again = await etag(), await etag()
    fake.update_user(user, department="Finance")
    changed = await etag()

    assert first == again
    assert changed != first


async def test_show_deleted_lists_deleted_users_only(fake: FakeGoogle, token: str) -> None:
    """A deleted user leaves the listing and its groups; showDeleted=true lists it with a deletionTime."""
    gone = fake.add_user("gone@example.com")
    group = fake.add_group("g@example.com")
    fake.add_member(group, gone)
    fake.delete_user(gone)

    live = (await get(fake, "/users", token, customer="my_customer")).json()["users"]
    deleted = (await get(fake, "/users", token, customer="my_customer", showDeleted="true")).json()["users"]
    members = (await get(fake, f"/groups/{group}/members", token)).json()

    assert gone not in {u["id"] for u in live}
    assert [(u["id"], "deletionTime" in u) for u in deleted] == [(gone, True)]
    assert "members" not in members


async def test_suspended_and_archived_users_say_so(fake: FakeGoogle, token: str) -> None:
    """suspended and archived are booleans on every user; a suspended one has a suspensionReason."""
    fake.add_user("s@example.com", suspended=True)
    fake.add_user("a@example.com", archived=True)

    users = {u["primaryEmail"]: u for u in (await get(fake, "/users", token, customer="my_customer")).json()["users"]}

    assert (users["s@example.com"]["suspended"], users["s@example.com"]["suspensionReason"]) == (True, "ADMIN")
    assert (users["a@example.com"]["archived"], users["a@example.com"]["suspended"]) == (True, False)
    assert "suspensionReason" not in users[ADMIN]


async def test_enterprise_fields_come_as_organizations_external_ids_and_relations(fake: FakeGoogle, token: str) -> None:
    """Department, cost centre and title are in organizations[0]; the employee id an organization externalId;
    the manager a relation holding the manager's email."""
    fake.add_user("e@example.com", department="Eng", cost_center="CC1", title="Dev", employee_id="E7", manager=ADMIN)

    (user,) = [
        u
        for u in (await get(fake, "/users", token, customer="my_customer")).json()["users"]
        if u["primaryEmail"] == "e@example.com"
    ]

    assert user["organizations"] == [
        {"primary": True, "customType": "", "department": "Eng", "costCenter": "CC1", "title": "Dev"}
    ]
    assert user["externalIds"] == [{"value": "E7", "type": "organization"}]
    assert user["relations"] == [{"value": ADMIN, "type": "manager"}]


# --- auth and quotas -----------------------------------------------------------------------------


async def test_no_or_expired_token_is_401(fake: FakeGoogle, token: str) -> None:
    """Without a bearer token, or once it has expired, the Directory API answers 401 authError."""
    missing = await get(fake, "/users", None, customer="my_customer")
    fake.advance(3600)
    expired = await get(fake, "/users", token, customer="my_customer")

    assert (missing.status_code, reason(missing)) == (401, "authError")
    assert (expired.status_code, reason(expired)) == (401, "authError")


async def test_a_token_without_the_scope_is_403_insufficient_permissions(
    fake: FakeGoogle, account: ServiceAccount
) -> None:
    """A token with only the user scope may list users but not groups."""
    token = admin_token(fake, account, scopes=["https://www.googleapis.com/auth/admin.directory.user.readonly"])

    users = await get(fake, "/users", token, customer="my_customer")
    groups = await get(fake, "/groups", token, customer="my_customer")

    assert users.status_code == 200
    assert (groups.status_code, reason(groups)) == (403, "insufficientPermissions")


@pytest.mark.parametrize("subject", [None, "plain@example.com"])
async def test_acting_as_nobody_or_a_non_admin_is_403_not_authorized(
    fake: FakeGoogle, account: ServiceAccount, subject: str | None
) -> None:
    """A token without sub, or impersonating a user without admin rights, gets 403 "Not Authorized"."""
    fake.add_user("plain@example.com")
    token = fake.auth.issue(account.email, ["https://www.googleapis.com/auth/admin.directory.user.readonly"], subject)

    response = await get(fake, "/users", token, customer="my_customer")

    assert response.status_code == 403
    assert response.json()["error"]["message"] == "Not Authorized to access this resource/api"
    assert reason(response) == "forbidden"


async def test_the_per_user_quota_answers_403_user_rate_limit_exceeded_until_the_minute_is_over(
    fake: FakeGoogle, token: str
) -> None:
    """Past the queries-per-minute quota the answer is 403 userRateLimitExceeded (usageLimits), without
    rate-limit headers; a minute later queries pass again."""
    fake.quota_per_minute = 2

    answers = [await get(fake, "/users", token, customer="my_customer") for _ in range(3)]
    fake.advance(60)
    later = await get(fake, "/users", token, customer="my_customer")

    assert [r.status_code for r in answers] == [200, 200, 403]
    detail = answers[2].json()["error"]["errors"][0]
    assert (detail["reason"], detail["domain"]) == ("userRateLimitExceeded", "usageLimits")
    assert not [h for h in answers[2].headers if h.lower().startswith(("x-rate", "retry-after"))]
    assert later.status_code == 200


async def test_too_many_requests_in_flight_get_429_rate_limit_exceeded(fake: FakeGoogle, token: str) -> None:
    """With more requests in flight than the account allows, the extra ones get 429 rateLimitExceeded."""
    fake.max_concurrent = 2
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx2.AsyncClient(transport=fake.transport) as client:
        answers = await asyncio.gather(
            *(
                client.get(f"{API_URL}{DIRECTORY}/users", params={"customer": "my_customer"}, headers=headers)
                for _ in range(3)
            )
        )

    assert sorted(r.status_code for r in answers) == [200, 200, 429]
    assert fake.peak_in_flight == 3
    assert reason(next(r for r in answers if r.status_code == 429)) == "rateLimitExceeded"


@pytest.mark.parametrize(
    ("kind", "status", "why"),
    [
        ("userRateLimitExceeded", 403, "userRateLimitExceeded"),
        ("rateLimitExceeded", 429, "rateLimitExceeded"),
        ("quotaExceeded", 403, "quotaExceeded"),
        ("backendError", 503, "backendError"),
        ("notAuthorized", 403, "forbidden"),
    ],
)
async def test_injected_faults_answer_with_googles_reason_bodies(
    fake: FakeGoogle, token: str, kind: str, status: int, why: str
) -> None:
    """Each injected fault answers with its status and errors[0].reason, once, then the listing works."""
    fake.inject(kind, path=f"{DIRECTORY}/users")

    failed = await get(fake, "/users", token, customer="my_customer")
    retried = await get(fake, "/users", token, customer="my_customer")

    assert (failed.status_code, reason(failed)) == (status, why)
    assert retried.status_code == 200


async def test_the_done_when_domain_has_every_shape_the_issue_names(fake: FakeGoogle, token: str) -> None:
    """2,000 users and 300 groups: nesting three deep, a cycle, a group over 250, suspended and archived
    users, CUSTOMER and external members; a top group's derived listing holds its leaves' users."""
    domain = populate(fake)

    assert (len(domain.users), len(fake.groups)) == (2000, 300)
    assert len(fake.groups[domain.big].members) > 250
    assert all(map(len, (domain.suspended, domain.archived, domain.external, domain.customer_groups)))
    a, b = domain.cycle
    assert flattened(fake, a) == flattened(fake, b)
    top = domain.top[1]
    rows = (await get(fake, f"/groups/{top}/members", token, includeDerivedMembership="true")).json()["members"]
    assert {r["id"] for r in rows if r["type"] == "USER"} == flattened(fake, top)
    assert sum(r["type"] == "GROUP" for r in rows) == 3 + 3 * 2  # middle and leaf rows stay in
