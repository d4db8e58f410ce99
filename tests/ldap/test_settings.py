"""``[source.ldap]`` settings: what is refused, with the key and the fix, and what the presets mean."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from connectors.ldap.settings import LdapSettings


def settings(**overrides: Any) -> LdapSettings:
    """Valid AD settings, with ``overrides``."""
    raw: dict[str, Any] = {
        "preset": "ad",
        "url": "ldaps://dc1.corp.example.com",
        "bind_dn": "svc-syncd@corp.example.com",
        "bind_password": "pw",
        "user_base": "OU=Staff,DC=corp,DC=example,DC=com",
        "group_base": "OU=Groups,DC=corp,DC=example,DC=com",
    }
    raw.update(overrides)
    return LdapSettings.model_validate(raw)


def refusal(**overrides: Any) -> str:
    """The validation message for ``overrides``."""
    with pytest.raises(ValidationError) as caught:
        settings(**overrides)
    return str(caught.value)


def test_one_url_or_several() -> None:
    """url, user_base and group_base take one value or a list."""
    s = settings(url=["ldaps://dc1", "ldaps://dc2:3269"], user_base=["OU=A,DC=x", "OU=B,DC=x"])
    assert (["ldaps://dc1", "ldaps://dc2:3269"], ["OU=A,DC=x", "OU=B,DC=x"]) == (s.url, s.user_base)


def test_plain_ldap_needs_start_tls() -> None:
    """ldap:// without StartTLS is refused, saying what to use instead."""
    assert "would send the bind password unencrypted: use ldaps://" in refusal(url="ldap://dc1")
    assert settings(url="ldap://dc1", start_tls=True).start_tls


def test_start_tls_with_ldaps_is_refused() -> None:
    """StartTLS over ldaps:// makes no sense and is refused."""
    assert "start_tls = true needs ldap:// URLs" in refusal(start_tls=True)


def test_bad_url_filter_and_base_are_refused() -> None:
    """A URL without ldap(s)://, an unbalanced filter and a base that is not a DN each name the problem."""
    assert "is not ldaps://host[:port]" in refusal(url="https://dc1")
    assert "unbalanced parentheses" in refusal(user_filter="(&(objectClass=user)")
    assert "must be an LDAP filter in parentheses" in refusal(group_filter="objectClass=group")
    assert "is not a DN" in refusal(user_base="Staff")


def test_bind_dn_and_password_go_together() -> None:
    """bind_dn without bind_password (or the reverse) is refused."""
    assert "set both bind_dn and bind_password" in refusal(bind_password=None)


def test_password_never_echoed() -> None:
    """A validation error never shows the bind password."""
    assert "hunter2-secret" not in refusal(bind_password="hunter2-secret", url="nope")


def test_password_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """bind_password may be an env: reference; an unset one is refused by name."""
    monkeypatch.setenv("LDAP_PW", "from-env")
    assert "from-env" == settings(bind_password="env:LDAP_PW").bind_password.get_secret_value()  # type: ignore[union-attr]
    assert "env:MISSING_PW names an environment variable that is not set" in refusal(bind_password="env:MISSING_PW")


def test_ca_file_must_hold_a_certificate(tmp_path: Path) -> None:
    """ca_file must exist and hold a PEM certificate."""
    assert "cannot be read" in refusal(ca_file=str(tmp_path / "none.pem"))
    (tmp_path / "junk.pem").write_text("junk")
    assert "holds no PEM certificate" in refusal(ca_file=str(tmp_path / "junk.pem"))


def test_in_chain_only_with_ad() -> None:
    """nesting = "in_chain" needs the ad preset."""
    assert 'it needs preset = "ad"' in refusal(preset="openldap", nesting="in_chain")


def test_presets_and_overrides() -> None:
    """Each preset brings its filters and id attribute; attributes override them."""
    ad, ol = settings(), settings(preset="openldap")
    assert ("(&(objectCategory=person)(objectClass=user))", "objectGUID") == (
        ad.effective_user_filter,
        ad.attribute("id"),
    )
    assert ("(objectClass=inetOrgPerson)", "entryUUID", "mail") == (
        ol.effective_user_filter,
        ol.attribute("id"),
        ol.attribute("user_name"),
    )
    assert "mail" == settings(attributes={"user_name": "mail"}).attribute("user_name")
    assert ("uniqueMember",) == settings(attributes={"member": "uniqueMember"}).member_attributes
    assert settings(preset="openldap", posix_groups=True).effective_group_filter.endswith("(objectClass=posixGroup))")


def test_unknown_key_is_refused() -> None:
    """A misspelt key is refused."""
    assert "Extra inputs are not permitted" in refusal(bind_passwrd="x")
