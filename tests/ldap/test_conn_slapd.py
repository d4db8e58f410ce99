"""The ldap3 adapter at the LDAP seam, against a real slapd: paging, TLS, and each failure's kind."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from connectors.ldap.conn import Endpoint, LdapConnection, LdapFailure, open_ldap3
from tests.fakes.slapd import CAPPED_LIMIT, Slapd, Tree, person, running_slapd


def reader(slapd: Slapd, url: str | None = None, **kwargs: object) -> Endpoint:
    """The read-only service account's endpoint."""
    return Endpoint(
        url or slapd.url,
        bind_dn=slapd.reader_dn,
        password=SecretStr(slapd.reader_password),
        timeout=10,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture
def conn(slapd: Slapd) -> Iterator[LdapConnection]:
    """A bound connection as the service account."""
    connection = open_ldap3(reader(slapd))
    yield connection
    connection.close()


def test_paged_search_reads_past_the_size_limit(slapd: Slapd, tree: Tree, conn: LdapConnection) -> None:
    """1,200 users come back over three pages of 500 (RFC 2696 cookies), past slapd's 500-entry size limit."""
    slapd.add("".join(person(tree.user_dn(f"p{i}"), f"p{i}", "P", str(i)) for i in range(1200)))
    pages, cookie, dns = 0, b"", set()
    while True:
        page = conn.search(tree.people, "(objectClass=inetOrgPerson)", ["uid"], page_size=500, cookie=cookie)
        pages += 1
        dns.update(e.dn for e in page.entries)
        cookie = page.cookie
        if not cookie:
            break
    assert (3, 1200) == (pages, len(dns))


def test_unpaged_search_past_the_size_limit_fails(slapd: Slapd, tree: Tree, conn: LdapConnection) -> None:
    """Without paging, slapd stops at its 500-entry size limit with result 4."""
    slapd.add("".join(person(tree.user_dn(f"q{i}"), f"q{i}", "Q", str(i)) for i in range(501)))
    with pytest.raises(LdapFailure) as caught:
        conn.search(tree.people, "(objectClass=inetOrgPerson)", ["uid"])
    assert ("result", 4) == (caught.value.kind, caught.value.code)


def test_capped_account_hits_the_total_limit_even_when_paging(slapd: Slapd, tree: Tree) -> None:
    """An account whose searches are capped gets result 4 sizeLimitExceeded, paged or not."""
    slapd.add("".join(person(tree.user_dn(f"c{i}"), f"c{i}", "C", str(i)) for i in range(CAPPED_LIMIT + 5)))
    connection = open_ldap3(
        Endpoint(slapd.url, bind_dn=slapd.capped_dn, password=SecretStr(slapd.reader_password), timeout=10)
    )
    cookie = b""
    with pytest.raises(LdapFailure) as caught:  # noqa: PT012 - the limit is hit on the third page
        for _ in range(10):
            cookie = connection.search(tree.people, "(uid=*)", ["uid"], page_size=20, cookie=cookie).cookie
    connection.close()
    assert ("result", 4) == (caught.value.kind, caught.value.code)


def test_values_arrive_raw_and_operational_attributes_when_asked(
    slapd: Slapd, tree: Tree, conn: LdapConnection
) -> None:
    """Unicode names arrive as UTF-8 bytes; entryUUID and ppolicy's lock time arrive when named."""
    slapd.add(person(tree.user_dn("zoe"), "zoe", "Zoë", "Ångström", locked=True))
    page = conn.search(tree.people, "(uid=zoe)", ["givenName", "sn", "entryUUID", "pwdAccountLockedTime"])
    (entry,) = page.entries
    assert [b"Zo\xc3\xab"] == list(entry.attributes["givenName"])
    assert "Ångström" == entry.attributes["sn"][0].decode()
    assert tree.entry_uuid(tree.user_dn("zoe")).encode() == entry.attributes["entryUUID"][0]
    assert [b"000001010000Z"] == list(entry.attributes["pwdAccountLockedTime"])


def test_wrong_password_is_result_49(slapd: Slapd) -> None:
    """A wrong bind password fails the connect with invalidCredentials (49)."""
    with pytest.raises(LdapFailure) as caught:
        open_ldap3(Endpoint(slapd.url, bind_dn=slapd.reader_dn, password=SecretStr("nope"), timeout=10))
    assert ("result", 49) == (caught.value.kind, caught.value.code)
    assert "nope" not in str(caught.value)


def test_missing_base_is_result_32(conn: LdapConnection, slapd: Slapd) -> None:
    """A search base that does not exist answers noSuchObject (32)."""
    with pytest.raises(LdapFailure) as caught:
        conn.search(f"ou=nowhere,{slapd.suffix}", "(objectClass=*)", [])
    assert 32 == caught.value.code


@pytest.mark.parametrize("start_tls", [False, True])
def test_tls_with_the_right_ca_binds(slapd: Slapd, start_tls: bool) -> None:
    """ldaps:// and StartTLS both verify the server against ca_file and bind."""
    url = slapd.starttls_url if start_tls else slapd.ldaps_url
    connection = open_ldap3(reader(slapd, url, start_tls=start_tls, ca_file=slapd.ca.ca_file))
    assert 1 == len(connection.search(slapd.reader_dn, "(objectClass=*)", ["cn"], scope="base").entries)
    connection.close()


@pytest.mark.parametrize("start_tls", [False, True])
def test_tls_with_another_ca_is_refused(slapd: Slapd, start_tls: bool) -> None:
    """A certificate the configured CA did not sign fails as a TLS failure, not as unreachable."""
    url = slapd.starttls_url if start_tls else slapd.ldaps_url
    with pytest.raises(LdapFailure) as caught:
        open_ldap3(reader(slapd, url, start_tls=start_tls, ca_file=slapd.ca.other_ca_file))
    assert "tls" == caught.value.kind
    assert "not trusted" in caught.value.detail


def test_certificate_for_another_name_is_refused(slapd: Slapd) -> None:
    """Reaching the server by an address its certificate does not name fails the host-name check."""
    with pytest.raises(LdapFailure) as caught:
        open_ldap3(reader(slapd, f"ldaps://127.0.0.1:{slapd.tls_port}", ca_file=slapd.ca.ca_file))
    assert ("tls", "the server's certificate does not name the host in the URL") == (
        caught.value.kind,
        caught.value.detail,
    )


def test_tls_verify_off_accepts_any_certificate(slapd: Slapd) -> None:
    """With verification off, a certificate from an unknown CA is accepted."""
    endpoint = reader(slapd, slapd.ldaps_url, ca_file=slapd.ca.other_ca_file, tls_verify=False)
    open_ldap3(endpoint).close()


def test_stopped_server_is_unreachable() -> None:
    """A server stopped under an open connection, and then a new connect, both fail as unreachable."""
    with running_slapd() as server:
        connection = open_ldap3(reader(server))
        server.stop()
        with pytest.raises(LdapFailure) as during:
            connection.search(server.suffix, "(objectClass=*)", [])
        with pytest.raises(LdapFailure) as after:
            open_ldap3(reader(server))
        connection.close()
    assert ("unreachable", "unreachable") == (during.value.kind, after.value.kind)
    assert "connection refused" == after.value.detail
