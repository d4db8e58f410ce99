"""The fake Graph's delta queries and throttling, rule by rule."""

from __future__ import annotations

from typing import Any

import pytest

from tests.entra.conftest import body, graph
from tests.fakes.entra import FakeEntra
from tests.fakes.entra_delta import SYNC_STATE_NOT_FOUND


pytestmark = pytest.mark.anyio

USERS = {"$select": "id,userPrincipalName,accountEnabled"}
GROUPS = {"$select": "displayName,description,members"}


async def _round(fake: FakeEntra, first: str, params: dict[str, str] | None = None) -> tuple[list[Any], str, int]:
    """Follow a delta round to its delta link: (entries, delta link, pages)."""
    page = body(await graph(fake, first, params))
    entries, pages = list(page["value"]), 1
    while "@odata.nextLink" in page:
        assert "@odata.deltaLink" not in page
        page = body(await graph(fake, page["@odata.nextLink"]))
        entries += page["value"]
        pages += 1
    return entries, page["@odata.deltaLink"], pages


async def test_the_initial_round_returns_everything_then_a_delta_link(fake: FakeEntra) -> None:
    """The first /users/delta round pages with next links (never with both links) and ends in a delta link."""
    fake.delta.page_size = 2
    users = [fake.add_user(f"u{i}.x") for i in range(5)]

    entries, link, pages = await _round(fake, "/users/delta", USERS)

    assert sorted(e["id"] for e in entries) == sorted(users)
    assert pages == 3
    assert link.startswith(f"{fake.graph_url}/v1.0/users/delta?")
    assert "deltatoken=" in link


async def test_latest_gives_a_delta_link_and_no_data(fake: FakeEntra) -> None:
    """$deltatoken=latest returns no objects and a delta link; changes after it come through it."""
    fake.add_user("old.user")

    page = body(await graph(fake, "/users/delta", {**USERS, "$deltatoken": "latest"}))
    new = fake.add_user("new.user")
    entries, _, _ = await _round(fake, page["@odata.deltaLink"])

    assert page["value"] == []
    assert [e["id"] for e in entries] == [new]


async def test_only_selected_properties_are_tracked(fake: FakeEntra) -> None:
    """A change to a property outside $select is not reported; one inside is, with the selected properties."""
    watched, ignored = fake.add_user("w.x"), fake.add_user("i.x")
    _, link, _ = await _round(fake, "/users/delta", USERS)
    fake.update_user(ignored, jobTitle="Chief")
    fake.disable_user(watched)

    entries, _, _ = await _round(fake, link)

    assert entries == [{"id": watched, "userPrincipalName": "w.x@contoso.onmicrosoft.com", "accountEnabled": False}]


async def test_return_minimal_sends_only_what_changed(fake: FakeEntra) -> None:
    """With Prefer: return=minimal on the first call, a change carries only the changed properties."""
    user = fake.add_user("w.x")
    first = body(await graph(fake, "/users/delta", {**USERS, "$deltatoken": "latest"}, {"Prefer": "return=minimal"}))
    fake.disable_user(user)

    entries, _, _ = await _round(fake, first["@odata.deltaLink"])

    assert entries == [{"id": user, "accountEnabled": False}]


async def test_deleted_objects_come_as_removed_with_a_reason(fake: FakeEntra) -> None:
    """A soft-deleted user is @removed reason changed; a permanently deleted one reason deleted."""
    soft, hard = fake.add_user("s.x"), fake.add_user("h.x")
    _, link, _ = await _round(fake, "/users/delta", USERS)
    fake.delete_user(soft)
    fake.delete_user(hard, permanently=True)

    entries, _, _ = await _round(fake, link)

    assert sorted(entries, key=lambda e: e["id"]) == sorted(
        [{"id": soft, "@removed": {"reason": "changed"}}, {"id": hard, "@removed": {"reason": "deleted"}}],
        key=lambda e: e["id"],
    )


async def test_group_delta_reports_direct_member_changes_as_ids(fake: FakeEntra) -> None:
    """members@delta holds @odata.type and id of direct members only; a removal carries @removed."""
    group, inner = fake.add_group("g"), fake.add_group("inner")
    a, b, c = fake.add_user("a.x"), fake.add_user("b.x"), fake.add_user("c.x")
    fake.add_members(group, a, inner)
    fake.add_members(inner, b)
    initial, link, _ = await _round(fake, "/groups/delta", GROUPS)
    fake.remove_members(group, a)
    fake.add_members(inner, c)

    entries, _, _ = await _round(fake, link)

    first = {e["id"]: e for e in initial}
    assert first[group]["members@delta"] == [
        {"@odata.type": "#microsoft.graph.user", "id": a},
        {"@odata.type": "#microsoft.graph.group", "id": inner},
    ]
    assert first[group]["displayName"] == "g"
    changed = {e["id"]: e["members@delta"] for e in entries}
    assert changed == {
        group: [{"@odata.type": "#microsoft.graph.user", "id": a, "@removed": {"reason": "deleted"}}],
        inner: [{"@odata.type": "#microsoft.graph.user", "id": c}],
    }


