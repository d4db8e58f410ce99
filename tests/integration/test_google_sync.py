"""`syncd sync` from a fake Google Workspace domain (over real HTTP) into the emulator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.emulator import RunningEmulator
from tests.conftest import TOKEN
from tests.fakes.google import FakeGoogle
from tests.fakes.google_auth import ServiceAccount, new_key
from tests.fakes.google_domain import expected_groups, populate
from tests.fakes.serve import serve
from tests.google.conftest import Keys, workload_adc
from tests.integration.cli import idc_view, sync


ADMIN = "admin@example.com"


@pytest.fixture
def google() -> Iterator[FakeGoogle]:
    """A fake domain served over HTTP: Directory API, token endpoint and IAM on one local address."""
    with serve() as served:
        fake = FakeGoogle(
            api_url=served.url, token_uri=f"{served.url}/token", iam_url=served.url, sts_url=served.url, live=True
        )
        fake.add_user(ADMIN, admin=True)
        served.handler = fake.handler
        yield fake


@pytest.fixture
def account(google: FakeGoogle) -> ServiceAccount:
    """syncd's service account, delegated the three read scopes."""
    service_account = google.add_service_account()
    google.delegate(service_account)
    return service_account


def write_config(path: Path, google: FakeGoogle, account: ServiceAccount, emu: RunningEmulator) -> Path:
    key = path / "key.json"
    key.write_text(json.dumps(google.auth.key_json(account)), encoding="utf-8")
    config = path / "syncd.toml"
    config.write_text(
        f"""
[source]
type = "google"
[source.google]
credentials = "file:{key}"
admin_email = "{ADMIN}"
api_url = "{google.api_url}"

[target]
scim_url = "{emu.url}"
scim_token = "env:SYNCD_TEST_SCIM_TOKEN"
requests_per_second = 1000

[cache]
url = "sqlite:///{path / "syncd.db"}"
""",
        encoding="utf-8",
    )
    return config


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SCIM token, as the config's env: reference expects it."""
    monkeypatch.setenv("SYNCD_TEST_SCIM_TOKEN", TOKEN)


@pytest.mark.usefixtures("env")
def test_a_domain_converges_flattened_then_no_change_writes_nothing_and_one_change_one_patch(
    google: FakeGoogle, account: ServiceAccount, emulator: RunningEmulator, tmp_path: Path
) -> None:
    """2,000 users and 300 nested groups (a cycle, a 260-member group, CUSTOMER and outside members) converge
    exactly, through a 403 userRateLimitExceeded mid-listing; a rerun writes nothing; one membership, one PATCH."""
    domain = populate(google)
    google.inject("userRateLimitExceeded", on=60, path="/admin/directory/v1/groups/")
    config = write_config(tmp_path, google, account, emulator)

    code, out = sync(config)

    assert (0, "ok") == (code, out["status"]), out.get("errors")
    assert any(r.status_code == 403 for r in google.responses)
    want_groups = expected_groups(google)
    members = set().union(*want_groups.values())
    idc_users, idc_groups = idc_view(emulator)
    want_users = {uid: (u.email, not (u.suspended or u.archived)) for uid, u in google.users.items() if uid in members}
    assert want_users == idc_users
    assert want_groups == idc_groups
    assert len(idc_groups[google.groups[domain.top[0]].name]) > len(google.groups[domain.top[0]].members)

    emulator.stats.reset()
    code, out = sync(config)
    assert (0, "ok") == (code, out["status"]), out
    assert 0 == emulator.stats.writes

    team = next(g for g in google.groups.values() if g.name == "team-200")
    newcomer = next(u for u in domain.users if u not in {m.id for m in team.members} and u in members)
    google.add_member(team.id, newcomer)
    emulator.stats.reset()
    code, out = sync(config)
    assert (0, "ok") == (code, out["status"]), out
    assert {"PATCH /Groups": 1} == emulator.stats.by_method
    assert newcomer in idc_view(emulator)[1]["team-200"]


@pytest.mark.usefixtures("env")
def test_a_delegation_error_exits_4_naming_the_fix(
    google: FakeGoogle, account: ServiceAccount, emulator: RunningEmulator, tmp_path: Path
) -> None:
    """Delegation not authorised in the Admin console: exit 4 (authentication), the message names the client
    id and scopes, and nothing is written."""
    google.auth.delegations.clear()
    group = google.add_group("aws@example.com")
    google.add_member(group, next(iter(google.users)))

    code, out = sync(write_config(tmp_path, google, account, emulator))

    assert (4, "failed") == (code, out["status"])
    message = out["errors"][0]
    assert f"client ID {account.client_id}" in message
    assert "Domain-wide delegation" in message
    assert "admin.directory.group.member.readonly" in message
    assert "PRIVATE KEY" not in json.dumps(out)
    assert 0 == emulator.stats.writes


@pytest.mark.usefixtures("env")
def test_keyless_sync_signs_through_iam_and_converges(
    google: FakeGoogle,
    account: ServiceAccount,
    emulator: RunningEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With service_account and no key file, ADC from workload identity federation (an OIDC token traded
    at STS) signs through signJwt and the sync converges, nesting flattened."""
    issuer_key = new_key()
    config_file, principal = workload_adc(google, Keys(issuer_key, issuer_key, issuer_key), tmp_path)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(config_file))
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "syncd-test")  # else ADC asks Resource Manager for it
    account.token_creators.add(principal)
    outer, inner = google.add_group("aws-outer@example.com"), google.add_group("aws-inner@example.com")
    alice, bob = google.add_user("alice@example.com"), google.add_user("bob@example.com")
    google.add_member(inner, bob)
    google.add_member(outer, alice, inner)
    config = tmp_path / "syncd.toml"
    config.write_text(
        write_config(tmp_path, google, account, emulator)
        .read_text(encoding="utf-8")
        .replace(
            f'credentials = "file:{tmp_path / "key.json"}"',
            f'service_account = "{account.email}"\ntoken_uri = "{google.token_uri}"\niam_url = "{google.iam_url}"',
        ),
        encoding="utf-8",
    )

    code, out = sync(config)

    assert (0, "ok") == (code, out["status"]), out.get("errors")
    assert idc_view(emulator)[1] == {"aws-outer": frozenset({alice, bob}), "aws-inner": frozenset({bob})}
    assert [p["iss"] for p in google.auth.signed] == [account.email]
