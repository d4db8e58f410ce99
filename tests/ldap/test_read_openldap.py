"""A full read of a real OpenLDAP directory with the openldap preset."""

from __future__ import annotations

import pytest

from connectors.ldap.source import LdapSource
from syncd.errors import SourceAuthError, SourceError
from syncd.model import SourceGroup, SourceRead
from syncd.normalise import Scope, build_snapshot
from tests.fakes.slapd import Slapd, Tree, group_of_names, ldif_entry, person
from tests.ldap.conftest import openldap_settings, read


def by_name(result: SourceRead) -> dict[str, SourceGroup]:
    """Groups by name."""
    return {g.name or "": g for g in result.groups}


@pytest.fixture
def company(slapd: Slapd, tree: Tree) -> Tree:
    """Five people (one locked, one with a unicode name), a contractor outside the user base, and groups:
    eng ⊃ backend ⊃ eng (a cycle), a groupOfUniqueNames, an empty group, and a posixGroup."""
    t = tree
    slapd.add(
        "".join(
            [
                person(t.user_dn("alice"), "alice", "Alice", "Archer", mail="alice@example.com"),
                person(t.user_dn("bob"), "bob", "Bob", "Baker", mail="bob@example.com"),
                person(t.user_dn("zoe"), "zoe", "Zoë", "Ångström", mail="zoe@example.com", employeeNumber="42"),
                person(t.user_dn("lock"), "lock", "Locked", "Out", mail="lock@example.com", locked=True),
                person(t.user_dn("dan"), "dan", "Dan", "Dunn", mail="dan@example.com", manager=t.user_dn("alice")),
                person(t.user_dn("carl", t.contractors), "carl", "Carl", "Contractor", mail="carl@example.com"),
                group_of_names(t.group_dn("backend"), "backend", [t.user_dn("bob"), t.group_dn("eng")]),
                group_of_names(
                    t.group_dn("eng"),
                    "eng",
                    [t.user_dn("alice"), t.group_dn("backend"), t.user_dn("carl", t.contractors)],
                ),
                group_of_names(t.group_dn("design"), "design", [t.user_dn("zoe"), t.user_dn("lock")], unique=True),
                group_of_names(t.group_dn("empty"), "empty", []),
                ldif_entry(
                    t.group_dn("ops"),
                    {"objectClass": "posixGroup", "cn": "ops", "gidNumber": "500", "memberUid": ["dan", "ghost"]},
                ),
            ]
        )
    )
    return t


def test_full_read_resolves_members_nesting_and_status(slapd: Slapd, company: Tree) -> None:
    """Users keep their entryUUID, the locked one is inactive, nested groups come as group ids, and
    members outside the user base are left out."""
    t = company
    result = read(LdapSource(openldap_settings(slapd, t)))
    users = {u.user_name: u for u in result.users}
    assert {"alice@example.com", "bob@example.com", "zoe@example.com", "lock@example.com", "dan@example.com"} == set(
        users
    )
    assert t.entry_uuid(t.user_dn("alice")) == users["alice@example.com"].id
    assert [False] == [u.active for u in result.users if u.user_name == "lock@example.com"]
    assert ("Zoë", "Ångström", {"employee_number": "42"}) == (
        users["zoe@example.com"].given_name,
        users["zoe@example.com"].family_name,
        dict(users["zoe@example.com"].enterprise),
    )
    assert "alice@example.com" == users["dan@example.com"].enterprise["manager"]
    groups = by_name(result)
    assert {"eng", "backend", "design", "empty"} == set(groups)  # posixGroup only with posix_groups
    assert ((users["alice@example.com"].id,), (groups["backend"].id,)) == (groups["eng"].members, groups["eng"].groups)
    assert (groups["eng"].id,) == groups["backend"].groups
    assert {users["zoe@example.com"].id, users["lock@example.com"].id} == set(groups["design"].members)
    assert ((), ()) == (groups["empty"].members, groups["empty"].groups)


def test_nesting_flattens_through_the_cycle(slapd: Slapd, company: Tree) -> None:
    """After normalisation each group of the cycle holds the users of both."""
    snapshot = build_snapshot(read(LdapSource(openldap_settings(slapd, company))), Scope(users="all"))
    names = {u.source_id: u.user_name for u in snapshot.users.values()}
    members = {g.display_name: {names[m] for m in g.members} for g in snapshot.groups.values()}
    assert {"alice@example.com", "bob@example.com"} == members["eng"] == members["backend"]


def test_nesting_none_keeps_direct_members_only(slapd: Slapd, company: Tree) -> None:
    """With nesting = "none" a nested group adds nobody."""
    groups = by_name(read(LdapSource(openldap_settings(slapd, company, nesting="none"))))
    assert (1, ()) == (len(groups["eng"].members), groups["eng"].groups)


def test_posix_groups_match_member_uid(slapd: Slapd, company: Tree) -> None:
    """With posix_groups, a posixGroup's memberUid values are matched to users' uid; unknown ones are dropped."""
    result = read(LdapSource(openldap_settings(slapd, company, posix_groups=True)))
    dan = next(u.id for u in result.users if u.user_name == "dan@example.com")
    assert (dan,) == by_name(result)["ops"].members


