"""Quotas and errors: rate-limit answers waited out, other 403s never retried, delegation explained."""

from __future__ import annotations

import pytest

from syncd.errors import SourceAuthError, SourceError
from tests.fakes.google import DIRECTORY, READ_SCOPES, FakeGoogle
from tests.fakes.google_auth import ServiceAccount
from tests.fakes.google_domain import expected_groups, populate
from tests.google.conftest import Clock, MakeSource, summary
from tests.reads import read


pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("kind", ["userRateLimitExceeded", "rateLimitExceeded", "backendError", 500, "network"])
async def test_throttling_and_server_errors_mid_listing_are_waited_out(
    fake: FakeGoogle, make_source: MakeSource, clock: Clock, kind: str | int
) -> None:
    """A 403 userRateLimitExceeded, a 429, a 503, a 500 or a dropped connection in the middle of the member
    listings is retried after a backoff on the fake clock, and the read is still exact."""
    populate(fake, users=300, groups=120, seed=5)
    fake.inject(kind, on=40, path=f"{DIRECTORY}/groups/")

    result = await read(make_source())

    assert summary(result)[1] == expected_groups(fake)
    assert len(clock.sleeps) == 1
    assert 1.0 <= clock.sleeps[0] <= 2.0  # the first exponential step, jitter included


@pytest.mark.parametrize(("kind", "where"), [("quotaExceeded", "groups/"), (400, "users"), (404, "groups")])
async def test_other_errors_are_not_retried_and_fail_the_read(
    fake: FakeGoogle, make_source: MakeSource, clock: Clock, kind: str | int, where: str
) -> None:
    """A 403 quotaExceeded, a 400 or a 404 on a listing is not retried: the read fails after one request."""
    fake.add_group("g@example.com")
    fake.inject(kind, path=f"{DIRECTORY}/{where}")

    with pytest.raises(SourceError) as caught:
        await read(make_source())

    assert not isinstance(caught.value, SourceAuthError)
    assert clock.sleeps == []
    assert len([c for c in fake.calls() if c.path.startswith(f"{DIRECTORY}/{where}")]) == 1
    assert f"HTTP {403 if kind == 'quotaExceeded' else kind}" in str(caught.value)


async def test_a_refused_derived_listing_is_listed_again_directly(fake: FakeGoogle, make_source: MakeSource) -> None:
    """A 400 on a derived member listing falls back to direct listings (expanded here), not to a failed read."""
    group = fake.add_group("g@example.com")
    fake.add_member(group, next(iter(fake.users)))
    fake.inject(400, path=f"{DIRECTORY}/groups/{group}")

    result = await read(make_source())

    assert [len(g.members) for g in result.groups] == [1]
    calls = fake.calls(f"{DIRECTORY}/groups/{group}/members")
    assert ["includeDerivedMembership" in c.params for c in calls] == [True, False]


async def test_a_listing_that_keeps_failing_fails_the_read(fake: FakeGoogle, make_source: MakeSource) -> None:
    """When the retries run out midway, the read raises instead of returning what it had."""
    for i in range(3):
        fake.add_group(f"g{i}@example.com")
    fake.inject(503, on=2, path=f"{DIRECTORY}/groups/", times=50)

    with pytest.raises(SourceError, match="503"):
        await read(make_source(max_retries=2))


async def test_queries_are_paced_to_the_per_minute_quota(
    fake: FakeGoogle, make_source: MakeSource, clock: Clock
) -> None:
    """With queries_per_minute at the fake's quota, the read waits for the minute instead of meeting a 403."""
    fake.quota_per_minute = 10
    for i in range(25):
        fake.add_group(f"g{i:02d}@example.com")

    await read(make_source(queries_per_minute=10, concurrency=2))

    assert not [r for r in fake.responses if r.status_code == 403]
    assert len(clock.sleeps) >= 2
    assert fake.directory_requests() == 1 + 1 + 25


async def _delegation_error(make_source: MakeSource) -> str:
    with pytest.raises(SourceAuthError) as caught:
        await read(make_source())
    return str(caught.value)


def _names_the_fix(message: str, client: str) -> None:
    assert "Domain-wide delegation" in message
    assert f"client ID {client}" in message
    assert all(scope in message for scope in READ_SCOPES)
    assert "admin@example.com" in message


async def test_unauthorized_client_names_the_client_id_and_scopes(
    fake: FakeGoogle, account: ServiceAccount, make_source: MakeSource
) -> None:
    """Delegation not authorised: the token endpoint's unauthorized_client becomes the message naming the fix."""
    fake.auth.delegations.clear()

    message = await _delegation_error(make_source)

    _names_the_fix(message, account.client_id)
    assert "unauthorized_client" in message
    assert fake.directory_requests() == 0


async def test_not_authorized_from_the_directory_names_the_same_fix(
    fake: FakeGoogle, account: ServiceAccount, make_source: MakeSource
) -> None:
    """An admin_email without admin rights gets 403 Not Authorized, and the same plain message, not retried."""
    fake.add_user("plain@example.com")

    with pytest.raises(SourceAuthError) as caught:
        await read(make_source(admin_email="plain@example.com"))

    message = str(caught.value)
    assert "Not Authorized" in message
    assert f"client ID {account.client_id}" in message
    assert "plain@example.com" in message
    assert fake.directory_requests() == 1


async def test_an_admin_email_unknown_to_google_says_so(fake: FakeGoogle, make_source: MakeSource) -> None:
    """A sub that is no user of the domain is named, with the setting to fix."""
    with pytest.raises(SourceAuthError, match="admin_email"):
        await read(make_source(admin_email="ghost@example.com"))


async def test_the_token_is_fetched_once_and_reused(fake: FakeGoogle, make_source: MakeSource) -> None:
    """One assertion is traded for a token that serves every request of two reads; its JWT is Google's shape."""
    source = make_source()
    await read(source)
    await read(source)

    (claims,) = fake.auth.assertions
    assert claims["sub"] == "admin@example.com"
    assert claims["scope"].split() == list(READ_SCOPES)
    assert claims["exp"] - claims["iat"] == 3600
