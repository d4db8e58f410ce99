"""Deleted users on incremental reads: a rehire's login is freed at once, the System Log is read when allowed."""

from __future__ import annotations

from typing import Any

import pytest

from syncd.model import SourceRead
from tests.fakes.okta import FakeOkta
from tests.okta.conftest import Keys, MakeSource, expected, read, summary


pytestmark = pytest.mark.anyio

LOGS_SCOPES = ("okta.users.read", "okta.groups.read", "okta.logs.read")


async def _first(fake: FakeOkta, make_source: MakeSource, **settings: Any) -> tuple[SourceRead, Any, list[str]]:
    users = [fake.add_user(f"user{i}@example.com") for i in range(3)]
    fake.add_member(fake.add_group("staff"), *users)
    source = make_source(**settings)
    first = await read(source)
    fake.advance(600)
    fake.requests.clear()
    return first, source, users


async def test_a_rehire_with_the_same_login_replaces_the_deleted_user_in_one_read(
    fake: FakeOkta, make_source: MakeSource
) -> None:
    """A new user taking a deleted user's login: one GET by id finds the old one gone (404); only the new one stays."""
    first, source, users = await _first(fake, make_source)
    fake.delete_user(users[0])
    rehire = fake.add_user("user0@example.com")

    result = await read(source, full=False, state=first.state)

    ids = {u.id for u in result.users}
    assert rehire in ids
    assert users[0] not in ids
    assert [c.path for c in fake.calls("/api/v1/users/*")] == [f"/api/v1/users/{users[0]}"]
    assert summary(result) == expected(fake)


async def test_a_login_moved_to_a_new_user_while_the_old_one_lives_keeps_both(
    fake: FakeOkta, make_source: MakeSource
) -> None:
    """If the old holder still exists (its login changed meanwhile), the lookup refreshes it instead of dropping it."""
    first, source, users = await _first(fake, make_source)
    fake.update_user(users[1], login="moved@example.com")
    fake.users[users[1]].last_updated = fake.now - 3600  # as if the index had not caught up yet
    newcomer = fake.add_user("user1@example.com")

    result = await read(source, full=False, state=first.state)

    by_id = {u.id: u.user_name for u in result.users}
    assert by_id[users[1]] == "moved@example.com"
    assert by_id[newcomer] == "user1@example.com"
    assert len(fake.calls("/api/v1/users/*")) == 1


async def test_no_lookup_when_no_login_is_claimed(fake: FakeOkta, make_source: MakeSource) -> None:
    """An ordinary new user costs no lookup by id."""
    first, source, _ = await _first(fake, make_source)
    fake.add_user("someone.new@example.com")

    await read(source, full=False, state=first.state)

    assert fake.calls("/api/v1/users/*") == []


async def test_the_system_log_removes_deleted_users_at_once(fake: FakeOkta, make_source: MakeSource) -> None:
    """With a token that may read the System Log, a deleted user leaves on the next incremental read."""
    fake.token_scopes = frozenset(LOGS_SCOPES)
    first, source, users = await _first(fake, make_source, system_log=True)
    fake.delete_user(users[2])

    result = await read(source, full=False, state=first.state)

    assert users[2] not in {u.id for u in result.users}
    assert summary(result) == expected(fake)
    (call,) = fake.calls("/api/v1/logs")
    assert call.params["filter"] == (
        'eventType eq "user.lifecycle.delete.completed" or eventType eq "group.lifecycle.delete.completed"'
    )
    assert {"since", "until"} <= call.params.keys()  # a bounded query, which ends


async def test_the_system_log_with_oauth_needs_its_scope(fake: FakeOkta, make_source: MakeSource, keys: Keys) -> None:
    """A service app granted okta.logs.read (and asking for it) sees deletions at once too."""
    fake.add_oauth_client("0oa-app", keys.public, LOGS_SCOPES)
    first, source, users = await _first(
        fake, make_source, client_id="0oa-app", private_key=keys.pem, scopes=list(LOGS_SCOPES), system_log=True
    )
    fake.delete_user(users[0])

    result = await read(source, full=False, state=first.state)

    assert users[0] not in {u.id for u in result.users}


async def test_without_the_system_log_the_read_goes_on_and_stops_asking(
    fake: FakeOkta, make_source: MakeSource
) -> None:
    """A 403 on the System Log is not an error: the deleted user lingers, and later reads do not ask again."""
    first, source, users = await _first(fake, make_source, system_log=True)
    fake.delete_user(users[2])

    second = await read(source, full=False, state=first.state)
    fake.advance(60)
    third = await read(source, full=False, state=second.state)

    assert users[2] in {u.id for u in second.users}  # the full read removes it later
    assert [r.status_code for r in fake.responses if r.request.url.path == "/api/v1/logs"] == [403]
    assert users[2] in {u.id for u in third.users}


async def test_the_system_log_is_not_read_unless_asked(fake: FakeOkta, make_source: MakeSource) -> None:
    """By default an incremental read makes no System Log request (it costs one per read)."""
    fake.token_scopes = frozenset(LOGS_SCOPES)
    first, source, _ = await _first(fake, make_source)

    await read(source, full=False, state=first.state)

    assert fake.calls("/api/v1/logs") == []


def test_system_log_with_oauth_needs_the_scope_listed(keys: Keys) -> None:
    """OAuth with system_log but without okta.logs.read in scopes is a settings error naming the scope."""
    from connectors.okta import OktaSettings

    with pytest.raises(ValueError, match=r"system_log needs the scope okta\.logs\.read"):
        OktaSettings.model_validate(
            {"url": "https://acme.okta.com", "client_id": "0oa", "private_key": keys.pem, "system_log": True}
        )


async def test_the_fake_s_polling_log_query_always_has_a_next_page(fake: FakeOkta) -> None:
    """A check of the fake: without until, a page of events links to a next one; with until it ends."""
    import httpx2

    fake.token_scopes = frozenset(LOGS_SCOPES)
    fake.delete_user(fake.add_user())
    async with httpx2.AsyncClient(transport=fake.transport) as client:
        headers = {"Authorization": f"SSWS {fake.token}"}
        polling = await client.get(f"{fake.url}/api/v1/logs", headers=headers)
        bounded = await client.get(
            f"{fake.url}/api/v1/logs",
            params={"since": "2025-01-01T00:00:00.000Z", "until": "2030-01-01T00:00:00.000Z"},
            headers=headers,
        )

    assert len(polling.json()) == 1
    assert 'rel="next"' in ",".join(polling.headers.get_list("link"))
    assert 'rel="next"' not in ",".join(bounded.headers.get_list("link"))