def test_disabled_filter_marks_users_inactive(slapd: Slapd, company: Tree) -> None:
    """Users matching disabled_filter are read as inactive; the others stay active."""
    result = read(LdapSource(openldap_settings(slapd, company, disabled_filter="(uid=bob)")))
    assert {"bob@example.com", "lock@example.com"} == {u.user_name for u in result.users if not u.active}


def test_attribute_override_reads_user_name_from_uid(slapd: Slapd, company: Tree) -> None:
    """attributes.user_name = "uid" makes the uid the userName."""
    result = read(LdapSource(openldap_settings(slapd, company, attributes={"user_name": "uid"})))
    assert {"alice", "bob", "zoe", "lock", "dan"} == {u.user_name for u in result.users}


def test_several_bases_are_all_read(slapd: Slapd, company: Tree) -> None:
    """Two user bases: the contractor is read too, and becomes a member of eng."""
    t = company
    result = read(LdapSource(openldap_settings(slapd, t, user_base=[t.people, t.contractors])))
    carl = next(u.id for u in result.users if u.user_name == "carl@example.com")
    assert carl in by_name(result)["eng"].members


def test_large_group_is_read_whole(slapd: Slapd, tree: Tree) -> None:
    """A group of 1,200 members is read with every member, over paged user searches."""
    slapd.add(
        "".join(person(tree.user_dn(f"m{i}"), f"m{i}", "M", str(i), mail=f"m{i}@example.com") for i in range(1200))
    )
    slapd.add(group_of_names(tree.group_dn("all"), "all", [tree.user_dn(f"m{i}") for i in range(1200)]))
    source = LdapSource(openldap_settings(slapd, tree, page_size=500))
    result = read(source)
    assert (1200, 1200) == (len(result.users), len(by_name(result)["all"].members))


def test_wrong_password_names_the_setting(slapd: Slapd, tree: Tree) -> None:
    """A wrong bind password fails with a SourceAuthError naming source.ldap.bind_password, not the password."""
    with pytest.raises(SourceAuthError) as caught:
        read(LdapSource(openldap_settings(slapd, tree, bind_password="wrong-password")))
    assert "source.ldap.bind_password" in str(caught.value)
    assert "wrong-password" not in str(caught.value)


def test_missing_base_names_the_setting(slapd: Slapd, tree: Tree) -> None:
    """A user base that does not exist fails the read naming source.ldap.user_base."""
    with pytest.raises(SourceError, match=r"source\.ldap\.user_base"):
        read(LdapSource(openldap_settings(slapd, tree, user_base=f"ou=gone,{tree.base}")))


def test_failover_to_the_next_url(slapd: Slapd, tree: Tree) -> None:
    """An unreachable first URL is passed over for the next one."""
    slapd.add(person(tree.user_dn("alice"), "alice", "Alice", "A", mail="alice@example.com"))
    settings = openldap_settings(slapd, tree, url=["ldap://127.0.0.1:1", slapd.url])
    assert ["alice@example.com"] == [u.user_name for u in read(LdapSource(settings)).users]


def test_no_server_reachable_says_so(slapd: Slapd, tree: Tree) -> None:
    """When no URL answers, the error names source.ldap.url."""
    with pytest.raises(SourceError, match=r"could not be reached.*source\.ldap\.url"):
        read(LdapSource(openldap_settings(slapd, tree, url=["ldap://127.0.0.1:1"])))


def test_untrusted_certificate_names_ca_file(slapd: Slapd, tree: Tree) -> None:
    """A server certificate from another CA fails naming source.ldap.ca_file."""
    settings = openldap_settings(
        slapd, tree, url=slapd.ldaps_url, allow_plaintext=False, ca_file=str(slapd.ca.other_ca_file)
    )
    with pytest.raises(SourceError, match=r"TLS failed.*source\.ldap\.ca_file"):
        read(LdapSource(settings))


def test_starttls_with_the_ca_reads(slapd: Slapd, tree: Tree) -> None:
    """ldap:// with start_tls and the right ca_file reads the directory."""
    slapd.add(person(tree.user_dn("alice"), "alice", "Alice", "A", mail="alice@example.com"))
    settings = openldap_settings(
        slapd, tree, url=slapd.starttls_url, allow_plaintext=False, start_tls=True, ca_file=str(slapd.ca.ca_file)
    )
    assert 1 == len(read(LdapSource(settings)).users)


def test_size_limit_names_page_size(slapd: Slapd, tree: Tree) -> None:
    """An account capped below the directory's size fails the read with sizeLimitExceeded and what to change."""
    slapd.add("".join(person(tree.user_dn(f"s{i}"), f"s{i}", "S", str(i)) for i in range(60)))
    settings = openldap_settings(slapd, tree, bind_dn=slapd.capped_dn, page_size=20)
    with pytest.raises(SourceError, match=r"sizeLimitExceeded.*source\.ldap\.page_size"):
        read(LdapSource(settings))


def test_tls_verify_off_warns_on_every_read(slapd: Slapd, tree: Tree) -> None:
    """tls_verify = false reads, but logs a warning that the certificate is not checked."""
    from structlog.testing import capture_logs

    settings = openldap_settings(
        slapd, tree, url=slapd.ldaps_url, allow_plaintext=False, tls_verify=False, ca_file=str(slapd.ca.other_ca_file)
    )
    with capture_logs() as logs:
        read(LdapSource(settings))
    assert [("warning", True)] == [
        (e["log_level"], "NOT checked" in e["message"]) for e in logs if e["event"] == "ldap.tls_verify_off"
    ]
