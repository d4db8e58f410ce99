"""The fake Active Directory keeps AD's rules, one test per rule of its module docstring."""

from __future__ import annotations

import uuid

import pytest
from pydantic import SecretStr

from connectors.ldap.conn import Endpoint, LdapFailure
from tests.fakes.ad import IN_CHAIN, MAX_PAGE_SIZE, MAX_VAL_RANGE, FakeAD, FakeADConnection


def bound(ad: FakeAD) -> FakeADConnection:
    """A connection bound as a service account."""
    ad.add_user("svc-syncd", "Sync", "Service", ou="OU=Service Accounts", password="pw")
    return ad.connect(Endpoint("ldaps://dc1", bind_dn="svc-syncd@corp.example.com", password=SecretStr("pw")))


@pytest.mark.parametrize(
    ("state", "password", "sub"),
    [
        (None, "wrong", "52e"),
        ("password_expired", "pw", "532"),
        ("disabled", "pw", "533"),
        ("expired", "pw", "701"),
        ("must_reset", "pw", "773"),
        ("locked", "pw", "775"),
        ("logon_hours", "pw", "530"),
    ],
)
def test_bind_refusals_carry_ads_sub_codes(ad: FakeAD, state: str | None, password: str, sub: str) -> None:
    """Rule 1: a refused bind is 49 with AD's diagnostic naming the sub-code."""
    dn = ad.add_user("svc", "Svc", "Account", password="pw")
    if state:
        ad.states[dn.casefold().replace(", ", ",")] = state
    with pytest.raises(LdapFailure) as caught:
        ad.connect(Endpoint("ldaps://dc1", bind_dn=dn, password=SecretStr(password)))
    assert 49 == caught.value.code
    assert f"AcceptSecurityContext error, data {sub}, v4563" in caught.value.message


def test_unknown_account_is_525_and_unbound_search_is_refused(ad: FakeAD) -> None:
    """Rule 1: an unknown bind name is 525; a search without a bind is operationsError 000004DC."""
    with pytest.raises(LdapFailure) as caught:
        ad.connect(Endpoint("ldaps://dc1", bind_dn="nobody@corp.example.com", password=SecretStr("x")))
    assert "data 525," in caught.value.message
    with pytest.raises(LdapFailure) as unbound:
        ad.connect(Endpoint("ldaps://dc1")).search(ad.domain, "(objectClass=user)", ["cn"])
    assert (1, True) == (unbound.value.code, unbound.value.message.startswith("000004DC"))


def test_pages_hold_at_most_max_page_size_and_unpaged_searches_stop(ad: FakeAD) -> None:
    """Rule 2: a page never exceeds 1,000 entries; unpaged, more than 1,000 is sizeLimitExceeded."""
    conn = bound(ad)
    for i in range(MAX_PAGE_SIZE + 5):
        ad.add_user(f"u{i}", "U", str(i))
    page = conn.search(f"OU=Staff,{ad.domain}", "(objectClass=user)", ["cn"], page_size=5000)
    assert (MAX_PAGE_SIZE, True) == (len(page.entries), bool(page.cookie))
    rest = conn.search(f"OU=Staff,{ad.domain}", "(objectClass=user)", ["cn"], page_size=5000, cookie=page.cookie)
    assert (5, b"") == (len(rest.entries), rest.cookie)
    with pytest.raises(LdapFailure) as caught:
        conn.search(f"OU=Staff,{ad.domain}", "(objectClass=user)", ["cn"])
    assert 4 == caught.value.code


def test_a_cookie_belongs_to_its_search(ad: FakeAD) -> None:
    """Rule 2: a cookie sent with a different search is unwillingToPerform (53)."""
    conn = bound(ad)
    for i in range(3):
        ad.add_user(f"u{i}", "U", str(i))
    page = conn.search(f"OU=Staff,{ad.domain}", "(objectClass=user)", ["cn"], page_size=1)
    with pytest.raises(LdapFailure) as caught:
        conn.search(f"OU=Staff,{ad.domain}", "(objectClass=user)", ["sn"], page_size=1, cookie=page.cookie)
    assert 53 == caught.value.code


def test_large_member_attributes_come_in_ranges(ad: FakeAD) -> None:
    """Rule 3: over 1,500 members the group answers member;range=0-1499, then the rest, the last slice ending '*'."""
    conn = bound(ad)
    members = [f"CN=M {i},OU=Staff,{ad.domain}" for i in range(MAX_VAL_RANGE + 200)]
    group = ad.add_group("big", members)
    (first,) = conn.search(group, "(objectClass=group)", ["member"], scope="base").entries
    assert ["member;range=0-1499"] == list(first.attributes)
    (second,) = conn.search(group, "(objectClass=group)", ["member;range=1500-*"], scope="base").entries
    assert ["member;range=1500-*"] == list(second.attributes)
    got = [*first.attributes["member;range=0-1499"], *second.attributes["member;range=1500-*"]]
    assert [m.encode() for m in members] == got


