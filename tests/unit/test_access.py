"""Access in people's terms, the pure part: effective grants and what a plan changes in them."""

from __future__ import annotations

from syncd.access import Directory, effective, impact
from syncd.changes import Action, AssignmentChange, GroupChange, MemberChange, UserChange
from syncd.model import ApplicationAssignment, Assignment, Group, User
from syncd.plan import Plan


ADMIN = Assignment("g-admins", "111111111111", "arn:ps/admin", "admins", "AdministratorAccess", "prod")
READ = Assignment("g-readers", "111111111111", "arn:ps/read", "readers", "ReadOnly", "prod")
WIKI = ApplicationAssignment("g-readers", "arn:app/wiki", "readers", "Wiki")


def directory(**members: set[str]) -> Directory:
    return Directory(
        users={"u1": ("ann@example.com", True), "u2": ("bob@example.com", True), "u3": ("cy@example.com", False)},
        groups={"g-admins": "admins", "g-readers": "readers"},
        members={"g-admins": members.get("admins", set()), "g-readers": members.get("readers", set())},
        assignments=[ADMIN, READ],
        applications=[WIKI],
    )


def test_effective_access_lists_each_path_with_its_group() -> None:
    """A member of two groups has one grant per permission set, account or application, naming the group."""
    grants = effective(directory(admins={"u1"}, readers={"u1"}))
    assert {
        ("ann@example.com", "AdministratorAccess", "prod", "admins", ""),
        ("ann@example.com", "ReadOnly", "prod", "readers", ""),
        ("ann@example.com", "", "", "readers", "Wiki"),
    } == {(g.user, g.permission_set, g.account, g.via_group, g.application) for g in grants}


def test_losing_one_of_two_paths_is_not_a_last_path() -> None:
    """Leaving the admin group loses AdministratorAccess, but prod is still reached through readers."""
    plan = Plan(changes=[MemberChange(Action.REMOVE_MEMBERS, "g-admins", ("u1",))])
    result = impact(directory(admins={"u1"}, readers={"u1"}), plan)
    assert [("ann@example.com", "AdministratorAccess")] == [(g.user, g.permission_set) for g in result.lost]
    assert [] == result.last_path


def test_a_deactivated_user_loses_everything_and_it_is_flagged() -> None:
    """Deactivation ends every grant; the last one into prod is flagged as a last path."""
    user = User("u2", "bob@example.com", "Bob", "Bob", "B", active=False)
    plan = Plan(changes=[UserChange(Action.DEACTIVATE_USER, user)])
    result = impact(directory(readers={"u2"}), plan)
    assert {"ReadOnly", ""} == {g.permission_set for g in result.lost}
    assert {("prod", ""), ("", "Wiki")} == {(g.account, g.application) for g in result.last_path}


def test_a_new_member_of_an_admin_group_is_flagged_and_inactive_people_are_left_out() -> None:
    """Adding bob to admins flags a new administrator; an inactive user added gains nothing usable."""
    plan = Plan(changes=[MemberChange(Action.ADD_MEMBERS, "g-admins", ("u2", "u3"))])
    result = impact(directory(), plan)
    assert [("bob@example.com", "AdministratorAccess")] == [(g.user, g.permission_set) for g in result.new_admins]
    assert ["bob@example.com"] == [g.user for g in result.gained]


def test_a_group_created_with_members_and_an_assignment_is_access_gained() -> None:
    """A new group with inline members and an assignment for it gives those members the permission set."""
    ops = Assignment("g-ops", "222222222222", "arn:ps/power", "ops", "PowerUser", "dev")
    plan = Plan(
        changes=[
            GroupChange(Action.CREATE_GROUP, Group("g-ops", "ops"), members=("u1",)),
            AssignmentChange(Action.CREATE_ASSIGNMENT, ops),
        ]
    )
    result = impact(directory(), plan)
    assert [("ann@example.com", "PowerUser", "dev", "ops")] == [
        (g.user, g.permission_set, g.account, g.via_group) for g in result.gained
    ]
