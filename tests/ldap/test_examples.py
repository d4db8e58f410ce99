"""deploy/examples/ldap-ad.toml and ldap-openldap.toml are valid configurations."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.ldap.settings import LdapSettings
from syncd import config as config_module
from tests.fakes.slapd import TestCA


EXAMPLES = Path(__file__).resolve().parents[2] / "deploy" / "examples"


@pytest.mark.parametrize(("name", "preset"), [("ldap-ad.toml", "ad"), ("ldap-openldap.toml", "openldap")])
def test_ldap_examples_load(name: str, preset: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each LDAP example loads with its secrets and CA file in place, TLS on and the expected preset."""
    ca = TestCA.create(tmp_path / "tls")
    (tmp_path / "scim_token").write_text("scim-token")
    (tmp_path / "ldap_password").write_text("pw")
    monkeypatch.setenv("LDAP_PASSWORD", "pw")
    text = (EXAMPLES / name).read_text(encoding="utf-8")
    text = text.replace("file:/run/secrets/", f"file:{tmp_path}/")
    text = text.replace('"/etc/syncd/corp-root-ca.pem"', f'"{ca.ca_file}"').replace(
        '"/etc/syncd/ldap-ca.pem"', f'"{ca.ca_file}"'
    )
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    source = config_module.load(path).connector_settings()
    assert isinstance(source, LdapSettings)
    assert (preset, True) == (source.preset, source.tls_verify)
    assert all(u.startswith("ldaps://") for u in source.url) or source.start_tls
