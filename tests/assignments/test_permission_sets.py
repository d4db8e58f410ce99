"""[[permission_sets]] and [[applications]]: what the config accepts, and the pure plan of changes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from syncd.assignments.applications import reconcile_applications, resolve_applications
from syncd.assignments.config import ApplicationRule, PermissionSetConfig, session_duration
from syncd.assignments.permission_sets import Owned, differences, plan_permission_sets, steps
from syncd.changes import Action
from syncd.model import ApplicationAssignment, Group, PermissionSetSpec


POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
ARN = "arn:aws:sso:::permissionSet/ssoins-0123456789abcdef/ps-0123456789abcdef"


def config(**fields: object) -> PermissionSetConfig:
    return PermissionSetConfig.model_validate({"name": "S3FullAccess", **fields})


def error_of(**fields: object) -> str:
    with pytest.raises(ValidationError) as caught:
        config(**fields)
    return str(caught.value)


@pytest.mark.parametrize(
    ("given", "iso"), [("8h", "PT8H"), ("90m", "PT1H30M"), ("PT12H", "PT12H"), ("1h30m", "PT1H30M")]
)
def test_session_durations_are_written_as_iso_8601(given: str, iso: str) -> None:
    """Session durations in syncd's form or ISO 8601 become the ISO 8601 that AWS takes."""
    assert iso == session_duration(given)


def test_a_session_outside_one_to_twelve_hours_is_refused() -> None:
    """Identity Center takes 1 to 12 hours; 13h is refused with that rule, a bare number with the form to use."""
    assert "from 1 to 12 hours" in error_of(session_duration="13h")
    assert "'8h'" in error_of(session_duration=8)


def test_an_inline_policy_that_is_not_json_is_refused_at_load() -> None:
    """Inline JSON text that does not parse is an error naming inline_policy."""
    assert "inline_policy is not JSON" in error_of(inline_policy='{"Statement": [}')


def test_an_inline_policy_over_32_kb_is_refused_with_the_limit() -> None:
    """A policy longer than PutInlinePolicyToPermissionSet's 32,768 characters is refused before any write."""
    huge = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "x" * 33_000}]}
    assert "AWS takes at most 32,768" in error_of(inline_policy=huge)


def test_more_than_ten_policies_are_refused() -> None:
    """Managed plus customer managed policies are capped at Identity Center's quota of 10."""
    managed = [f"Policy{i}" for i in range(8)]
    customer = [{"name": f"Mine{i}"} for i in range(3)]
    assert "at most 10" in error_of(managed_policies=managed, customer_managed_policies=customer)


def test_managed_policy_names_become_arns() -> None:
    """An AWS managed policy name (with or without its path) is stored as its ARN."""
    ps = config(managed_policies=["AmazonS3FullAccess", "job-function/ViewOnlyAccess"])
    assert {
        "arn:aws:iam::aws:policy/AmazonS3FullAccess",
        "arn:aws:iam::aws:policy/job-function/ViewOnlyAccess",
    } == ps.spec().managed_policies


def test_an_inline_policy_file_is_read_relative_to_the_config(tmp_path: Path) -> None:
    """A file path in inline_policy is read from the config file's folder, and a missing file says which."""
    (tmp_path / "policy.json").write_text(json.dumps(POLICY), encoding="utf-8")
    ps = config(inline_policy="policy.json")
    ps.read_inline_policy(tmp_path)
    assert POLICY == json.loads(ps.spec().inline_policy or "")
    missing = config(inline_policy="gone.json")
    with pytest.raises(ValueError, match=r"cannot read .*gone\.json"):
        missing.read_inline_policy(tmp_path)


def test_syncd_tags_what_it_creates_and_refuses_its_own_tag_key() -> None:
    """Created permission sets carry syncd:managed=true; a config may not set that key itself."""
    assert ("syncd:managed", "true") in config().spec().tags
    assert "syncd's own tag" in error_of(tags={"syncd:managed": "no"})


def test_an_application_arn_must_look_like_one() -> None:
    """A malformed application ARN is refused with the shape AWS uses; a name is accepted as is."""
    with pytest.raises(ValidationError, match="apl-"):
        ApplicationRule(application="arn:aws:sso::1:application/x", group="sales")
    assert "Salesforce" == ApplicationRule(application="Salesforce", group="sales").application


def test_differences_are_said_in_people_s_terms() -> None:
    """An update lists each changed field: durations, policies added and removed, the inline policy."""
    before = PermissionSetSpec("S3", session_duration="PT1H", managed_policies=frozenset({"arn:aws:iam::aws:policy/A"}))
    after = PermissionSetSpec(
        "S3", session_duration="PT8H", managed_policies=frozenset({"arn:aws:iam::aws:policy/B"}), inline_policy="{}"
    )
    assert ["session_duration: PT1H → PT8H", "managed_policies: + B, - A", "inline_policy: added"] == differences(
        before, after
    )


def test_steps_detach_before_attaching_and_send_only_what_changed() -> None:
    """Swapping one policy is a detach then an attach; unchanged fields send nothing."""
    before = PermissionSetSpec("S3", managed_policies=frozenset({"arn:aws:iam::aws:policy/A"}))
    after = PermissionSetSpec("S3", managed_policies=frozenset({"arn:aws:iam::aws:policy/B"}))
    assert [
        "detach_managed_policy_from_permission_set",
        "attach_managed_policy_to_permission_set",
    ] == [s.operation for s in steps(before, after)]
    assert [] == steps(after, after)


