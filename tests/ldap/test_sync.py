"""`syncd sync` from a real slapd into the Identity Center emulator: the LDAP connector's done-when."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import connectors.ldap.source
from connectors.ldap.conn import Endpoint, LdapConnection, Page, SearchScope
from syncd.cli import app
from syncd.emulator import RunningEmulator
from syncd.errors import SourceAuthError, SourceError
from tests.conftest import TOKEN
from tests.fakes.slapd import Slapd, Tree, group_of_names, ldif_entry, person, running_slapd


runner = CliRunner()
USERS = 2000
GROUPS = 300


@dataclass
class Org:
    """What was loaded: user mail by uid, the locked uid, and each group's direct users and subgroups."""

    tree: Tree
    mail: dict[str, str] = field(default_factory=dict)
    locked: str = ""
    users: dict[str, list[str]] = field(default_factory=dict)
    subgroups: dict[str, list[str]] = field(default_factory=dict)

    def flattened(self) -> dict[str, frozenset[str]]:
        """Each group's users through nesting (cycle-safe), as mails."""
        out = {}
        for name in self.users:
            seen, stack, found = {name}, [name], set()
            while stack:
                current = stack.pop()
                found.update(self.users[current])
                for sub in self.subgroups[current]:
                    if sub not in seen:
                        seen.add(sub)
                        stack.append(sub)
            out[name] = frozenset(self.mail[uid] for uid in found)
        return out


def load_org(slapd: Slapd, tree: Tree) -> Org:
    """2,000 users and 300 groups in one ldapadd: random members, a chain of nested groups with one
    cycle, a group of 1,100, a ppolicy-locked user and unicode names."""
    rng = random.Random(14)
    org = Org(tree)
    entries = []
    for i in range(USERS):
        uid = f"user{i:04d}"
        org.mail[uid] = f"{uid}@example.com"
        given, family = ("Zoë", "Ångström-Øre") if i % 97 == 0 else (f"Given{i}", f"Family{i}")
        entries.append(person(tree.user_dn(uid), uid, given, family, mail=org.mail[uid], locked=i == 7))
    org.locked = "user0007"
    uids = list(org.mail)
    for g in range(GROUPS):
        name = f"team-{g:03d}"
        size = 1100 if g == 0 else rng.randint(0, 25)
        org.users[name] = rng.sample(uids, size)
        org.subgroups[name] = [f"team-{g + 1:03d}"] if g % 10 == 1 and g + 1 < GROUPS else []
    org.users["team-005"].append(org.locked)
    org.subgroups["team-012"].append("team-011")  # team-011 ⊃ team-012 ⊃ team-011: a cycle
    for name in org.users:
        dns = [tree.user_dn(uid) for uid in org.users[name]] + [tree.group_dn(s) for s in org.subgroups[name]]
        entries.append(group_of_names(tree.group_dn(name), name, dns))
    slapd.add("".join(entries))
    return org


def write_config(path: Path, slapd: Slapd, tree: Tree, emu: RunningEmulator) -> Path:
    """A syncd.toml reading ``tree`` over StartTLS with the test CA."""
    config = path / "syncd.toml"
    config.write_text(
        f"""
[source]
type = "ldap"

[source.ldap]
preset = "openldap"
url = "{slapd.starttls_url}"
start_tls = true
ca_file = "{slapd.ca.ca_file}"
bind_dn = "{slapd.reader_dn}"
bind_password = "env:SYNCD_TEST_LDAP_PASSWORD"
user_base = "{tree.people}"
group_base = "{tree.groups}"

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


def sync(config: Path, *args: str) -> tuple[int, dict[str, Any]]:
    """Run ``syncd sync --json``; its exit code and summary."""
    result = runner.invoke(app, ["--log-level", "WARNING", "sync", "--config", str(config), "--json", *args])
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert lines, result.output
    return result.exit_code, json.loads(lines[-1])


def idc_view(emu: RunningEmulator) -> tuple[dict[str, tuple[str, bool, str]], dict[str, frozenset[str]]]:
    """Identity Center's users by userName (active, externalId, id) and groups by name (member userNames)."""
    names = {u["id"]: u["userName"] for u in emu.state.users}
    users = {u["userName"]: (u["active"], u["externalId"], u["id"]) for u in emu.state.users}
    groups = {g["displayName"]: frozenset(names[m] for m in emu.state.members(g["id"])) for g in emu.state.groups}
    return {k: (v[0], v[1], v[2]) for k, v in users.items()}, groups


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, slapd: Slapd) -> None:
    """The SCIM token and the service account's password, as the config's env: references expect them."""
    monkeypatch.setenv("SYNCD_TEST_SCIM_TOKEN", TOKEN)
    monkeypatch.setenv("SYNCD_TEST_LDAP_PASSWORD", slapd.reader_password)


