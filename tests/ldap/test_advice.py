"""Failures in plain words: each names what happened and the setting to change."""

from __future__ import annotations

import pytest

from connectors.ldap.advice import explain
from connectors.ldap.conn import LdapFailure
from syncd.errors import SourceAuthError


@pytest.mark.parametrize(
    ("failure", "words"),
    [
        (LdapFailure("timeout", "no answer"), "did not answer while reading users within source.ldap.timeout"),
        (LdapFailure("result", "x", code=3), "time limit; narrow source.ldap.user_base/group_base"),
        (LdapFailure("result", "x", code=50), "may not read there (insufficientAccessRights)"),
        (LdapFailure("result", "x", code=87), "check source.ldap.user_filter, group_filter and disabled_filter"),
        (LdapFailure("result", "search answered 80 other", code=80), "search answered 80 other"),
    ],
)
def test_failures_name_the_fix(failure: LdapFailure, words: str) -> None:
    """Timeouts, limits, permissions and bad filters each say what to change."""
    assert words in str(explain(failure, "ldaps://dc1", "reading users"))


def test_bind_refusal_without_a_known_sub_code_names_both_settings() -> None:
    """A 49 without an AD sub-code (OpenLDAP) names bind_dn and bind_password, as an auth error."""
    error = explain(LdapFailure("result", "bind answered 49", code=49, message=""), "ldap://x", "connecting")
    assert isinstance(error, SourceAuthError)
    assert "check source.ldap.bind_dn and source.ldap.bind_password" in str(error)
