"""Reading Active Directory with the ad preset, against the fake domain controller."""

from __future__ import annotations

import uuid

import pytest

from connectors.ldap.settings import LdapSettings
from connectors.ldap.source import LdapSource
from syncd.errors import SourceAuthError, SourceError
from syncd.model import SourceRead
from syncd.normalise import Scope, build_snapshot
from tests.fakes.ad import MAX_VAL_RANGE, FakeAD, norm
from tests.ldap.conftest import read


def ad_settings(ad: FakeAD, **overrides: object) -> LdapSettings:
    """The ad preset over LDAPS, users in OU=Staff and groups in OU=Groups."""
    raw: dict[str, object] = {
        "preset": "ad",
        "url": "ldaps://dc1.corp.example.com",
        "bind_dn": "svc-syncd@corp.example.com",
        "bind_password": "Service-Pa55",
        "user_base": f"OU=Staff,{ad.domain}",
        "group_base": f"OU=Groups,{ad.domain}",
    }
    raw.update(overrides)
    return LdapSettings.model_validate(raw)


@pytest.fixture
def domain(ad: FakeAD) -> FakeAD:
    """A service account, and two staff users of which one is disabled."""
    ad.add_user("svc-syncd", "Sync", "Service", ou="OU=Service Accounts", password="Service-Pa55")
    ad.add_user("alice", "Alice", "Archer", mail="alice@corp.example.com", department="Engineering")
    ad.add_user("bob", "Bob", "Baker", disabled=True)
    return ad


def source(ad: FakeAD, **overrides: object) -> LdapSource:
    """An LDAP source connected to the fake."""
    return LdapSource(ad_settings(ad, **overrides), ad.connect)


def names(result: SourceRead) -> dict[str, str]:
    """User ids by userName."""
    return {u.user_name or "": u.id for u in result.users}


def test_users_get_guid_ids_upn_names_and_disabled_status(domain: FakeAD) -> None:
    """objectGUID becomes the canonical GUID string, userPrincipalName the userName, bit 0x2 inactive."""
    result = read(source(domain))
    users = {u.user_name: u for u in result.users}
    alice = users["alice@corp.example.com"]
    raw = domain.objects[norm(f"CN=Alice Archer,OU=Staff,{domain.domain}")].get("objectGUID")[0]
    assert str(uuid.UUID(bytes_le=bytes(raw))) == alice.id  # type: ignore[arg-type]
    assert (True, False) == (alice.active, users["bob@corp.example.com"].active)
    assert "Engineering" == alice.enterprise["department"]


def test_computers_and_contacts_are_not_users(domain: FakeAD) -> None:
    """The preset's filter leaves computer accounts and contacts out."""
    domain.add_object(
        f"CN=PC1,OU=Staff,{domain.domain}",
        {
            "objectClass": ["top", "person", "organizationalPerson", "user", "computer"],
            "objectCategory": [f"CN=Computer,CN=Schema,CN=Configuration,{domain.domain}"],
            "userPrincipalName": ["pc1$@corp.example.com"],
        },
    )
    domain.add_object(
        f"CN=Vendor,OU=Staff,{domain.domain}",
        {
            "objectClass": ["top", "person", "organizationalPerson", "contact"],
            "objectCategory": [f"CN=Person,CN=Schema,CN=Configuration,{domain.domain}"],
        },
    )
    assert {"alice@corp.example.com", "bob@corp.example.com"} == set(names(read(source(domain))))


def test_user_name_from_mail_when_set(domain: FakeAD) -> None:
    """attributes.user_name = "mail" reads the userName from mail."""
    assert "alice@corp.example.com" in names(read(source(domain, attributes={"user_name": "mail"})))


def test_group_over_max_val_range_is_read_whole(domain: FakeAD) -> None:
    """A group of 1,700 members is read through range retrieval, one extra search for the rest."""
    members = [domain.add_user(f"m{i}", "Member", str(i)) for i in range(MAX_VAL_RANGE + 200)]
    domain.add_group("everyone-eng", members)
    domain.searches.clear()
    result = read(source(domain))
    (group,) = result.groups
    assert MAX_VAL_RANGE + 200 == len(group.members)
    ranges = [s.attributes[0] for s in domain.searches if s.attributes[0].startswith("member;")]
    assert ["member;range=1500-*"] == ranges


def test_paging_past_max_page_size(domain: FakeAD) -> None:
    """1,200 users arrive over pages the DC caps at 1,000, even when page_size asks for more."""
    for i in range(1200):
        domain.add_user(f"p{i}", "P", str(i))
    assert 1202 == len(read(source(domain, page_size=5000)).users)