@pytest.mark.usefixtures("env")
def test_directory_converges_then_changes_cost_only_their_writes(
    slapd: Slapd, tree: Tree, emulator: RunningEmulator, tmp_path: Path
) -> None:
    """2,000 users and 300 nested groups converge exactly (nesting flattened, the locked user inactive);
    a second run writes nothing; a membership change and a rename write exactly those, keeping the user's id."""
    org = load_org(slapd, tree)
    config = write_config(tmp_path, slapd, tree, emulator)

    code, out = sync(config)
    assert (0, "ok") == (code, out["status"]), out
    want = org.flattened()
    users, groups = idc_view(emulator)
    assert want == groups
    members = set().union(*want.values())
    assert members == set(users)
    assert {org.mail[org.locked]} == {name for name, (active, _, _) in users.items() if not active}
    uuids = tree.entry_uuids(tree.people)
    assert {uuids[tree.user_dn(uid).lower()] for uid, mail in org.mail.items() if mail in members} == {
        external for _, external, _ in users.values()
    }

    emulator.stats.reset()
    code, out = sync(config)
    assert (0, "ok", 0) == (code, out["status"], emulator.stats.writes), out

    newcomer = next(uid for uid in org.mail if org.mail[uid] not in want["team-100"] and org.mail[uid] in members)
    renamed = next(iter(org.users["team-200"]))
    before = users[org.mail[renamed]]
    slapd.modify(
        ldif_entry(tree.group_dn("team-100"), {"add": "member", "member": tree.user_dn(newcomer)}, "modify")
        + ldif_entry(tree.user_dn(renamed), {"newrdn": "uid=renamed-person", "deleteoldrdn": "1"}, "modrdn")
        + ldif_entry(
            f"uid=renamed-person,{tree.people}",
            {"replace": "mail", "mail": "renamed.person@example.com"},
            "modify",
        )
    )
    emulator.stats.reset()
    code, out = sync(config)
    assert (0, "ok") == (code, out["status"]), out
    writes = {k: v for k, v in emulator.stats.by_method.items() if not k.startswith("GET")}
    assert {"PATCH /Groups": 1, "PUT /Users": 1} == writes
    users, groups = idc_view(emulator)
    assert (before[1], before[2]) == users["renamed.person@example.com"][1:]
    assert org.mail[renamed] not in users
    assert org.mail[newcomer] in groups["team-100"]
    assert "renamed.person@example.com" in groups["team-200"]


@pytest.mark.usefixtures("env")
def test_wrong_bind_password_exits_1_naming_the_setting(
    slapd: Slapd, tree: Tree, emulator: RunningEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wrong bind password exits 4 (authentication), names source.ldap.bind_password, never shows it,
    and writes nothing."""
    slapd.add(person(tree.user_dn("alice"), "alice", "Alice", "A", mail="alice@example.com"))
    monkeypatch.setenv("SYNCD_TEST_LDAP_PASSWORD", "Wrong-Pa55word")
    code, out = sync(write_config(tmp_path, slapd, tree, emulator))
    assert (SourceAuthError.exit_code, "failed") == (code, out["status"])
    assert "source.ldap.bind_password" in out["errors"][0]
    assert "Wrong-Pa55word" not in json.dumps(out)
    assert 0 == emulator.stats.writes


class StopAfterFirstPage:
    """The real connection factory, whose connections stop the server once the first page of users is read."""

    def __init__(self, server: Slapd) -> None:
        self.server = server
        self.pages = 0

    def __call__(self, endpoint: Endpoint) -> LdapConnection:
        """Connect for real, and wrap the connection."""
        return _Stopping(connectors.ldap.source.open_ldap3(endpoint), self)


@dataclass
class _Stopping:
    inner: LdapConnection
    stopper: StopAfterFirstPage

    def search(
        self,
        base: str,
        filter_: str,
        attributes: Any,
        *,
        scope: SearchScope = "subtree",
        page_size: int = 0,
        cookie: bytes = b"",
    ) -> Page:
        page = self.inner.search(base, filter_, attributes, scope=scope, page_size=page_size, cookie=cookie)
        if page.cookie and self.stopper.pages == 0:
            self.stopper.pages += 1
            self.stopper.server.stop()  # the event: the connector has the first page of a paged search
        return page

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def own_slapd() -> Iterator[Slapd]:
    """A slapd of this test's own, as it is stopped mid-test."""
    with running_slapd() as server:
        yield server


def test_server_stopped_mid_read_fails_with_nothing_written(
    own_slapd: Slapd, emulator: RunningEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """slapd stopped after the first page of users fails the run (exit 5: source unavailable) before any write."""
    monkeypatch.setenv("SYNCD_TEST_SCIM_TOKEN", TOKEN)
    monkeypatch.setenv("SYNCD_TEST_LDAP_PASSWORD", own_slapd.reader_password)
    tree = Tree.create(own_slapd, "mid")
    own_slapd.add("".join(person(tree.user_dn(f"u{i}"), f"u{i}", "U", str(i), mail=f"u{i}@x.com") for i in range(700)))
    own_slapd.add(group_of_names(tree.group_dn("all"), "all", [tree.user_dn(f"u{i}") for i in range(700)]))
    stopper = StopAfterFirstPage(own_slapd)
    monkeypatch.setattr(connectors.ldap.source, "default_connect", stopper)
    code, out = sync(write_config(tmp_path, own_slapd, tree, emulator))
    assert (SourceError.exit_code, "failed", 1) == (code, out["status"], stopper.pages)
    assert "could not be reached while reading users" in out["errors"][0]
    assert (0, False) == (emulator.stats.writes, own_slapd.running)


@pytest.mark.usefixtures("env")
def test_check_shows_what_the_directory_holds(
    slapd: Slapd, tree: Tree, emulator: RunningEmulator, tmp_path: Path
) -> None:
    """`syncd check --json` counts the groups and users read from the directory, writing nothing."""
    slapd.add(
        person(tree.user_dn("alice"), "alice", "Alice", "A", mail="alice@example.com")
        + person(tree.user_dn("bob"), "bob", "Bob", "B", mail="bob@example.com")
        + group_of_names(tree.group_dn("aws-admins"), "aws-admins", [tree.user_dn("alice"), tree.user_dn("bob")])
    )
    config = write_config(tmp_path, slapd, tree, emulator)
    result = runner.invoke(app, ["--log-level", "WARNING", "check", "--config", str(config), "--json"])
    assert 0 == result.exit_code, result.output
    data = json.loads(result.stdout)
    assert ({"aws-admins": 2}, 2) == (data["groups"], data["users"])
    assert 0 == emulator.stats.writes