async def test_a_large_group_is_split_over_pages(fake: FakeEntra) -> None:
    """A group with more members than a slice comes back on several pages, one slice per page, adding up."""
    fake.delta.member_slice = 3
    group = fake.add_group("big")
    users = [fake.add_user(f"u{i}.x") for i in range(8)]
    fake.add_members(group, *users)

    page = body(await graph(fake, "/groups/delta", GROUPS))
    seen, pages = [], []
    while True:
        slices = [e for e in page["value"] if e["id"] == group]
        pages.append(len(slices))
        seen += [m["id"] for s in slices for m in s["members@delta"]]
        if "@odata.nextLink" not in page:
            break
        page = body(await graph(fake, page["@odata.nextLink"]))

    assert pages == [1, 1, 1]
    assert sorted(seen) == sorted(users)


async def test_a_week_old_delta_link_is_sync_state_not_found(fake: FakeEntra) -> None:
    """A delta token more than 7 days old is 400 syncStateNotFound; a 6-day-old one still works."""
    fake.add_user("a.x")
    _, link, _ = await _round(fake, "/users/delta", USERS)
    fake.advance(6 * 86400)
    assert (await graph(fake, link)).status_code == 200
    fake.advance(1 * 86400 + 1)

    response = await graph(fake, link)

    assert response.status_code == 400
    assert response.json()["error"] | {"innerError": None} == {
        "code": "syncStateNotFound",
        "message": SYNC_STATE_NOT_FOUND,
        "innerError": None,
    }


async def test_a_forced_resync_is_410_with_a_location(fake: FakeEntra) -> None:
    """After force_resync the delta link answers 410 Gone with a Location to start over."""
    _, link, _ = await _round(fake, "/groups/delta", GROUPS)
    fake.force_resync("groups")

    response = await graph(fake, link)

    assert response.status_code == 410
    assert response.headers["location"] == f"{fake.graph_url}/v1.0/groups/delta"


@pytest.mark.parametrize("option", [{"$top": "10"}, {"$expand": "members"}, {"$orderby": "displayName"}])
async def test_delta_refuses_top_expand_and_orderby(fake: FakeEntra, option: dict[str, str]) -> None:
    """$top, $expand and $orderby are not supported on delta: 400."""
    assert (await graph(fake, "/groups/delta", option)).status_code == 400


async def test_delta_filters_only_by_id_for_up_to_50(fake: FakeEntra) -> None:
    """$filter=id eq '…' (or-joined) scopes the round; other filters and 51 ids are refused."""
    wanted, _ = fake.add_user("a.x"), fake.add_user("b.x")

    entries, _, _ = await _round(fake, "/users/delta", {**USERS, "$filter": f"id eq '{wanted}'"})
    many = " or ".join(f"id eq '{i}'" for i in range(51))

    assert [e["id"] for e in entries] == [wanted]
    assert (await graph(fake, "/users/delta", {"$filter": "accountEnabled eq true"})).status_code == 400
    assert (await graph(fake, "/users/delta", {"$filter": many})).status_code == 400


async def test_query_options_are_carried_by_the_tokens(fake: FakeEntra) -> None:
    """The delta link remembers $select: the next round returns the same properties without repeating it."""
    user = fake.add_user("a.x")
    _, link, _ = await _round(fake, "/users/delta", USERS)
    fake.disable_user(user)

    entries, _, _ = await _round(fake, link)

    assert set(entries[0]) == {"id", "userPrincipalName", "accountEnabled"}


async def test_responses_carry_resource_units_and_the_throttle_percentage_above_80(fake: FakeEntra) -> None:
    """Responses carry x-ms-resource-unit (users with $select: 1); x-ms-throttle-limit-percentage past 80 %."""
    fake.resource_units = 10
    answers = [await graph(fake, "/users", {"$select": "id"}) for _ in range(9)]

    assert {r.headers["x-ms-resource-unit"] for r in answers} == {"1"}
    assert "x-ms-throttle-limit-percentage" not in answers[7].headers
    assert answers[8].headers["x-ms-throttle-limit-percentage"] == "0.9"


async def test_an_empty_bucket_answers_429_with_retry_after_on_some_only(fake: FakeEntra) -> None:
    """Past the bucket: 429 TooManyRequests with x-ms-throttle-scope, every other without Retry-After; refills."""
    fake.resource_units = 2
    answers = [await graph(fake, "/users", {"$select": "id"}) for _ in range(4)]

    assert [r.status_code for r in answers] == [200, 200, 429, 429]
    assert answers[2].json()["error"]["code"] == "TooManyRequests"
    assert "x-ms-throttle-scope" in answers[2].headers
    assert ("retry-after" in answers[2].headers, "retry-after" in answers[3].headers) == (True, False)
    fake.advance(10)
    assert (await graph(fake, "/users", {"$select": "id"})).status_code == 200


@pytest.mark.parametrize(("status", "retry_after"), [(429, 3.0), (429, None), (503, 7.0), (504, None)])
async def test_injected_failures_carry_retry_after_when_asked(
    fake: FakeEntra, status: int, retry_after: float | None
) -> None:
    """inject() answers the status with or without Retry-After, then lets requests through."""
    fake.inject(status, path="/v1.0/users", retry_after=retry_after)

    failed = await graph(fake, "/users")
    passed = await graph(fake, "/users")

    assert failed.status_code == status
    assert failed.headers.get("retry-after") == (None if retry_after is None else str(int(retry_after)))
    assert passed.status_code == 200
