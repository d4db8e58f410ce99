"""A connector made only of kit parts (tests/kit/connector.py) reads fully, then incrementally."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest

from connectors.base import Deps, ReadContext
from syncd.errors import SourceAuthError
from syncd.model import SourceRead
from syncd.normalise import Scope
from tests.kit.conftest import Sleeps
from tests.kit.connector import ACME, AcmeSettings, AcmeSource
from tests.kit.fake_acme import FakeAcme


pytestmark = pytest.mark.anyio


def _source(fake: FakeAcme, sleeps: Sleeps | None = None, **settings: Any) -> AcmeSource:
    data = {"url": fake.url, "client_id": fake.client_id, "client_secret": fake.client_secret, **settings}
    deps = Deps(
        transport=fake.transport,
        sleep=sleeps if sleeps is not None else Sleeps(),
        random=lambda: 0.0,
        clock=lambda: 1000.0,
    )
    source = ACME.factory(AcmeSettings.model_validate(data), deps)
    assert isinstance(source, AcmeSource)
    return source


async def _read(source: AcmeSource, previous: SourceRead | None = None) -> SourceRead:
    state = previous.state if previous is not None else {}
    return await source.read(ReadContext(Scope(), full=previous is None, state=state))


def _view(read: SourceRead) -> tuple[dict[str, tuple[str | None, bool]], dict[str, tuple[str | None, set[str]]]]:
    return (
        {u.id: (u.user_name, u.active) for u in read.users},
        {g.id: (g.name, set(g.members)) for g in read.groups},
    )


def _org(fake: FakeAcme) -> None:
    for n in range(5):
        fake.put_user(f"u{n}", f"user{n}@example.com")
    fake.put_group("g1", "eng")
    fake.put_group("g2", "ops")
    for n in range(3):
        fake.member("g1", f"u{n}")
    fake.member("g2", "u4")


async def test_a_full_read_follows_every_page_with_one_token() -> None:
    """The first read pages through both listings (two items a page) with one access token."""
    fake = FakeAcme()
    _org(fake)
    source = _source(fake)

    result = await _read(source)

    users, groups = _view(result)
    assert set(users) == {"u0", "u1", "u2", "u3", "u4"}
    assert groups == {"g1": ("eng", {"u0", "u1", "u2"}), "g2": ("ops", {"u4"})}
    assert len(fake.tokens) == 1
    assert result.requests == len(fake.requests) == 1 + 3 + 1  # token, 3 user pages, 1 group page
    assert source.stats.by_status == {200: 5}


async def test_the_next_read_asks_only_for_changes_and_merges_them() -> None:
    """From the kept delta links: a removed user leaves its group, a rename keeps members, joins land."""
    fake = FakeAcme()
    _org(fake)
    source = _source(fake)
    first = await _read(source)
    fake.requests.clear()
    fake.remove_user("u1")
    fake.member("g1", "u1", added=False)
    fake.put_group("g1", "engineering")
    fake.member("g2", "u3")
    fake.put_user("u5", "new@example.com", enabled=False)

    second = await _read(source, first)

    users, groups = _view(second)
    assert "u1" not in users
    assert users["u5"] == ("new@example.com", False)
    assert groups == {"g1": ("engineering", {"u0", "u2"}), "g2": ("ops", {"u3", "u4"})}
    assert all("token=" in str(r.url) for r in fake.requests)  # resumed from the delta links
    assert second.requests == 2


async def test_throttling_waits_as_the_server_says() -> None:
    """A 429 and a 503 with Retry-After are each waited out for that long, then the read completes."""
    fake = FakeAcme()
    _org(fake)
    sleeps = Sleeps()
    source = _source(fake, sleeps)
    await _read(source)  # a token first
    fake.faults = [
        httpx2.Response(429, headers={"Retry-After": "7"}),
        httpx2.Response(503, headers={"Retry-After": "3"}),
    ]

    result = await _read(source)

    assert sleeps == [7.0, 3.0]
    assert len(result.users) == 5
    assert source.stats.by_status[429] == source.stats.by_status[503] == 1


async def test_a_revoked_token_is_replaced_once() -> None:
    """A 401 mid-read fetches one new token and the read goes on."""
    fake = FakeAcme()
    _org(fake)
    source = _source(fake)
    first = await _read(source)
    fake.tokens.clear()

    await _read(source, first)

    assert len(fake.tokens) == 1
    assert [r.url.path for r in fake.requests].count("/token") == 2


async def test_a_wrong_secret_is_an_auth_error_without_the_secret() -> None:
    """The token endpoint's refusal is a SourceAuthError naming the error, never the secret."""
    fake = FakeAcme()
    source = _source(fake, client_secret="not-it")

    with pytest.raises(SourceAuthError, match="invalid_client") as caught:
        await _read(source)
    assert "not-it" not in str(caught.value)
