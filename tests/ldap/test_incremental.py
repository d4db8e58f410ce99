"""Incremental reads: AD by uSNChanged (fake DC), OpenLDAP by modifyTimestamp (real slapd)."""

from __future__ import annotations

from typing import Any

import pytest
from structlog.testing import capture_logs

from connectors.base import ReadContext
from connectors.ldap.settings import LdapSettings
from connectors.ldap.source import LdapSource
from syncd.model import SourceRead
from tests.fakes.ad import FakeAD
from tests.fakes.slapd import Slapd, Tree, group_of_names, ldif_entry, person
from tests.ldap.conftest import openldap_settings, read
from tests.ldap.test_read_ad import ad_settings


LOCKED = "000001010000Z"  # ppolicy's permanent lock (slapo-ppolicy(5))


class Clock:
    """A clock the test moves."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        """The time."""
        return self.now


def again(source: LdapSource, previous: SourceRead) -> tuple[SourceRead, list[dict[str, Any]]]:
    """The next read, given the last one's state, and the connector's log events."""
    with capture_logs() as logs:
        result = read(source, ReadContext(full=False, state=previous.state))
    return result, logs


def mode(logs: list[dict[str, Any]]) -> tuple[str, str]:
    """How the read went (full or incremental) and why."""
    event = next(e for e in logs if e["event"] == "ldap.read")
    return event["mode"], str(event.get("why", ""))


def view(result: SourceRead) -> tuple[dict[str, tuple[str | None, bool]], dict[str | None, set[str]]]:
    """Users by id (userName, active) and groups by name (member ids)."""
    return (
        {u.id: (u.user_name, u.active) for u in result.users},
        {g.name: set(g.members) for g in result.groups},
    )


@pytest.fixture
def domain(ad: FakeAD) -> FakeAD:
    """A service account, two users and a group of one."""
    ad.add_user("svc-syncd", "Sync", "Service", ou="OU=Service Accounts", password="Service-Pa55")
    alice = ad.add_user("alice", "Alice", "Archer")
    ad.add_user("bob", "Bob", "Baker")
    ad.add_group("aws-admins", [alice])
    return ad


def ad_source(ad: FakeAD, clock: Clock | None = None, **overrides: object) -> LdapSource:
    """A source on the fake DC."""
    settings: LdapSettings = ad_settings(ad, **overrides)
    return LdapSource(settings, ad.connect, clock=clock or Clock(1_800_000_000))


def test_ad_incremental_reads_only_what_changed(domain: FakeAD) -> None:
    """The next read asks for uSNChanged above the last USN, and merges a disabled user and a new member."""
    source = ad_source(domain)
    first = read(source)
    usn = domain.usn
    bob = f"CN=Bob Baker,OU=Staff,{domain.domain}"
    domain.disable(bob)
    domain.add_members(f"CN=aws-admins,OU=Groups,{domain.domain}", bob)
    domain.searches.clear()
    second, logs = again(source, first)
    assert "incremental" == mode(logs)[0]
    changed = [s.filter for s in domain.searches if "uSNChanged" in s.filter]
    assert 2 == len(changed)
    assert all(f"(uSNChanged>={usn + 1})" in f for f in changed)
    users, groups = view(second)
    bob_id = next(uid for uid, (name, _) in users.items() if name == "bob@corp.example.com")
    assert (False, 2) == (users[bob_id][1], len(groups["aws-admins"]))
    assert bob_id in groups["aws-admins"]


def test_ad_no_change_reads_nothing_new(domain: FakeAD) -> None:
    """With nothing changed, the incremental read gets no entries and returns the same directory."""
    source = ad_source(domain)
    first = read(source)
    second, logs = again(source, first)
    assert ("incremental", view(first)) == (mode(logs)[0], view(second))


def test_ad_rename_keeps_the_id_and_the_membership(domain: FakeAD) -> None:
    """A renamed user is an update of the same objectGUID and stays in the group that never changed."""
    source = ad_source(domain)
    first = read(source)
    alice = f"CN=Alice Archer,OU=Staff,{domain.domain}"
    new_dn = domain.rename(alice, "Alice Smith")
    domain.set(new_dn, "userPrincipalName", "alice.smith@corp.example.com")
    second, _ = again(source, first)
    before, after = view(first), view(second)
    (alice_id,) = [uid for uid, (name, _) in before[0].items() if name == "alice@corp.example.com"]
    assert ("alice.smith@corp.example.com", True) == after[0][alice_id]
    assert {alice_id} == after[1]["aws-admins"]


def test_another_dc_means_a_full_read(domain: FakeAD) -> None:
    """State from one DC is not used against another (USNs are per DC): the read is full, and says why."""
    source = ad_source(domain)
    first = read(source)
    domain.server_name = "DC2"
    domain.add_object(domain.ntds_settings, {"objectClass": ["top", "nTDSDSA"], "invocationId": [b"\x01" * 16]})
    _, logs = again(source, first)
    assert ("full", True) == (mode(logs)[0], "another domain controller" in mode(logs)[1])


def test_full_read_every_forces_a_full_read(domain: FakeAD) -> None:
    """Once full_read_every has passed since the last full read, the read is full (it sees deletions)."""
    clock = Clock(1_800_000_000)
    source = ad_source(domain, clock, full_read_every="1h")
    first = read(source)
    domain.delete(f"CN=Bob Baker,OU=Staff,{domain.domain}")
    clock.now += 3600
    second, logs = again(source, first)
    assert ("full", "full_read_every has passed since the last full read") == mode(logs)
    assert ["alice@corp.example.com"] == [name for name, _ in view(second)[0].values()]


def test_incremental_off_reads_in_full(domain: FakeAD) -> None:
    """incremental = false reads everything every time."""
    source = ad_source(domain, incremental=False)
    _, logs = again(source, read(source))
    assert ("full", "incremental = false") == mode(logs)


def test_openldap_incremental_by_modify_timestamp(slapd: Slapd, tree: Tree) -> None:
    """OpenLDAP's next read asks for modifyTimestamp since the last read began (less the overlap); a new
    member, a locked user and a renamed user (same entryUUID, refint-updated groups) all arrive."""
    t = tree
    slapd.add(
        person(t.user_dn("alice"), "alice", "Alice", "A", mail="alice@example.com")
        + person(t.user_dn("bob"), "bob", "Bob", "B", mail="bob@example.com")
        + group_of_names(t.group_dn("eng"), "eng", [t.user_dn("alice")])
    )
    source = LdapSource(openldap_settings(slapd, t))
    first = read(source)
    assert first.state["since"].endswith("Z")
    slapd.modify(
        ldif_entry(t.group_dn("eng"), {"add": "member", "member": t.user_dn("bob")}, "modify")
        + ldif_entry(
            t.user_dn("bob"), {"add": "pwdAccountLockedTime", "pwdAccountLockedTime": "000001010000Z"}, "modify"
        )
        + ldif_entry(t.user_dn("alice"), {"newrdn": "uid=alice2", "deleteoldrdn": "1"}, "modrdn")
        + ldif_entry(t.user_dn("alice2"), {"replace": "mail", "mail": "alice2@example.com"}, "modify")
    )
    second, logs = again(source, first)
    assert "incremental" == mode(logs)[0]
    users, groups = view(second)
    alice = t.entry_uuid(t.user_dn("alice2"))
    bob = t.entry_uuid(t.user_dn("bob"))
    assert {alice: ("alice2@example.com", True), bob: ("bob@example.com", False)} == users
    assert {"eng": {alice, bob}} == groups


def test_openldap_pending_member_found_when_the_user_appears(slapd: Slapd, tree: Tree) -> None:
    """A group member whose entry did not exist at the last read is resolved once the user is added."""
    t = tree
    slapd.add(group_of_names(t.group_dn("eng"), "eng", [t.user_dn("late")]))
    source = LdapSource(openldap_settings(slapd, t))
    first = read(source)
    assert {"eng": set()} == view(first)[1]
    slapd.add(person(t.user_dn("late"), "late", "Late", "Comer", mail="late@example.com"))
    second, logs = again(source, first)
    assert ("incremental", {"eng": {t.entry_uuid(t.user_dn("late"))}}) == (mode(logs)[0], view(second)[1])


def test_changed_settings_mean_a_full_read(slapd: Slapd, tree: Tree) -> None:
    """State read with other filters is not built on."""
    slapd.add(person(tree.user_dn("alice"), "alice", "Alice", "A", mail="alice@example.com"))
    first = read(LdapSource(openldap_settings(slapd, tree)))
    _, logs = again(LdapSource(openldap_settings(slapd, tree, user_filter="(uid=*)")), first)
    assert ("full", "the scope or settings changed since the last read") == mode(logs)


def test_ad_user_moved_into_the_base_joins_its_groups(domain: FakeAD) -> None:
    """A contractor moved into OU=Staff changes no group on AD; its memberOf puts it in the kept group."""
    vendor = domain.add_user("vera", "Vera", "Vendor", ou="OU=Contractors")
    domain.add_members(f"CN=aws-admins,OU=Groups,{domain.domain}", vendor)
    source = ad_source(domain)
    first = read(source)
    assert 1 == len(view(first)[1]["aws-admins"])
    domain.rename(vendor, "Vera Vendor", ou="OU=Staff")
    second, logs = again(source, first)
    users, groups = view(second)
    vera = next(uid for uid, (name, _) in users.items() if name == "vera@corp.example.com")
    assert ("incremental", 2, True) == (mode(logs)[0], len(groups["aws-admins"]), vera in groups["aws-admins"])


def test_openldap_change_time_is_the_servers_context_csn(slapd: Slapd, tree: Tree) -> None:
    """The kept change time is the suffix's contextCSN (the server's clock), to the second."""
    slapd.add(person(tree.user_dn("alice"), "alice", "Alice", "A", mail="alice@example.com"))
    first = read(LdapSource(openldap_settings(slapd, tree)))
    csn = next(
        line.split(": ", 1)[1]
        for line in slapd.search(slapd.suffix, "(objectClass=dcObject)", "contextCSN").splitlines()
        if line.startswith("contextCSN: ")
    )
    assert csn[:14] + "Z" == first.state["since"]


def test_without_context_csn_our_clock_less_the_overlap(ad: FakeAD) -> None:
    """A server with no contextCSN gets our clock at the read's start, five minutes earlier."""
    ad.add_user("svc-syncd", "Sync", "Service", ou="OU=Service Accounts", password="Service-Pa55")
    settings = ad_settings(ad, preset="openldap", user_filter="(objectClass=user)", group_filter="(objectClass=group)")
    first = read(LdapSource(settings, ad.connect, clock=Clock(1_800_000_000)))
    assert "20270115075500Z" == first.state["since"]  # 2027-01-15 08:00:00 UTC less 5 minutes
