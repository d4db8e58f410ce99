"""`syncd sync` from a fake Entra tenant (over real HTTP) into the emulator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from typer.testing import CliRunner

from syncd.emulator import RunningEmulator
from tests.conftest import TOKEN
from tests.entra.conftest import CLIENT_ID, CLIENT_SECRET, ISSUER, SUBJECT, federated_token
from tests.fakes.entra import FakeEntra, FederatedCredential
from tests.fakes.entra_tenant import build_tenant
from tests.fakes.serve import serve
from tests.integration.cli import idc_view, sync


runner = CliRunner()


@pytest.fixture
def entra() -> Iterator[FakeEntra]:
    """A fake tenant served over HTTP (Graph and the token endpoint on one origin), with a secret app."""
    with serve() as served:
        fake = FakeEntra(graph_url=served.url, login_url=served.url, resource_units=1_000_000)
        fake.add_app(CLIENT_ID, secret=CLIENT_SECRET)
        served.handler = fake.handler
        yield fake


@pytest.fixture(scope="module")
def issuer_key() -> rsa.RSAPrivateKey:
    """The outside OIDC issuer's signing key."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SCIM token and the client secret, as the config's env: references expect them."""
    monkeypatch.setenv("SYNCD_TEST_SCIM_TOKEN", TOKEN)
    monkeypatch.setenv("SYNCD_TEST_ENTRA_SECRET", CLIENT_SECRET)
    monkeypatch.delenv("AZURE_FEDERATED_TOKEN_FILE", raising=False)


def write_config(path: Path, entra: FakeEntra, emu: RunningEmulator, credential: str | None = None) -> Path:
    config = path / "syncd.toml"
    credential = credential or 'client_secret = "env:SYNCD_TEST_ENTRA_SECRET"'
    config.write_text(
        f"""
[source]
type = "entra"
[source.entra]
tenant_id = "{entra.tenant_id}"
client_id = "{CLIENT_ID}"
{credential}
login_url = "{entra.login_url}"
graph_url = "{entra.graph_url}"
full_read_every = "30d"

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


def wanted(fake: FakeEntra) -> tuple[dict[str, tuple[str, bool]], dict[str, frozenset[str]]]:
    """What Identity Center should hold: members of any group (users = "members"), no guests, nesting flattened."""
    people = {u.id: u for u in fake.users() if u.props["userType"] == "Member"}
    groups = {g.props["displayName"]: frozenset(m for m in fake.transitive(g.id) if m in people) for g in fake.groups()}
    members = set().union(*groups.values())
    users = {uid: (people[uid].props["userPrincipalName"], people[uid].props["accountEnabled"]) for uid in members}
    return users, groups


def source_paths(fake: FakeEntra) -> set[str]:
    return {r.url.path for r in fake.requests}


def read_in_full(fake: FakeEntra) -> bool:
    """Whether the run read everything: a full read starts by taking a fresh users delta link."""
    return any(r.url.params.get("$deltatoken") == "latest" for r in fake.requests)