def test_in_chain_nesting_lets_the_dc_flatten(domain: FakeAD) -> None:
    """nesting = "in_chain" asks the DC for each group's users through nesting, cycle and all."""
    alice = f"CN=Alice Archer,OU=Staff,{domain.domain}"
    carol = domain.add_user("carol", "Carol", "C")
    inner = domain.add_group("inner", [carol])
    outer = domain.add_group("outer", [inner, alice])
    domain.add_members(inner, outer)
    result = read(source(domain, nesting="in_chain"))
    ids = names(result)
    groups = {g.name: g for g in result.groups}
    assert {ids["alice@corp.example.com"], ids["carol@corp.example.com"]} == set(groups["outer"].members)
    assert set(groups["outer"].members) == set(groups["inner"].members)
    assert () == groups["outer"].groups
    assert 2 == sum("1.2.840.113556.1.4.1941" in s.filter for s in domain.searches)


def test_expand_nesting_matches_in_chain(domain: FakeAD) -> None:
    """The default expansion of member groups gives the same flattened members as in_chain."""
    alice = f"CN=Alice Archer,OU=Staff,{domain.domain}"
    carol = domain.add_user("carol", "Carol", "C")
    inner = domain.add_group("inner", [carol])
    domain.add_group("outer", [inner, alice])

    def flattened(**overrides: object) -> dict[str, set[str]]:
        snapshot = build_snapshot(read(source(domain, **overrides)), Scope(users="all"))
        return {g.display_name: set(g.members) for g in snapshot.groups.values()}

    assert flattened() == flattened(nesting="in_chain")


def test_members_outside_the_bases_are_left_out(domain: FakeAD) -> None:
    """A contractor in another OU and a member of nobody's base are not members, and the read goes on."""
    vendor = domain.add_user("vera", "Vera", "Vendor", ou="OU=Contractors")
    domain.add_group("mixed", [vendor, f"CN=Alice Archer,OU=Staff,{domain.domain}"])
    (group,) = read(source(domain)).groups
    assert 1 == len(group.members)


def test_referrals_are_counted_not_followed(domain: FakeAD) -> None:
    """A search at the domain root gets partition referrals; no connection goes to the referred servers."""
    result = read(source(domain, user_base=domain.domain, group_base=domain.domain))
    assert {"alice@corp.example.com", "bob@corp.example.com", "svc-syncd@corp.example.com"} == set(names(result))
    assert ["svc-syncd@corp.example.com"] == domain.binds


@pytest.mark.parametrize(
    ("state", "password", "words"),
    [
        (None, "Not-The-Pa55", "52e): the password is wrong; check source.ldap.bind_password"),
        ("password_expired", "Service-Pa55", "532): the account's password has expired"),
        ("disabled", "Service-Pa55", "533): the account is disabled"),
        ("expired", "Service-Pa55", "701): the account has expired"),
        ("must_reset", "Service-Pa55", "773): the account must change its password"),
        ("locked", "Service-Pa55", "775): the account is locked out"),
    ],
)
def test_bind_sub_codes_in_plain_words(domain: FakeAD, state: str | None, password: str, words: str) -> None:
    """Each AD bind sub-code fails the read with what it means and what to change."""
    if state:
        domain.states[norm(f"CN=Sync Service,OU=Service Accounts,{domain.domain}")] = state
    with pytest.raises(SourceAuthError) as caught:
        read(source(domain, bind_password=password))
    assert words in str(caught.value)
    assert password not in str(caught.value)


def test_unknown_bind_account_names_bind_dn(domain: FakeAD) -> None:
    """Sub-code 525 (no such account) names source.ldap.bind_dn."""
    with pytest.raises(SourceAuthError, match=r"525\): the account does not exist; check source\.ldap\.bind_dn"):
        read(source(domain, bind_dn="nobody@corp.example.com"))


def test_a_bind_refusal_is_not_retried_on_the_next_server(domain: FakeAD) -> None:
    """With two URLs, a wrong password is tried once (each try counts towards AD's lockout)."""
    with pytest.raises(SourceAuthError):
        read(source(domain, bind_password="wrong", url=["ldaps://dc1", "ldaps://dc2"]))
    assert 1 == len(domain.binds)


def test_a_dc_going_down_mid_read_fails_the_read(domain: FakeAD) -> None:
    """A DC that stops answering after the first page fails the whole read with SourceError."""
    for i in range(30):
        domain.add_user(f"p{i}", "P", str(i))
    domain.on_search = lambda search: setattr(domain, "down", True)
    with pytest.raises(SourceError, match="could not be reached while reading users"):
        read(source(domain, page_size=10))


def test_connecting_is_retried_when_no_dc_answers(domain: FakeAD) -> None:
    """When neither DC answers, the list is tried again after a backoff, and the read goes on once one does."""
    domain.unreachable_for = 2  # both URLs, once
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    settings = ad_settings(domain, url=["ldaps://dc1", "ldaps://dc2"])
    result = read(LdapSource(settings, domain.connect, sleep=sleep))
    assert (3, 1, 2) == (domain.connects, len(waits), len(result.users))


def test_no_dc_after_every_retry_fails_naming_url(domain: FakeAD) -> None:
    """A DC that never answers fails the read after the policy's attempts, naming source.ldap.url."""
    domain.down = True
    with pytest.raises(SourceError, match=r"could not be reached while connecting.*source\.ldap\.url"):
        read(source(domain))
    assert 3 == domain.connects