def test_in_chain_rule_follows_nesting_through_a_cycle(ad: FakeAD) -> None:
    """Rule 4: memberOf:1.2.840.113556.1.4.1941 finds members of nested groups, and a cycle ends."""
    conn = bound(ad)
    alice = ad.add_user("alice", "Alice", "A")
    bob = ad.add_user("bob", "Bob", "B")
    inner = ad.add_group("inner", [alice])
    outer = ad.add_group("outer", [inner, bob])
    ad.add_members(inner, outer)  # a cycle
    found = conn.search(ad.domain, f"(&(objectClass=user)(memberOf:{IN_CHAIN}:={outer}))", ["cn"], page_size=100)
    assert {alice, bob} == {e.dn for e in found.entries}


def test_bitwise_rules_object_category_and_memberof(ad: FakeAD) -> None:
    """Rule 4: the 803 bitwise-AND rule finds disabled users; objectCategory=person leaves computers out."""
    conn = bound(ad)
    ad.add_user("on", "On", "User")
    off = ad.add_user("off", "Off", "User", disabled=True)
    ad.add_object(
        f"CN=PC1,OU=Staff,{ad.domain}",
        {
            "objectClass": ["top", "person", "user", "computer"],
            "objectCategory": [f"CN=Computer,CN=Schema,CN=Configuration,{ad.domain}"],
        },
    )
    group = ad.add_group("g", [off])
    disabled = conn.search(
        f"OU=Staff,{ad.domain}", "(userAccountControl:1.2.840.113556.1.4.803:=2)", ["cn"], page_size=10
    )
    assert [off] == [e.dn for e in disabled.entries]
    people = conn.search(f"OU=Staff,{ad.domain}", "(&(objectCategory=person)(objectClass=user))", ["cn"], page_size=10)
    assert 2 == len(people.entries)
    assert [off] == [e.dn for e in conn.search(ad.domain, f"(memberOf={group})", [], page_size=10).entries]


def test_values_are_raw_guid_and_integers(ad: FakeAD) -> None:
    """Rule 5: objectGUID is 16 little-endian bytes; userAccountControl and uSNChanged are decimal text."""
    conn = bound(ad)
    dn = ad.add_user("carol", "Carol", "C", disabled=True)
    (entry,) = conn.search(
        dn, "(objectClass=*)", ["objectGUID", "userAccountControl", "uSNChanged"], scope="base"
    ).entries
    raw = entry.attributes["objectGUID"][0]
    assert 16 == len(raw)
    assert str(uuid.UUID(bytes_le=raw)) == str(uuid.UUID(bytes_le=bytes(raw)))
    assert (b"514", True) == (entry.attributes["userAccountControl"][0], int(entry.attributes["uSNChanged"][0]) > 0)


def test_root_dse_names_the_dc_and_its_usn(ad: FakeAD) -> None:
    """Rule 6: rootDSE names the USN and the DC (whose object has an invocationId); writes raise the USN."""
    conn = bound(ad)
    attrs = ["highestCommittedUSN", "dsServiceName", "supportedControl"]
    (root,) = conn.search("", "(objectClass=*)", attrs, scope="base").entries
    before = int(root.attributes["highestCommittedUSN"][0])
    assert b"1.2.840.113556.1.4.319" in root.attributes["supportedControl"]
    (ntds,) = conn.search(
        root.attributes["dsServiceName"][0].decode(), "(objectClass=*)", ["invocationId"], scope="base"
    ).entries
    assert ad.invocation_id.bytes_le == ntds.attributes["invocationId"][0]
    dn = ad.add_user("dave", "Dave", "D")
    (after,) = conn.search("", "(objectClass=*)", attrs, scope="base").entries
    (user,) = conn.search(dn, "(objectClass=*)", ["uSNChanged"], scope="base").entries
    assert int(after.attributes["highestCommittedUSN"][0]) == int(user.attributes["uSNChanged"][0]) > before


def test_root_searches_carry_partition_referrals(ad: FakeAD) -> None:
    """Rule 7: a subtree search at the domain root returns continuation references; one below it does not."""
    conn = bound(ad)
    assert 3 == len(conn.search(ad.domain, "(objectClass=user)", [], page_size=10).referrals)
    assert () == conn.search(f"OU=Staff,{ad.domain}", "(objectClass=user)", [], page_size=10).referrals


def test_renames_follow_into_member_without_touching_the_group(ad: FakeAD) -> None:
    """Rule 8: a renamed user shows under its new DN in the group's member, and the group's USN stays."""
    conn = bound(ad)
    alice = ad.add_user("alice", "Alice", "A")
    group = ad.add_group("g", [alice])
    before = conn.search(group, "(objectClass=*)", ["member", "uSNChanged"], scope="base").entries[0]
    renamed = ad.rename(alice, "Alice Renamed")
    after = conn.search(group, "(objectClass=*)", ["member", "uSNChanged"], scope="base").entries[0]
    assert [renamed.encode()] == list(after.attributes["member"])
    assert before.attributes["uSNChanged"] == after.attributes["uSNChanged"]
