"""The [aws] table and the [[assignments]] rules: shapes accepted, and errors that name the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from syncd import config
from syncd.assignments.config import AssignmentRule, AwsConfig
from syncd.errors import ConfigError


BASE = """
[source]
type = "file"
[source.file]
path = "directory.json"
[target]
scim_url = "https://scim.eu-west-1.amazonaws.com/abc/scim/v2"
scim_token = "token-not-checked-here"
"""


def _load(tmp_path: Path, extra: str, monkeypatch: pytest.MonkeyPatch) -> config.Settings:
    path = tmp_path / "syncd.toml"
    path.write_text(BASE + extra)
    monkeypatch.delenv("SYNCD_CONFIG", raising=False)
    return config.load(path)


def _errors(**rule: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        AssignmentRule(**rule)
    return str(caught.value)


def test_every_kind_of_rule_loads_from_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Explicit rules on accounts, OUs and all accounts, and a pattern rule, load with [aws]."""
    settings = _load(
        tmp_path,
        """
[aws]
region = "eu-west-1"
[[assignments]]
group = "aws-platform"
permission_set = "AdministratorAccess"
accounts = ["111111111111", "222222222222"]
[[assignments]]
group = "Engineering*"
permission_set = "arn:aws:sso:::permissionSet/ssoins-1234567890abcdef/ps-1234567890abcdef"
ous = ["ou-ab12-cdef3456", "r-ab12"]
[[assignments]]
group = "auditors"
permission_set = "ReadOnly"
all = true
[[assignments]]
pattern = '^aws-(?P<account>\\d{12})-(?P<permission_set>[\\w+=,.@-]+)$'
""",
        monkeypatch,
    )

    assert "eu-west-1" == settings.aws.region
    assert ["accounts", "ous", "all", "pattern"] == [rule.kind for rule in settings.assignments]
    assert "111111111111" == settings.assignments[0].accounts[0]  # type: ignore[index]


def test_no_rules_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without [[assignments]] there are no rules and [aws] is all defaults."""
    settings = _load(tmp_path, "", monkeypatch)

    assert ([], AwsConfig()) == (settings.assignments, settings.aws)


def test_config_errors_name_the_rule_and_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad rule exits as ConfigError naming assignments.<index>.<key>."""
    with pytest.raises(ConfigError) as caught:
        _load(
            tmp_path,
            """
[[assignments]]
group = "ok"
permission_set = "ReadOnly"
all = true
[[assignments]]
group = "aws-x"
permission_set = "not a name"
accounts = ["111111111111"]
""",
            monkeypatch,
        )

    assert "assignments.1.permission_set: 'not a name' is neither a permission set name" in str(caught.value)
    assert "assignments.0" not in str(caught.value)


def test_an_unknown_key_in_a_rule_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A misspelt key in a rule (or in [aws]) is an error naming it."""
    with pytest.raises(ConfigError) as caught:
        _load(
            tmp_path,
            """
[aws]
regoin = "eu-west-1"
[[assignments]]
group = "g"
permission_set = "ReadOnly"
account = ["111111111111"]
""",
            monkeypatch,
        )

    assert "assignments.0.account: Extra inputs are not permitted" in str(caught.value)
    assert "aws.regoin: Extra inputs are not permitted; did you mean 'region'?" in str(caught.value)


def test_exactly_one_target() -> None:
    """An explicit rule needs exactly one of accounts, ous and all = true."""
    assert "none is set" in _errors(group="g", permission_set="ReadOnly")
    assert "accounts and all are set" in _errors(
        group="g", permission_set="ReadOnly", accounts=["111111111111"], all=True
    )
    assert "accounts and ous are set" in _errors(
        group="g", permission_set="ReadOnly", accounts=["111111111111"], ous=["ou-ab12-cdef3456"]
    )


def test_group_and_permission_set_are_required() -> None:
    """An explicit rule without group or permission_set says what it needs."""
    assert "group and permission_set missing" in _errors(accounts=["111111111111"])
    assert "permission_set missing" in _errors(group="g", all=True)


def test_a_pattern_rule_takes_nothing_else() -> None:
    """A pattern with a group, permission set or target is refused and told to split."""
    pattern = r"^aws-(?P<account>\d{12})-(?P<permission_set>\w+)$"

    assert "but group and all are set too" in _errors(pattern=pattern, group="g", all=True)


def test_a_pattern_must_compile_and_name_both_groups() -> None:
    """A pattern that is not a regular expression, or lacks a named group, is refused."""
    assert "is not a regular expression" in _errors(pattern="^aws-(?P<account>[")
    missing = _errors(pattern=r"^aws-(?P<account>\d{12})$")
    assert "no named group (?P<permission_set>...)" in missing
    assert "(?P<account>...)" not in missing


def test_account_ids_are_twelve_digit_strings() -> None:
    """Account ids written as numbers, too short or empty are refused with the fix."""
    assert "write account ids as strings in quotes" in _errors(group="g", permission_set="P", accounts=[123456789012])
    assert "'12345': an account id is 12 digits" in _errors(group="g", permission_set="P", accounts=["12345"])
    assert "is empty" in _errors(group="g", permission_set="P", accounts=[])


def test_ous_are_ids_not_names() -> None:
    """An OU written by name is refused, pointing at the id form."""
    assert "not OU names" in _errors(group="g", permission_set="P", ous=["Engineering"])


def test_instance_arn_shape() -> None:
    """[aws] instance_arn must look like an instance ARN; the hint says how to find it."""
    with pytest.raises(ValidationError, match="list-instances"):
        AwsConfig(instance_arn="ssoins-1234567890abcdef")

    assert AwsConfig(instance_arn="arn:aws:sso:::instance/ssoins-1234567890abcdef").instance_arn


def test_describe_says_what_a_rule_does() -> None:
    """describe() names the group, permission set and target, or the pattern."""
    rule = AssignmentRule(group="aws-*", permission_set="ReadOnly", ous=["ou-ab12-cdef3456"])

    assert "group 'aws-*' → ReadOnly on OUs ou-ab12-cdef3456" == rule.describe()
    assert "pattern '^x$'" == AssignmentRule.model_construct(pattern="^x$").describe()


def test_the_example_config_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    """deploy/examples/assignments.toml is a valid configuration with one rule of each kind."""
    monkeypatch.setenv("SCIM_TOKEN", "example-token")
    monkeypatch.delenv("SYNCD_CONFIG", raising=False)
    example = Path(__file__).resolve().parents[2] / "deploy" / "examples" / "assignments.toml"

    settings = config.load(example)

    assert ["accounts", "ous", "all", "pattern"] == [rule.kind for rule in settings.assignments]
    pattern = settings.assignments[3].compiled()
    assert {"account": "sandbox", "permission_set": "ReadOnlyAccess"} == pattern.fullmatch(
        "aws-sandbox-ReadOnlyAccess"
    ).groupdict()  # type: ignore[union-attr]
    assert pattern.fullmatch("platform-admins") is None
