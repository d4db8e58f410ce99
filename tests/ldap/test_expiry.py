"""AD's accountExpires: an account past it is synced inactive, on every read, changed entry or not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from structlog.testing import capture_logs

from connectors.ldap.source import LdapSource
from syncd.model import SourceRead
from tests.fakes.ad import FakeAD
from tests.ldap.conftest import read
from tests.ldap.test_incremental import Clock, again, mode
from tests.ldap.test_read_ad import ad_settings


NOW = datetime(2027, 1, 15, 8, 0, tzinfo=UTC)
NEVER = ("0", "9223372036854775807")  # Account-Expires: both mean the account does not expire


def filetime(moment: datetime) -> str:
    """``moment`` as accountExpires writes it: 100 ns intervals since 1601-01-01 UTC, in decimal."""
    return str((moment - datetime(1601, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 10)


@pytest.fixture
def domain(ad: FakeAD) -> FakeAD:
    """A service account and a user who never expires."""
    ad.add_user("svc-syncd", "Sync", "Service", ou="OU=Service Accounts", password="Service-Pa55")
    ad.add_user("alice", "Alice", "Archer")
    return ad


def source(ad: FakeAD, clock: Clock) -> LdapSource:
    """An ad-preset source on the fake DC, on ``clock``."""
    return LdapSource(ad_settings(ad), ad.connect, clock=clock)


def active(result: SourceRead) -> dict[str, bool]:
    """Whether each user is active, by userName."""
    return {u.user_name or "": u.active for u in result.users}


def test_an_expired_account_is_read_inactive(domain: FakeAD) -> None:
    """An account whose accountExpires passed a day ago is synced inactive; the read counts it."""
    domain.add_user("bob", "Bob", "Baker", accountExpires=filetime(NOW - timedelta(days=1)))
    with capture_logs() as logs:
        result = read(source(domain, Clock(NOW.timestamp())))
    assert {"alice@corp.example.com": True, "bob@corp.example.com": False} == active(result)
    assert 1 == next(e for e in logs if e["event"] == "ldap.read_done")["expired"]


@pytest.mark.parametrize("value", NEVER)
def test_a_never_expiring_account_stays_active(domain: FakeAD, value: str) -> None:
    """accountExpires 0 or 0x7FFFFFFFFFFFFFFF means never: the user stays active."""
    domain.add_user("bob", "Bob", "Baker", accountExpires=value)
    assert active(read(source(domain, Clock(NOW.timestamp()))))["bob@corp.example.com"]


def test_expiry_does_not_enable_a_disabled_account(domain: FakeAD) -> None:
    """A disabled account with an expiry still ahead stays inactive."""
    domain.add_user("bob", "Bob", "Baker", disabled=True, accountExpires=filetime(NOW + timedelta(days=1)))
    assert not active(read(source(domain, Clock(NOW.timestamp()))))["bob@corp.example.com"]


@pytest.mark.parametrize("later", [timedelta(0), timedelta(minutes=1)])
def test_expiry_reached_between_reads_shows_on_the_next_incremental_read(domain: FakeAD, later: timedelta) -> None:
    """A future expiry reads active; once the clock reaches it, the next incremental read, with nothing
    changed in the directory, reads the user inactive."""
    expires = NOW + timedelta(hours=2)  # before full_read_every (24h) forces a full read
    domain.add_user("bob", "Bob", "Baker", accountExpires=filetime(expires))
    clock = Clock(NOW.timestamp())
    ldap = source(domain, clock)
    first = read(ldap)
    assert active(first)["bob@corp.example.com"]
    clock.now = (expires + later).timestamp()
    second, logs = again(ldap, first)
    assert ("incremental", False) == (mode(logs)[0], active(second)["bob@corp.example.com"])
    assert 0 == next(e for e in logs if e["event"] == "ldap.incremental")["changed_users"]
    assert active(second)["alice@corp.example.com"]


def test_just_before_expiry_the_account_is_active(domain: FakeAD) -> None:
    """A second before accountExpires the user is still active."""
    expires = NOW + timedelta(days=1)
    domain.add_user("bob", "Bob", "Baker", accountExpires=filetime(expires))
    clock = Clock((expires - timedelta(seconds=1)).timestamp())
    assert active(read(source(domain, clock)))["bob@corp.example.com"]


@pytest.mark.parametrize("value", ["soon", "-1", "9223372036854775808", "1.5e17", "0x7FFFFFFFFFFFFFFF", "１２"])
def test_a_malformed_expiry_does_not_break_the_read(domain: FakeAD, value: str) -> None:
    """A value that is not a FILETIME is logged (the user's DN, not the value) and leaves the user as
    userAccountControl says: active, or disabled."""
    bob = domain.add_user("bob", "Bob", "Baker", accountExpires=value)
    domain.add_user("carol", "Carol", "Cook", disabled=True, accountExpires=value)
    with capture_logs() as logs:
        result = read(source(domain, Clock(NOW.timestamp())))
    users = active(result)
    assert (True, False, True) == (
        users["bob@corp.example.com"],
        users["carol@corp.example.com"],
        users["alice@corp.example.com"],
    )
    (event,) = [e for e in logs if e["event"] == "ldap.value_unreadable"]
    assert ("accountExpires", 2, bob) == (event["attribute"], event["users"], event["first"][0])
    assert value not in str(event)


def test_state_of_the_old_width_means_a_full_read(domain: FakeAD) -> None:
    """State an earlier syncd kept (users without the expiry) is not an error: the next read is full,
    says why, and reads an account that expired meanwhile inactive."""
    domain.add_user("bob", "Bob", "Baker", accountExpires=filetime(NOW + timedelta(days=1)))
    clock = Clock(NOW.timestamp())
    ldap = source(domain, clock)
    first = read(ldap)
    first.state["users"] = [packed[:-1] for packed in first.state["users"]]  # as syncd kept them before
    clock.now += timedelta(days=2).total_seconds()
    second, logs = again(ldap, first)
    assert ("full", "the kept state is unusable (a kept user is malformed)") == mode(logs)
    assert {"alice@corp.example.com": True, "bob@corp.example.com": False} == active(second)
    assert {len(p) for p in second.state["users"]} == {len(p) + 1 for p in first.state["users"]}


def test_openldap_preset_does_not_ask_for_account_expires(ad: FakeAD) -> None:
    """accountExpires is AD's: the openldap preset neither asks for it nor applies it."""
    ad.add_user("svc-syncd", "Sync", "Service", ou="OU=Service Accounts", password="Service-Pa55")
    ad.add_user("bob", "Bob", "Baker", accountExpires=filetime(NOW - timedelta(days=1)))
    settings = ad_settings(
        ad,
        preset="openldap",
        user_filter="(objectClass=user)",
        group_filter="(objectClass=group)",
        attributes={"id": "objectGUID", "user_name": "userPrincipalName"},
    )
    result = read(LdapSource(settings, ad.connect, clock=Clock(NOW.timestamp())))
    assert active(result)["bob@corp.example.com"]
    assert not any("accountExpires" in s.attributes for s in ad.searches)