def test_a_new_permission_set_is_created_and_one_syncd_owns_is_updated_and_reprovisioned() -> None:
    """Absent → create; owned and different → update then provision to every account it is on."""
    wanted = config(session_duration="8h")
    created = plan_permission_sets([wanted], {}, {}, {}, {})
    assert [Action.CREATE_PERMISSION_SET] == [c.action for c in created.changes]
    held = PermissionSetSpec("S3FullAccess", tags=wanted.spec().tags)
    updated = plan_permission_sets(
        [wanted], {"S3FullAccess": ARN}, {"S3FullAccess": held}, {"S3FullAccess": Owned("S3FullAccess", ARN)}, {}
    )
    assert [Action.UPDATE_PERMISSION_SET, Action.PROVISION_PERMISSION_SET] == [c.action for c in updated.changes]
    assert "session_duration: PT1H → PT8H" == updated.changes[0].reason


def test_a_permission_set_syncd_does_not_own_is_an_error_unless_adopted() -> None:
    """A configured name that exists and is not syncd's stops the run; adopt = true records and manages it."""
    refused = plan_permission_sets([config()], {"S3FullAccess": ARN}, {}, {}, {})
    assert "permission_sets.0.name" in refused.errors[0]
    assert [] == refused.changes
    adopted = plan_permission_sets(
        [config(adopt=True)], {"S3FullAccess": ARN}, {"S3FullAccess": config().spec()}, {}, {}
    )
    assert [Action.ADOPT_PERMISSION_SET] == [c.action for c in adopted.changes]


def test_only_what_syncd_created_is_deleted_when_it_leaves_the_config() -> None:
    """Created → delete; adopted → handed back (forgotten, kept); deleted by hand → forgotten."""
    owned = {"Made": Owned("Made", ARN, "created"), "Taken": Owned("Taken", ARN + "1", "adopted")}
    owned["Gone"] = Owned("Gone", ARN + "2", "created")
    plan = plan_permission_sets([], {"Made": ARN, "Taken": ARN + "1"}, {}, owned, {})
    assert {
        ("Made", Action.DELETE_PERMISSION_SET),
        ("Taken", Action.FORGET_PERMISSION_SET),
        ("Gone", Action.FORGET_PERMISSION_SET),
    } == {(c.source_id, c.action) for c in plan.changes}


def test_accounts_left_on_an_old_version_are_provisioned_again() -> None:
    """An owned permission set equal to the config but outdated in some accounts is provisioned to those."""
    spec = config().spec()
    plan = plan_permission_sets(
        [config()],
        {"S3FullAccess": ARN},
        {"S3FullAccess": spec},
        {"S3FullAccess": Owned("S3FullAccess", ARN)},
        {"S3FullAccess": ["222222222222"]},
    )
    assert [Action.PROVISION_PERMISSION_SET] == [c.action for c in plan.changes]
    assert ("222222222222",) == plan.changes[0].permission_set.accounts


def test_application_rules_resolve_by_name_and_reconcile_by_ownership() -> None:
    """Groups matching a rule want the app; only syncd's own assignments are ever deleted."""
    apps = {"arn:app1": "Salesforce", "arn:app2": "Wiki"}
    groups = [Group("g1", "sales-emea"), Group("g2", "engineers")]
    resolution = resolve_applications([ApplicationRule(application="salesforce", group="sales-*")], groups, apps)
    assert [] == resolution.errors
    assert {ApplicationAssignment("g1", "arn:app1")} == set(resolution.desired)
    mine = ApplicationAssignment("g2", "arn:app2")
    changes = reconcile_applications(resolution.desired, {mine: "id2"}, {mine}, {"g1": "id1", "g2": "id2"})
    assert {("g1", Action.CREATE_APPLICATION_ASSIGNMENT), ("g2", Action.DELETE_APPLICATION_ASSIGNMENT)} == {
        (c.source_id, c.action) for c in changes
    }
    unknown = resolve_applications([ApplicationRule(application="Jira", group="*")], groups, apps)
    assert "applications.0.application: no application named 'Jira'" in unknown.errors[0]


def test_the_access_as_code_example_loads_with_its_policy_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """deploy/examples/access-as-code.toml loads as shipped, reading the inline policy file beside it."""
    from syncd import config as config_module

    monkeypatch.setenv("SCIM_TOKEN", "t")
    example = Path(__file__).parents[2] / "deploy" / "examples" / "access-as-code.toml"
    settings = config_module.load(example)
    assert ["S3FullAccess", "DataRead"] == [p.name for p in settings.permission_sets]
    policy = json.loads(settings.permission_sets[1].spec().inline_policy or "")
    assert "ReadTheDataBucket" == policy["Statement"][0]["Sid"]
    assert ["Salesforce"] == [a.application for a in settings.applications]


def test_the_plan_shows_permission_set_changes_as_a_diff() -> None:
    """`syncd plan` lists a created permission set with +, an update's differences line by line, a re-provision."""
    from syncd.plan import Plan
    from syncd.plan_view import diff_lines

    wanted = config(session_duration="8h")
    held = PermissionSetSpec("S3FullAccess", tags=wanted.spec().tags)
    updated = plan_permission_sets(
        [wanted], {"S3FullAccess": ARN}, {"S3FullAccess": held}, {"S3FullAccess": Owned("S3FullAccess", ARN)}, {}
    )
    created = plan_permission_sets([config(name="DataRead")], {}, {}, {}, {})
    lines = [(line.sign, line.text) for line in diff_lines(Plan(changes=created.changes + updated.changes))]
    assert [
        ("+", "permission set DataRead"),
        ("~", "permission set S3FullAccess"),
        ("", "session_duration: PT1H → PT8H"),
        ("~", "permission set S3FullAccess re-provisioned to every account it is on (updated)"),
    ] == lines