@pytest.mark.usefixtures("env")
def test_a_tenant_converges_then_delta_runs_write_only_what_changed(
    entra: FakeEntra, emulator: RunningEmulator, tmp_path: Path
) -> None:
    """2,000 users and 300 nested groups converge without guests; later runs read deltas and write only the changes."""
    tenant = build_tenant(entra)
    entra.inject(429, on=30, path="/v1.0/groups/", retry_after=1)
    config = write_config(tmp_path, entra, emulator)

    code, out = sync(config)
    assert (0, "ok") == (code, out["status"]), out
    assert wanted(entra) == idc_view(emulator)
    assert not set(tenant.guests) & idc_view(emulator)[0].keys()
    assert idc_view(emulator)[0][tenant.disabled][1] is False
    assert any(r.status_code == 429 for r in entra.responses)

    # Run 2: one user disabled, one membership removed (team-120 is in no other group and nests none;
    # the member removed from it stays in another group, so stays in Identity Center).
    group = entra.objects[tenant.groups["team-120"]]
    others = set().union(*(set(g.members) for g in entra.groups() if g.id != group.id))
    leaver = next(m for m in group.members if m in others)
    disabled = next(
        u
        for u in sorted(others - {leaver})
        if entra.objects[u].type == "user"
        and entra.objects[u].props["accountEnabled"]
        and entra.objects[u].props["userType"] == "Member"
    )
    entra.advance(900)
    entra.disable_user(disabled)
    entra.remove_members(group.id, leaver)
    entra.requests.clear()
    emulator.stats.reset()
    code, out = sync(config)
    assert (0, "ok") == (code, out["status"]), out
    assert source_paths(entra) == {
        entra.login.token_path,
        "/v1.0/users/delta",
        "/v1.0/groups/delta",
        f"/v1.0/groups/{group.id}/transitiveMembers/microsoft.graph.user",
    }
    assert {"PUT /Users": 1, "PATCH /Groups": 1} == emulator.stats.by_method
    assert wanted(entra) == idc_view(emulator)

    # Run 3: a user joins team-150, which is nested in team-000: both groups gain the user.
    child, parent = tenant.groups["team-150"], tenant.groups["team-000"]
    assert (parent, child) in tenant.nested
    joiner = next(u for u in tenant.users if u not in entra.transitive(parent) and u in idc_view(emulator)[0])
    entra.add_members(child, joiner)
    entra.requests.clear()
    emulator.stats.reset()
    code, out = sync(config)
    assert (0, "ok") == (code, out["status"]), out
    assert sorted(entra.member_listings()) == sorted([child, parent])
    assert {"PATCH /Groups": 2} == emulator.stats.by_method
    assert wanted(entra) == idc_view(emulator)

    # Run 4: eight days later the delta links have expired: a full read, the same end state, no writes.
    entra.advance(8 * 86400)
    entra.requests.clear()
    emulator.stats.reset()
    code, out = sync(config)
    assert (0, "ok") == (code, out["status"]), out
    assert read_in_full(entra)
    assert 0 == emulator.stats.writes
    assert wanted(entra) == idc_view(emulator)


def _small(fake: FakeEntra) -> None:
    group = fake.add_group("aws-admins")
    fake.add_members(group, fake.add_user("ann.lee"), fake.add_user("bob.ray"))


def test_a_bad_secret_exits_4_naming_the_fix(
    entra: FakeEntra, emulator: RunningEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wrong client secret exits 4 (authentication) with AADSTS7000215 and what to fix; the secret is not shown."""
    monkeypatch.setenv("SYNCD_TEST_SCIM_TOKEN", TOKEN)
    monkeypatch.setenv("SYNCD_TEST_ENTRA_SECRET", "wrong~secret-value")
    _small(entra)

    code, out = sync(write_config(tmp_path, entra, emulator))

    assert (4, "failed") == (code, out["status"])
    assert "AADSTS7000215" in out["errors"][0]
    assert "source.entra.client_secret" in out["errors"][0]
    assert "wrong~secret-value" not in json.dumps(out)
    assert 0 == emulator.stats.writes


def test_a_federated_credential_needs_no_secret(
    entra: FakeEntra,
    emulator: RunningEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    issuer_key: rsa.RSAPrivateKey,
) -> None:
    """With AZURE_FEDERATED_TOKEN_FILE set and no credential in the config, the run signs in by federation."""
    monkeypatch.setenv("SYNCD_TEST_SCIM_TOKEN", TOKEN)
    entra.login.add_issuer(ISSUER, issuer_key.public_key())
    entra.add_app(CLIENT_ID, federated=[FederatedCredential(ISSUER, SUBJECT)])
    token_file = tmp_path / "azure-identity-token"
    token_file.write_text(federated_token(entra, issuer_key), encoding="utf-8")
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", str(token_file))
    _small(entra)

    code, out = sync(write_config(tmp_path, entra, emulator, credential="# federated: from the environment"))

    assert (0, "ok") == (code, out["status"]), out
    assert wanted(entra) == idc_view(emulator)


@pytest.mark.usefixtures("env")
def test_a_failed_run_does_not_move_the_delta_links_on(
    entra: FakeEntra, emulator: RunningEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that cannot write keeps the old delta links: the next good run still sees the change it missed."""
    _small(entra)
    config = write_config(tmp_path, entra, emulator)
    assert 0 == sync(config)[0]
    bob = next(u.id for u in entra.users() if u.props["userPrincipalName"].startswith("bob."))
    entra.disable_user(bob)
    monkeypatch.setenv("SYNCD_TEST_SCIM_TOKEN", "not-the-scim-token")

    code, out = sync(config)
    assert code != 0
    assert "failed" == out["status"]
    monkeypatch.setenv("SYNCD_TEST_SCIM_TOKEN", TOKEN)
    entra.requests.clear()
    code, out = sync(config)

    assert (0, 1) == (code, out["changes"]["users_deactivated"])
    assert not read_in_full(entra)  # a delta read, from the links the good run kept
    assert idc_view(emulator)[0][bob][1] is False
