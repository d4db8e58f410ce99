"""Secrets: references resolved and stripped, bad values refused by key, and every secret scrubbed from text."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel, SecretStr, ValidationError

from syncd import config as config_module
from syncd.errors import ConfigError, TargetUnavailable
from syncd.logging import scrub_event
from syncd.secrets import Secret, SecretText, describe, forget_all, scrub
from tests.conftest import Workspace


TOKEN_VALUE = "tok-3c1Xq9-Fz0pLm7"


class Settings(BaseModel):
    token: Secret
    key: SecretText | None = None


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    """Each test starts with no remembered secret."""
    forget_all()
    yield
    forget_all()


@pytest.mark.parametrize("written", [f"{TOKEN_VALUE}\n", f"  {TOKEN_VALUE} \r\n", f"\t{TOKEN_VALUE}"])
def test_surrounding_whitespace_is_stripped_from_every_form(
    written: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A secret inline, in env: or in file: loses a trailing newline or surrounding spaces."""
    path = tmp_path / "token"
    path.write_text(written, encoding="utf-8")
    monkeypatch.setenv("A_TOKEN", written)
    for reference in (written, "env:A_TOKEN", f"file:{path}"):
        assert TOKEN_VALUE == Settings(token=reference).token.get_secret_value()


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("tok-abc\ndef-123", "line break, tab or other control character"),
        ("tok-abc\tdef-123", "line break, tab or other control character"),
        ("tok-abc\x00def-123", "line break, tab or other control character"),
        ("tok-abcdéf-123", "outside ASCII"),
    ],
)
def test_a_control_or_non_ascii_character_inside_is_refused_without_the_value(
    value: str, fragment: str, tmp_path: Path
) -> None:
    """A token with a newline, tab, NUL or non-ASCII character inside is refused, naming the reference only."""
    path = tmp_path / "token"
    path.write_text(value + "\n", encoding="utf-8")
    with pytest.raises(ValidationError) as caught:
        Settings(token=f"file:{path}")
    message = str(caught.value.errors(include_input=False)[0]["msg"])
    assert fragment in message
    assert f"file:{path}" in message
    assert "abc" not in message
    assert "def" not in message


def test_multi_line_key_material_keeps_its_lines(tmp_path: Path) -> None:
    """A PEM key (SecretText) keeps its inner line breaks and loses the trailing one."""
    body = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7"
    pem = f"-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n"
    path = tmp_path / "key.pem"
    path.write_text(pem, encoding="utf-8")
    settings = Settings(token="t0k3n-value", key=f"file:{path}")
    assert settings.key is not None
    assert pem.strip() == settings.key.get_secret_value()
    with pytest.raises(ValidationError, match="control character"):
        Settings(token="t0k3n-value", key="-----BEGIN\x07 KEY-----")


def test_a_blank_secret_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """An env: variable holding only whitespace is as good as unset."""
    monkeypatch.setenv("A_TOKEN", " \n")
    with pytest.raises(ValidationError, match="not set or is blank"):
        Settings(token="env:A_TOKEN")


def test_the_config_names_the_key_and_exits_2(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SCIM token with an inner newline is a configuration error naming target.scim_token (exit 2)."""
    monkeypatch.setenv("SYNCD_TEST_SCIM_TOKEN", "scim-first-half\nscim-second-half")
    with pytest.raises(ConfigError) as caught:
        config_module.load(workspace.config)
    message = str(caught.value)
    assert 2 == caught.value.exit_code
    assert "target.scim_token: env:SYNCD_TEST_SCIM_TOKEN has a line break" in message
    assert "half" not in message


def test_scrub_masks_every_resolved_secret_and_any_credential() -> None:
    """Once resolved, a secret is masked in any text; so is anything shaped like an Authorization credential."""
    Settings(token=f"{TOKEN_VALUE}\n")
    text = f"Illegal header value b'Bearer {TOKEN_VALUE}\\n'; also {TOKEN_VALUE}"
    assert "Illegal header value b'Bearer ***\\n'; also ***" == scrub(text)
    assert "Authorization: SSWS ***" == scrub("Authorization: SSWS 00Tunknown-but-shaped-like-one")
    assert "Basic checks passed" == scrub("Basic checks passed"), "prose is left alone"


def test_multi_line_secrets_are_scrubbed_line_by_line() -> None:
    """A line of a remembered key that shows up on its own is masked too."""
    line = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7"
    Settings(token="t0k3n-value", key=f"-----BEGIN PRIVATE KEY-----\n{line}\n-----END PRIVATE KEY-----")
    assert "parse error near ***" == scrub(f"parse error near {line}")


def test_errors_logs_and_exception_descriptions_are_scrubbed() -> None:
    """A SyncdError's message, a log event's fields and an exception's description never carry a resolved secret."""
    Settings(token=TOKEN_VALUE)
    error = TargetUnavailable(f"could not be reached (LocalProtocolError: Bearer {TOKEN_VALUE})")
    assert TOKEN_VALUE not in str(error)
    event = scrub_event(None, "error", {"event": "x", "error": TOKEN_VALUE, "nested": {"list": [TOKEN_VALUE]}})
    assert {"event": "x", "error": "***", "nested": {"list": ["***"]}} == event
    assert "ValueError: bad ***" == describe(ValueError(f"bad {TOKEN_VALUE}"))
    assert TOKEN_VALUE == SecretStr(TOKEN_VALUE).get_secret_value()  # the value itself is untouched


def test_an_ldap_password_may_hold_any_letter_but_a_token_may_not() -> None:
    """A UTF-8 bind password (RFC 4513 §5.1.2) is accepted; the same text as a header token is refused."""
    import pytest

    from syncd.secrets import resolve, resolve_password

    assert "pässwörd" == resolve_password("  pässwörd\n")
    with pytest.raises(ValueError, match="outside ASCII"):
        resolve("pässwörd")
    with pytest.raises(ValueError, match="control character"):
        resolve_password("pass\nword")
