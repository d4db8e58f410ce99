"""The plan: a pure diff from snapshot and cache (and live state) to ordered changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from syncd.changes import Action, Phase
from syncd.grace import Grace
from syncd.guard import Limit, check
from syncd.live import LiveGroup, LiveState, LiveUser
from syncd.model import Group, Snapshot, User
from syncd.plan import make_plan
from syncd.state import CachedGroup, CachedUser, CacheState


def user(sid: str, name: str | None = None, *, active: bool = True) -> User:
    name = name or f"user{sid}@example.com"
    return User(sid, name, f"User {sid}", "User", sid, email=name, active=active)


def group(sid: str, members: set[str], name: str | None = None) -> Group:
    return Group(sid, name or f"group-{sid}", members=frozenset(members))


def cached(u: User, tid: str | None = None) -> CachedUser:
    return CachedUser(u.source_id, tid or f"t-{u.source_id}", u.user_name, u.digest(), u.payload())


def cached_group(g: Group, tid: str | None = None) -> CachedGroup:
    return CachedGroup(g.source_id, tid or f"tg-{g.source_id}", g.display_name, g.digest())


def converged(snapshot: Snapshot) -> CacheState:
    return CacheState(
        users={sid: cached(u) for sid, u in snapshot.users.items()},
        groups={sid: cached_group(g) for sid, g in snapshot.groups.items()},
        members={sid: set(g.members) for sid, g in snapshot.groups.items() if g.members},
    )


def snap(users: list[User], groups: list[Group]) -> Snapshot:
    return Snapshot(users={u.source_id: u for u in users}, groups={g.source_id: g for g in groups})


class TestIncremental:
    def test_first_run_creates_everything_in_order(self) -> None:
        """An empty cache plans user creates, then group creates, then member adds."""
        s = snap([user("1"), user("2")], [group("g", {"1", "2"})])
        plan = make_plan(s, CacheState())
        assert [Action.CREATE_USER, Action.CREATE_USER, Action.CREATE_GROUP] == [c.action for c in plan]
        assert ("1", "2") == plan.changes[2].members

    def test_no_change_plans_nothing(self) -> None:
        """When the source equals the cache, the plan is empty: zero writes."""
        s = snap([user("1")], [group("g", {"1"})])
        assert [] == make_plan(s, converged(s)).changes

    def test_rename_is_an_update_in_place(self) -> None:
        """A changed userName is an update of the same Identity Center id, never delete + create."""
        s = snap([user("1")], [])
        state = converged(s)
        renamed = snap([user("1", "new@example.com")], [])
        plan = make_plan(renamed, state)
        assert [(Action.UPDATE_USER, "t-1")] == [(c.action, c.target_id) for c in plan]
        assert plan.changes[0].reason.startswith("renamed from")

    def test_disabled_user_is_deactivated(self) -> None:
        """A user disabled at the source is deactivated, not deleted."""
        s = snap([user("1")], [])
        plan = make_plan(snap([user("1", active=False)], []), converged(s))
        assert [Action.DEACTIVATE_USER] == [c.action for c in plan]

    def test_large_group_is_batched_by_100(self) -> None:
        """A 250-member group is created with 100 inline members, then two batches of 100 and 50."""
        users = [user(str(i)) for i in range(250)]
        s = snap(users, [group("g", {u.source_id for u in users})])
        plan = make_plan(s, CacheState())
        create = next(c for c in plan if c.action is Action.CREATE_GROUP)
        adds = [c for c in plan if c.action is Action.ADD_MEMBERS]
        assert (100, [100, 50]) == (len(create.members), [len(c.members) for c in adds])

    def test_leaver_is_deleted_last_without_member_removals(self) -> None:
        """A user gone from the source is deleted in the last phase; no separate member removal is sent."""
        s = snap([user("1"), user("2")], [group("g", {"1", "2"})])
        plan = make_plan(snap([user("1")], [group("g", {"1"})]), converged(s))
        assert [(Action.DELETE_USER, Phase.DELETE_USERS)] == [(c.action, c.phase) for c in plan]

    def test_membership_move(self) -> None:
        """Moving a user between groups is one add and one remove, adds first."""
        s = snap([user("1")], [group("a", {"1"}), group("b", set())])
        plan = make_plan(snap([user("1")], [group("a", set()), group("b", {"1"})]), converged(s))
        assert [(Action.ADD_MEMBERS, "b"), (Action.REMOVE_MEMBERS, "a")] == [(c.action, c.source_id) for c in plan]

    def test_group_rename_is_update(self) -> None:
        """A renamed group is a PATCH of the same id."""
        s = snap([], [group("g", set(), "old")])
        plan = make_plan(snap([], [group("g", set(), "new")]), converged(s))
        assert [(Action.UPDATE_GROUP, "tg-g")] == [(c.action, c.target_id) for c in plan]

    def test_counts_match_json_keys(self) -> None:
        """Counts use the keys of `sync --json` and count members, not requests."""
        users = [user(str(i)) for i in range(150)]
        s = snap(users, [group("g", {u.source_id for u in users})])
        counts = make_plan(s, CacheState()).counts()
        assert (150, 1, 150, 0) == (
            counts["users_created"],
            counts["groups_created"],
            counts["members_added"],
            counts["assignments_created"],
        )

    def test_a_plan_without_removals_keeps_creates_and_adds_only(self) -> None:
        """removals=False (the rounds of writes during the read) plans no deactivation, delete or
        member removal for what a partial snapshot leaves out, and the same creates and adds."""
        everyone = snap([user("1"), user("2"), user("3")], [group("a", {"1", "2"}), group("b", {"3"})])
        partial = snap([user("1"), user("2"), user("4")], [group("a", {"1", "4"})])
        grace = Grace(timedelta(days=7), datetime(2026, 12, 1, tzinfo=UTC))
        full = make_plan(partial, converged(everyone), grace=grace)
        lean = make_plan(partial, converged(everyone), grace=grace, removals=False)
        kept = (Action.CREATE_USER, Action.ADD_MEMBERS)
        assert {Action.DEACTIVATE_USER, Action.RETIRE_GROUP, Action.REMOVE_MEMBERS} <= {c.action for c in full}
        assert [(c.action, c.source_id) for c in full if c.action in kept] == [(c.action, c.source_id) for c in lean]
        assert [("4",), ("4",)] == [c.members for c in lean if c.action is Action.ADD_MEMBERS] + [
            (c.source_id,) for c in lean if c.action is Action.CREATE_USER
        ]


class TestFullResync:
    def live_user(self, tid: str, u: User, **changes: object) -> LiveUser:
        data = {**u.payload(), **changes}
        return LiveUser(tid, data.get("externalId"), str(data["userName"]), data)  # type: ignore[arg-type]

    def test_adopts_hand_made_user_by_user_name_case_insensitively(self) -> None:
        """A live user with the same userName (other case) and no externalId is adopted, then updated."""
        u = user("1", "Ann@example.com")
        live = LiveState(users=[self.live_user("hand", u, userName="ann@example.com", externalId=None)])
        plan = make_plan(snap([u], []), CacheState(), live)
        assert [(Action.ADOPT_USER, "hand"), (Action.UPDATE_USER, "hand")] == [(c.action, c.target_id) for c in plan]

    def test_leaves_unowned_group_alone(self) -> None:
        """A live group that matches nothing in the source is neither changed nor deleted."""
        live = LiveState(groups=[LiveGroup("ct", None, "AWSControlTowerAdmins")])
        assert [] == make_plan(snap([], []), CacheState(), live).changes

    def test_restores_membership_removed_by_hand(self) -> None:
        """A membership the cache believes in but Identity Center lacks is added again."""
        u = user("1")
        g = group("g", {"1"})
        s = snap([u], [g])
        live = LiveState(
            users=[self.live_user("t-1", u)], groups=[LiveGroup("tg-g", "g", g.display_name)], members={"tg-g": set()}
        )
        plan = make_plan(s, converged(s), live)
        assert [(Action.ADD_MEMBERS, ("1",))] == [(c.action, c.members) for c in plan]

    def test_recreates_user_deleted_by_hand(self) -> None:
        """A managed user missing from Identity Center is created again, marked as drift."""
        u = user("1")
        s = snap([u], [])
        plan = make_plan(s, converged(s), LiveState())
        assert [Action.CREATE_USER] == [c.action for c in plan]
        assert plan.changes[0].reason.startswith("drift")

    def test_repairs_attribute_drift(self) -> None:
        """An attribute edited by hand in Identity Center is set back."""
        u = user("1")
        s = snap([u], [])
        live = LiveState(users=[self.live_user("t-1", u, displayName="Edited by hand")])
        plan = make_plan(s, converged(s), live)
        assert [(Action.UPDATE_USER, "drift: edited in Identity Center")] == [(c.action, c.reason) for c in plan]

    def test_hand_added_unmanaged_member_is_kept(self) -> None:
        """A member that syncd does not manage, added by hand to a managed group, is not removed."""
        u = user("1")
        g = group("g", {"1"})
        s = snap([u], [g])
        live = LiveState(
            users=[self.live_user("t-1", u), LiveUser("stranger", None, "x", {})],
            groups=[LiveGroup("tg-g", "g", g.display_name)],
            members={"tg-g": {"t-1", "stranger"}},
        )
        assert [] == make_plan(s, converged(s), live).changes


class TestGuard:
    def test_refuses_losing_half_the_users(self) -> None:
        """Deleting half of the managed users is refused under the default 10% limit, with the fix named."""
        users = [user(str(i)) for i in range(20)]
        s = snap(users, [])
        plan = make_plan(snap(users[:10], []), converged(s))
        verdict = check(plan, Limit.parse("10%"))
        assert "10 of 20 managed users" in verdict.refused
        assert "--allow-deletions" in verdict.refused

    def test_allow_deletions_lifts_the_limit(self) -> None:
        """--allow-deletions lets the same plan through."""
        users = [user(str(i)) for i in range(20)]
        plan = make_plan(snap(users[:10], []), converged(snap(users, [])))
        assert "" == check(plan, Limit.parse("10%"), allow_deletions=True).refused

    def test_percentage_rounds_up(self) -> None:
        """A small directory may lose one user per run under a percentage limit."""
        assert (1, 2, 5) == (
            Limit.parse("10%").allowed(5),
            Limit.parse("10%").allowed(11),
            Limit.parse(5).allowed(1000),
        )

    def test_groups_all_empty_is_refused_with_the_count(self) -> None:
        """Every group coming back without members is refused, saying how many memberships would go."""
        users = [user(str(i)) for i in range(10)]
        groups = [group("a", {str(i) for i in range(6)}), group("b", {str(i) for i in range(4, 10)})]
        plan = make_plan(snap(users, [group("a", set()), group("b", set())]), converged(snap(users, groups)))
        verdict = check(plan, Limit.parse("10%"))
        assert (12, 12, 2) == (verdict.member_removals, plan.managed_memberships, verdict.members_allowed)
        assert "12 of 12 managed group memberships would be removed" in verdict.refused
        assert "safety.max_member_removals" in verdict.refused

    def test_member_removals_within_the_limit_pass(self) -> None:
        """Moving one member of ten is within the default 10% of managed memberships."""
        users = [user(str(i)) for i in range(10)]
        before = snap(users, [group("a", {str(i) for i in range(10)})])
        plan = make_plan(snap(users, [group("a", {str(i) for i in range(9)})]), converged(before))
        assert "" == check(plan, Limit.parse("50"), member_limit=Limit.parse("10%")).refused

    def test_a_percentage_of_a_small_base_allows_one(self) -> None:
        """Any percentage above 0% allows at least one change, even of an empty base; 0% allows none."""
        assert (1, 1, 0) == (Limit.parse("10%").allowed(0), Limit.parse("1%").allowed(3), Limit.parse("0%").allowed(9))

    def test_adopted_users_count_in_the_base(self) -> None:
        """A first full resync adopting a user suspended at the source deactivates 1 of 1 managed users: allowed."""
        suspended = user("1", active=False)
        live = LiveState(users=[LiveUser("t-1", None, suspended.user_name, {**suspended.payload(), "active": True})])
        plan = make_plan(snap([suspended], []), CacheState(), live)
        assert [Action.ADOPT_USER, Action.DEACTIVATE_USER] == [c.action for c in plan]
        assert (1, "") == (plan.managed_users, check(plan, Limit.parse("10%")).refused)
