"""desired, existing and syncd-made → changes: create what is missing, delete only what syncd made."""

from __future__ import annotations

from syncd.assignments.reconcile import reconcile
from syncd.changes import Action, Change, Phase
from syncd.model import Assignment


PS = "arn:aws:sso:::instance/ssoins-1234567890abcdef/ps-aaaaaaaaaaaaaaaa"
A = Assignment("g1", "111111111111", PS, "one", "Admin", "prod")
B = Assignment("g2", "111111111111", PS, "two", "Admin", "prod")
C = Assignment("g1", "222222222222", PS, "one", "Admin", "dev")
TARGETS = {"g1": "tg-1", "g2": "tg-2"}


def actions(changes: list[Change]) -> list[tuple[str, str, str | None]]:
    return [(c.action.value, f"{c.assignment.account_id}/{c.source_id}", c.target_id) for c in changes if c.assignment]


def test_missing_desired_assignments_are_created() -> None:
    """A desired assignment not in AWS is created, with the group's id when known and the rule as reason."""
    changes = reconcile({A: "rule 0", C: "rule 0"}, {C: "tg-1"}, set(), TARGETS, synced_groups={"g1"})

    assert [("create_assignment", "111111111111/g1", "tg-1")] == actions(changes)
    assert ("rule 0", Phase.ASSIGNMENTS) == (changes[0].reason, changes[0].phase)


def test_nothing_to_do_when_aws_holds_what_is_desired() -> None:
    """Desired assignments that exist (made by syncd or not) need no change."""
    assert [] == reconcile({A: "r", B: "r"}, {A: "tg-1", B: "tg-2"}, {A}, TARGETS, synced_groups={"g1", "g2"})


def test_only_assignments_syncd_made_are_deleted() -> None:
    """Of two existing assignments no rule wants, only the one in `made` is deleted."""
    changes = reconcile({}, {A: "tg-1", B: "tg-2"}, {A}, TARGETS, synced_groups={"g1", "g2"})

    assert [("delete_assignment", "111111111111/g1", "tg-1")] == actions(changes)
    assert "no rule wants it any more" == changes[0].reason
    assert "tg-1" == changes[0].before["principal_id"]  # type: ignore[index]


def test_a_deleted_group_loses_its_assignments() -> None:
    """A group gone from the source has its syncd-made assignments deleted, saying why."""
    changes = reconcile({}, {A: "tg-1"}, {A}, TARGETS, synced_groups=set())

    assert "its group is gone from the source" == changes[0].reason


def test_a_made_assignment_gone_from_aws_is_only_forgotten() -> None:
    """A syncd-made assignment that AWS no longer holds gives a delete with no target: record only."""
    changes = reconcile({}, {}, {A}, TARGETS, synced_groups={"g1"})

    assert [("delete_assignment", "111111111111/g1", None)] == actions(changes)
    assert "only syncd's record is dropped" in changes[0].reason


def test_a_made_assignment_deleted_by_hand_but_wanted_is_created_again() -> None:
    """Drift: a wanted assignment syncd made and someone deleted is created again, saying so."""
    changes = reconcile({A: "rule 0"}, {}, {A}, TARGETS, synced_groups={"g1"})

    assert [("create_assignment", "111111111111/g1", "tg-1")] == actions(changes)
    assert "drift" in changes[0].reason


def test_frozen_accounts_are_not_touched() -> None:
    """Assignments syncd made in an account that is not ACTIVE are neither deleted nor recreated."""
    assert [] == reconcile({}, {}, {A}, TARGETS, synced_groups={"g1"}, frozen_accounts={"111111111111"})


def test_deletes_keep_the_cached_names() -> None:
    """A delete shows the names recorded when syncd made the assignment."""
    changes = reconcile({}, {A: "tg-1"}, {A}, TARGETS, synced_groups={"g1"})

    assert "one → Admin @ prod (111111111111)" == changes[0].label()
    assert Action.DELETE_ASSIGNMENT is changes[0].action


def test_a_made_assignment_of_a_forgotten_group_is_only_forgotten() -> None:
    """A syncd-made assignment whose group has no Identity Center id any more is dropped from the record only."""
    changes = reconcile({}, {}, {A}, {}, synced_groups=set())

    assert [("delete_assignment", "111111111111/g1", None)] == actions(changes)
    assert "the group is no longer in Identity Center" in changes[0].reason
