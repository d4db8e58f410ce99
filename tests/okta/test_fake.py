"""The fake Okta itself: it must refuse and hide what Okta refuses and hides, or the connector tests prove little."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest

from tests.fakes.okta import FakeOkta, okta_time


pytestmark = pytest.mark.anyio


async def _get(fake: FakeOkta, path: str, **params: str) -> httpx2.Response:
    async with httpx2.AsyncClient(transport=fake.transport) as client:
        return await client.get(f"{fake.url}{path}", params=params, headers={"Authorization": f"SSWS {fake.token}"})


def _ids(response: httpx2.Response) -> list[Any]:
    return [item["id"] for item in response.json()]


async def test_the_default_user_listing_hides_deprovisioned_users(fake: FakeOkta) -> None:
    """Without search or filter, DEPROVISIONED users are left out; search=status pr shows them."""
    active, gone = fake.add_user(), fake.add_user(status="DEPROVISIONED")

    assert _ids(await _get(fake, "/api/v1/users")) == [active]
    assert _ids(await _get(fake, "/api/v1/users", search="status pr")) == [active, gone]


@pytest.mark.parametrize(
    "expression",
    [
        "status pr",  # filter has no pr
        'lastUpdated gt "2025-06-15"',  # the date needs yyyy-MM-ddTHH:mm:ss.SSSZ
        'profile.department eq "Eng"',  # not a filterable field
        'status ne "ACTIVE"',  # no ne
        'lastUpdated gt "2025-06-15T00:00:00.000Z" and',
    ],
)
async def test_filters_okta_rejects_get_e0000031(fake: FakeOkta, expression: str) -> None:
    """User filters outside Okta's fields, operators or date form are refused with 400 E0000031."""
    response = await _get(fake, "/api/v1/users", filter=expression)

    assert (response.status_code, response.json()["errorCode"]) == (400, "E0000031")


async def test_the_lastupdated_filter_returns_every_status(fake: FakeOkta) -> None:
    """filter=lastUpdated gt returns users changed since, DEPROVISIONED ones included."""
    fake.add_user()
    since = okta_time(fake.now)
    fake.advance(10)
    changed = fake.add_user(status="DEPROVISIONED")

    assert _ids(await _get(fake, "/api/v1/users", filter=f'lastUpdated gt "{since}"')) == [changed]


async def test_pages_are_capped_and_linked(fake: FakeOkta) -> None:
    """A users page holds at most 200 even when more is asked, with separate self and next Link headers."""
    for _ in range(201):
        fake.add_user()

    response = await _get(fake, "/api/v1/users", limit="500")

    assert len(response.json()) == 200
    links = response.headers.get_list("link")
    assert len(links) == 2
    assert links[0].endswith('rel="self"')
    assert f"after={response.json()[-1]['id']}" in links[1]
    assert links[1].endswith('rel="next"')


async def test_member_listings_ignore_filter(fake: FakeOkta) -> None:
    """/groups/{id}/users honours only limit and after: a filter changes nothing."""
    group = fake.add_group("g")
    a, b = fake.add_user(), fake.add_user(status="SUSPENDED")
    fake.add_member(group, a, b)

    response = await _get(fake, f"/api/v1/groups/{group}/users", filter='status eq "ACTIVE"')

    assert _ids(response) == [a, b]


async def test_every_response_carries_date_and_rate_limit_headers(fake: FakeOkta) -> None:
    """Success and error responses alike carry Date and X-Rate-Limit-*; an exhausted bucket answers 429."""
    fake.limits["groups"] = 2
    answers = [await _get(fake, "/api/v1/groups") for _ in range(3)]

    assert [r.status_code for r in answers] == [200, 200, 429]
    assert answers[2].json()["errorCode"] == "E0000047"
    for response in answers:
        assert {"date", "x-rate-limit-limit", "x-rate-limit-remaining", "x-rate-limit-reset"} <= set(response.headers)
    fake.advance(60)
    assert (await _get(fake, "/api/v1/groups")).status_code == 200
