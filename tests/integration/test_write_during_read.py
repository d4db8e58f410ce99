"""Writes during the read (`[safety] write_during_read`): safe creates land while the source is read.

The source here announces its users and groups (connectors.base.ReadListener) and then waits on
an event the test sets, so a test sees what reached Identity Center while the read was still
going, and then lets the read end (or fail). Nothing waits on time: the run tells the test what
landed through its progress hook.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from structlog.testing import capture_logs

from connectors.base import ReadContext
from syncd import config
from syncd.cache import Cache
from syncd.emulator import running_emulator
from syncd.engine import Engine, RunOptions
from syncd.errors import SourceError
from syncd.model import RequestStats, SourceGroup, SourceRead, SourceUser
from syncd.plan import Change, Plan
from syncd.results import RunResult
from syncd.wiring import build_engine, open_cache
from tests.conftest import TOKEN, Hold, Workspace, make_directory
from tests.integration.cli import idc_view
from tests.integration.test_cli_sync import sync


LIMIT = 60.0
"""Only a broken build waits this long for an event (the test then fails instead of hanging)."""


class Announcing:
    """A source that announces every user and group, then waits for :attr:`proceed` to return.

    ``fail``: the read raises after its announcements; ``incomplete``: it returns, saying it is partial.
    """

    def __init__(self, data: dict[str, Any], *, fail: bool = False, incomplete: bool = False) -> None:
        self.users = [
            SourceUser(
                id=u["id"],
                user_name=u["user_name"],
                email=u["email"],
                given_name=u["given_name"],
                family_name=u["family_name"],
                active=u["active"],
            )
            for u in data["users"]
        ]
        self.groups = [
            SourceGroup(id=g["id"], name=g["name"], members=tuple(g["members"]), groups=tuple(g["groups"]))
            for g in data["groups"]
        ]
        self.fail = fail
        self.incomplete = incomplete
        self.proceed = asyncio.Event()
        self.listener: Any = None
        self.writes_during: int | None = None
        self.emulator_writes: Callable[[], int] = lambda: 0
        self.stats = RequestStats()

    async def read(self, ctx: ReadContext) -> SourceRead:
        self.listener = ctx.listener
        at_start = self.emulator_writes()
        if ctx.listener is not None:
            ctx.listener.users_read(self.users)
            ctx.listener.groups_listed([replace(g, members=(), groups=()) for g in self.groups])
            for group in self.groups:
                ctx.listener.group_read(group)
        await self.proceed.wait()
        self.writes_during = self.emulator_writes() - at_start
        if self.fail:
            raise SourceError("the test source lost its connection")
        return SourceRead(users=self.users, groups=self.groups, complete=not self.incomplete)

    async def aclose(self) -> None:
        return None


class Landed:
    """A progress hook that counts what landed and wakes the test once enough has."""

    def __init__(self) -> None:
        self.planned_writes = 0
        self.done: list[str] = []
        self._waits: list[tuple[str, int, asyncio.Event]] = []

    def planned(self, plan: Plan) -> None:
        self.planned_writes += len(plan.writes)

    def advance(self, change: Change, *, ok: bool) -> None:
        if ok:
            self.done.append(str(change.action))
        for action, count, event in self._waits:
            if self.done.count(action) >= count:
                event.set()

    async def until(self, action: str, count: int) -> None:
        event = asyncio.Event()
        self._waits.append((action, count, event))
        if self.done.count(action) >= count:
            event.set()
        await asyncio.wait_for(event.wait(), LIMIT)


During = Callable[[Engine, Announcing, Landed], Awaitable[None]]


def run(
    ws: Workspace, source: Announcing, during: During | None = None, progress: Landed | None = None, **options: Any
) -> RunResult:
    """One run of ``source`` with the workspace's settings; ``during`` runs while the read waits, then it ends."""
    settings = config.load(ws.config)
    cache = open_cache(settings, read_only=bool(options.get("dry_run")))
    progress = progress or Landed()
    source.emulator_writes = lambda: ws.emu.stats.writes

    async def go() -> RunResult:
        async with build_engine(settings, cache) as engine:
            engine.source = source
            task = asyncio.create_task(engine.run(RunOptions(progress=progress, **options)))
            if during is not None:
                await during(engine, source, progress)
            source.proceed.set()
            return await task

    try:
        return asyncio.run(go())
    finally:
        cache.close()


def creates_landed(count: int, member_adds: int = 0) -> During:
    """Wait until ``count`` users were created (and ``member_adds`` PATCHes sent), while the read is still held."""

    async def during(engine: Engine, source: Announcing, progress: Landed) -> None:
        await progress.until("create_user", count)
        await progress.until("add_members", member_adds)

    return during


def audit(ws: Workspace) -> list[tuple[str, str | None, str]]:
    with Cache.open(ws.cache_url) as cache:
        return [(e.action, e.source_id, e.result) for _, e in cache.audit(limit=1000)]


REMOVALS = {"deactivate_user", "delete_user", "remove_members", "delete_group", "retire_group"}


def test_user_creates_reach_identity_center_before_the_read_ends(workspace: Workspace) -> None:
    """A first sync creates users and groups while the source is still reading, and ends as a normal run would."""
    data = make_directory(6, {"eng": [0, 1, 2], "ops": [3, 4]})
    data["groups"].append({"id": "g-all", "name": "all", "members": ["u0005"], "groups": ["g-eng", "g-ops"]})
    seen: dict[str, Any] = {}

    async def during(engine: Engine, source: Announcing, progress: Landed) -> None:
        await progress.until("create_user", 6)
        seen["users"] = {u["externalId"] for u in workspace.emu.state.users}

    progress = Landed()
    result = run(workspace, Announcing(data), during, progress)
    assert ("ok", 6, 3) == (result.status, result.counts["users_created"], result.counts["groups_created"])
    assert progress.planned_writes == len(progress.done) == workspace.emu.stats.writes, "the progress counts them all"
    assert {f"u{i:04d}" for i in range(6)} == seen["users"], "the users were in Identity Center before the read ended"

    # The same directory without writes during the read, into another Identity Center: the same end, the same writes.
    with running_emulator(token=TOKEN) as other:
        normal = Workspace(workspace.root / "normal", other)
        normal.root.mkdir()
        normal.write(data)
        normal.configure("write_during_read = false")
        assert 0 == sync(normal)[0]
        assert idc_view(other) == idc_view(workspace.emu)
        assert other.stats.writes == workspace.emu.stats.writes, "nothing was sent twice"
    workspace.write(data)
    code, out = sync(workspace)
    assert (0, 0) == (code, sum(out["changes"].values())), "the cache holds what landed early"


def test_a_read_that_fails_after_early_creates_removes_nothing(workspace: Workspace) -> None:
    """A read failing after its announcements fails the run, keeps and records the users it created, removes nothing."""
    data = make_directory(4, {"eng": [0, 1, 2, 3], "ops": [0]})
    workspace.write(data)
    assert 0 == sync(workspace)[0]
    # Next: u0003 leaves, u0002 leaves eng, u0004 and u0005 join eng and ops.
    changed = make_directory(6, {"eng": [0, 1, 4, 5], "ops": [0, 4, 5]})
    changed["users"] = [u for u in changed["users"] if u["id"] != "u0003"]

    result = run(workspace, Announcing(changed, fail=True), creates_landed(2, member_adds=1))
    assert ("failed", 5, 2) == (result.status, result.exit_code, result.counts["users_created"])
    assert any("lost its connection" in e for e in result.errors)
    users, groups = idc_view(workspace.emu)
    assert users["u0003"] == ("user3@example.com", True), "the leaver is not deactivated"
    assert frozenset({"u0000", "u0004", "u0005"}) == groups["ops"], "the new members were added"
    assert frozenset({"u0000", "u0001", "u0002", "u0003"}) == groups["eng"], "no member was removed"
    # eng's adds waited for the final pass, to share one PATCH with its removal.
    entries = audit(workspace)
    assert {("create_user", "u0004", "ok"), ("create_user", "u0005", "ok")} <= set(entries)
    assert not [e for e in entries if e[0] in REMOVALS]

    workspace.write(changed)
    workspace.emu.stats.reset()
    code, out = sync(workspace)
    assert 0 == code, out["errors"]
    assert (0, 1, 1) == (
        out["changes"]["users_created"],
        out["changes"]["users_deactivated"],
        out["changes"]["members_removed"],
    )
    assert 2 == workspace.emu.stats.writes, "the deactivation, and eng's adds and removal in one PATCH"
    users, groups = idc_view(workspace.emu)
    assert 6 == len(workspace.emu.state.users), "no user was made twice"
    # The leaver keeps its memberships while it waits for its delete (safety.delete_after).
    assert frozenset({"u0000", "u0001", "u0003", "u0004", "u0005"}) == groups["eng"]
    assert ("user3@example.com", False) == users["u0003"]


def test_an_incomplete_read_after_early_creates_removes_nothing(workspace: Workspace) -> None:
    """A read that comes back incomplete after early creates fails the run and removes nothing."""
    data = make_directory(3, {"eng": [0, 1, 2]})
    workspace.write(data)
    assert 0 == sync(workspace)[0]
    changed = make_directory(4, {"eng": [0, 1, 3]})
    changed["users"] = [u for u in changed["users"] if u["id"] != "u0002"]  # it keeps its membership until deleted

    result = run(workspace, Announcing(changed, incomplete=True), creates_landed(1, member_adds=1))
    assert ("failed", 1) == (result.status, result.counts["users_created"])
    users, groups = idc_view(workspace.emu)
    assert users["u0002"][1], "the leaver is not deactivated"
    assert {"u0000", "u0002", "u0003"} <= groups["eng"], "members were added, none removed"
    assert not [e for e in audit(workspace) if e[0] in REMOVALS]


def test_a_guard_refusal_after_early_writes_removes_nothing(workspace: Workspace) -> None:
    """A plan the guard refuses exits 3 and removes nothing, though the creates made during the read stay."""
    workspace.write(make_directory(6, {"eng": list(range(6))}))
    assert 0 == sync(workspace)[0]
    changed = make_directory(8, {"eng": [3, 4, 5, 6, 7]})
    changed["users"] = changed["users"][3:]  # three of six leave: over max_deletes (10%)

    result = run(workspace, Announcing(changed), creates_landed(2, member_adds=1))
    assert ("refused", 3) == (result.status, result.exit_code)
    assert "max_deletes" in result.errors[0]
    assert "Nothing was removed" in result.errors[0]
    assert (2, 2) == (result.counts["users_created"], result.counts["members_added"])
    assert result.to_json()["changes"]["users_created"] == 2, "sync --json counts the early writes"
    users, groups = idc_view(workspace.emu)
    assert all(users[f"u{i:04d}"][1] for i in range(3)), "no leaver was deactivated"
    assert frozenset(f"u{i:04d}" for i in range(8)) == groups["eng"], "members were added, none removed"
    assert not [e for e in audit(workspace) if e[0] in REMOVALS]


def test_no_write_before_the_read_ends_when_it_is_not_allowed(workspace: Workspace) -> None:
    """write_during_read = false, a dry run, an approve hook: the read gets no listener, nothing is sent during it."""
    cases: list[tuple[str, dict[str, Any]]] = [
        ("write_during_read = false", {}),
        ("", {"dry_run": True}),
        ("", {"approve": lambda plan, snapshot: None}),
    ]
    for number, (extra, options) in enumerate(cases):
        workspace.configure(extra)
        source = Announcing(make_directory(3 + number, {"eng": list(range(3 + number))}))  # one user more each time
        result = run(workspace, source, **options)
        assert (None, 0) == (source.listener, source.writes_during), (extra, options)
        assert "ok" == result.status
    assert 5 == len(workspace.emu.state.users), "the writes went once the read had ended"


def test_a_reconcile_run_reads_the_source_and_identity_center_at_once(workspace: Workspace) -> None:
    """A full resync reads Identity Center while the source is being read: each sees the other in flight."""
    data = make_directory(3, {"eng": [0, 1, 2]})
    workspace.write(data)
    assert 0 == sync(workspace)[0]
    listing = threading.Event()
    reading = threading.Event()
    record = workspace.emu.stats.record

    def held(method: str, kind: str, status: int) -> None:
        record(method, kind, status)
        if method == "GET" and kind == "Users" and not listing.is_set():
            listing.set()
            reading.wait(LIMIT)  # the first listing is answered only once the source is reading

    workspace.emu.stats.record = held  # type: ignore[method-assign]

    class Overlapping(Announcing):
        async def read(self, ctx: ReadContext) -> SourceRead:
            reading.set()
            assert await asyncio.to_thread(listing.wait, LIMIT), "Identity Center was not read during the source's read"
            return await super().read(ctx)

    source = Overlapping(data)
    source.proceed.set()
    result = run(workspace, source, full_resync=True)
    assert ("ok", 0) == (result.status, sum(result.counts.values())), result.errors
    assert listing.is_set()
    assert reading.is_set()


def test_a_full_resync_into_an_emptied_identity_center_recreates_users_during_the_read(workspace: Workspace) -> None:
    """Identity Center emptied behind syncd's back: a full resync recreates the cached users during the read."""
    data = make_directory(3, {"eng": [0, 1, 2]})
    workspace.write(data)
    assert 0 == sync(workspace)[0]
    for group in list(workspace.emu.state.groups):
        workspace.emu.state.delete_group(group["id"])
    for user in list(workspace.emu.state.users):
        workspace.emu.state.delete_user(user["id"])

    seen: dict[str, Any] = {}

    async def during(engine: Engine, source: Announcing, progress: Landed) -> None:
        await progress.until("create_user", 3)
        seen["users"] = {u["externalId"] for u in workspace.emu.state.users}

    result = run(workspace, Announcing(data), during, full_resync=True)
    assert "ok" == result.status, result.errors
    assert {"u0000", "u0001", "u0002"} == seen["users"], "recreated before the read ended"
    assert {"u0000", "u0001", "u0002"} == {u["externalId"] for u in workspace.emu.state.users}


def test_a_stop_during_early_writes_lets_those_in_flight_land(workspace: Workspace, hold_writes: Hold) -> None:
    """SIGTERM while writes go during the read: the writes in flight land and are recorded, the run is interrupted."""
    data = make_directory(20, {"eng": list(range(20))})
    gate = hold_writes(workspace.emu, 1)

    async def during(engine: Engine, source: Announcing, progress: Landed) -> None:
        assert await asyncio.to_thread(gate.reached.wait, LIMIT), "no write was sent during the read"
        engine.request_stop()
        gate.release()

    result = run(workspace, Announcing(data), during)
    landed = len(workspace.emu.state.users)
    assert ("interrupted", landed) == (result.status, result.counts["users_created"])
    assert 0 < landed < 20, "the writes in flight landed, and no other started"
    workspace.write(data)
    code, out = sync(workspace)
    assert (0, 20 - landed) == (code, out["changes"]["users_created"]), out["errors"]
    assert 20 == len(workspace.emu.state.users), "nothing was made twice"


def test_a_group_taking_a_cached_groups_name_waits_for_the_final_pass(workspace: Workspace) -> None:
    """A group recreated at the source under a cached group's name is not created early; the run ends ok with it."""
    old = make_directory(2, {"team": [0, 1]})
    workspace.write(old)
    assert 0 == sync(workspace)[0]
    new = make_directory(3)
    new["groups"] = [{"id": "g-new", "name": "Team", "members": ["u0000", "u0001", "u0002"], "groups": []}]

    result = run(workspace, Announcing(new), creates_landed(1))
    assert ("ok", []) == (result.status, result.errors)
    assert (1, 1, 1) == (
        result.counts["users_created"],
        result.counts["groups_created"],
        result.counts["groups_deleted"],
    )
    assert {"Team": frozenset({"u0000", "u0001", "u0002"})} == idc_view(workspace.emu)[1]


def test_the_guard_counts_from_the_cache_as_it_was_before_the_early_writes(workspace: Workspace) -> None:
    """Users created during the read do not raise the guard's base: 2 of 5 leaving is refused at 20% as without them."""
    workspace.configure(max_deletes="20%")
    workspace.write(make_directory(5, {"eng": list(range(5))}))
    assert 0 == sync(workspace)[0]
    changed = make_directory(10, {"eng": list(range(2, 10))})
    changed["users"] = changed["users"][2:]  # two of five leave, five join

    result = run(workspace, Announcing(changed), creates_landed(5))
    assert ("refused", 5) == (result.status, result.counts["users_created"])
    assert "2 of 5 managed users" in result.errors[0], result.errors


# -- filters.users = "members": the users come with their groups (users_found), not all at once ----------------------


class Finding(Announcing):
    """A read that learns its users from group member listings, as Okta, Google and Entra do with users = "members".

    It lists the groups, then for each announces the members not announced yet (``users_found``) and the group
    (``group_read``): the first ``early`` groups (all by default) before it waits for :attr:`proceed`, the rest after.
    It returns only the members, and never calls ``users_read``.
    """

    def __init__(self, data: dict[str, Any], *, early: int | None = None, fail: bool = False) -> None:
        super().__init__(data, fail=fail)
        self.early = len(self.groups) if early is None else early

    async def read(self, ctx: ReadContext) -> SourceRead:
        assert "members" == ctx.scope.users
        self.listener = listener = ctx.listener
        at_start = self.emulator_writes()
        by_id = {u.id: u for u in self.users}
        announced: set[str] = set()

        def announce(groups: list[SourceGroup]) -> None:
            for group in groups:
                new = [by_id[m] for m in group.members if m in by_id and m not in announced]
                announced.update(u.id for u in new)
                if listener is not None:
                    listener.users_found(new)
                    listener.group_read(group)

        if listener is not None:
            listener.groups_listed([replace(g, members=(), groups=()) for g in self.groups])
        announce(self.groups[: self.early])
        await self.proceed.wait()
        self.writes_during = self.emulator_writes() - at_start
        announce(self.groups[self.early :])
        if self.fail:
            raise SourceError("the test source lost its connection")
        members = {m for g in self.groups for m in g.members}
        return SourceRead(users=[u for u in self.users if u.id in members], groups=self.groups)


def members_only(ws: Workspace, extra: str = "") -> None:
    """The workspace's config with filters.users = "members" (the default)."""
    ws.configure(extra)
    ws.config.write_text(ws.config.read_text().replace('users = "all"', 'users = "members"'), encoding="utf-8")


def test_with_users_members_creates_and_member_adds_go_before_the_read_ends(workspace: Workspace) -> None:
    """With users = members, user and group creates and member adds reach Identity Center during the read, as found."""
    members_only(workspace)
    data = make_directory(7, {"eng": [0, 1, 2], "ops": [3, 4]})
    data["groups"].append({"id": "g-all", "name": "all", "members": ["u0005"], "groups": ["g-eng", "g-ops"]})
    seen: dict[str, Any] = {}

    async def during(engine: Engine, source: Announcing, progress: Landed) -> None:
        await progress.until("create_user", 6)
        await progress.until("create_group", 3)
        seen["view"] = idc_view(workspace.emu)

    first = Finding(data)
    result = run(workspace, first, during)
    assert ("ok", 6, 3) == (result.status, result.counts["users_created"], result.counts["groups_created"])
    users, groups = seen["view"]
    assert {f"u{i:04d}" for i in range(6)} == set(users), "u0006 is in no group: not synced"
    assert frozenset(f"u{i:04d}" for i in range(6)) == groups["all"], "groups were made with their members"

    # Two join eng, u0002 moves from eng to ops: the adds to all and ops go during the read; eng's
    # wait for the whole read, to go with its removal in one PATCH.
    changed = make_directory(9, {"eng": [0, 1, 7, 8], "ops": [2, 3, 4]})
    changed["groups"].append(data["groups"][-1])

    async def adds(engine: Engine, source: Announcing, progress: Landed) -> None:
        await progress.until("add_members", 2)  # to all and ops
        seen["view"] = idc_view(workspace.emu)

    result = run(workspace, Finding(changed), adds)
    assert ("ok", 2, 5, 1) == (
        result.status,
        result.counts["users_created"],
        result.counts["members_added"],  # u0007 and u0008 to all and eng, u0002 to ops
        result.counts["members_removed"],
    )
    users, groups = seen["view"]
    assert {"u0007", "u0008"} <= groups["all"], "the new members were added while the source was read"
    assert "u0002" in groups["ops"]
    assert "u0002" in groups["eng"], "the member removal waited for the whole read"
    assert not {"u0007", "u0008"} & groups["eng"], "eng's adds waited with its removal"

    # The same two runs without writes during the read, into another Identity Center: the same end.
    with running_emulator(token=TOKEN) as other:
        normal = Workspace(workspace.root / "normal", other)
        normal.root.mkdir()
        members_only(normal, "write_during_read = false")
        for directory in (data, changed):
            normal.write(directory)
            assert 0 == sync(normal)[0]
        assert idc_view(other) == idc_view(workspace.emu)
    workspace.write(changed)
    code, out = sync(workspace)
    assert (0, 0) == (code, sum(out["changes"].values())), "the cache holds what landed early"


def test_a_later_user_sharing_an_early_created_users_email_is_skipped(workspace: Workspace) -> None:
    """A later user with an early-created one's email and a smaller id is skipped, saying why, this run and next."""
    members_only(workspace)
    data = make_directory(4, {"eng": [3, 2], "ops": [1, 0]})
    data["users"][3]["email"] = "ann@example.com"
    data["users"][1]["email"] = "ANN@example.com"

    async def during(engine: Engine, source: Announcing, progress: Landed) -> None:
        await progress.until("create_user", 2)

    result = run(workspace, Finding(data, early=1), during)
    assert "ok" == result.status, result.errors
    assert [("u0001", "email 'ANN@example.com' is already used by user u0003")] == [
        (s.id, s.reason) for s in result.skipped
    ]
    users, groups = idc_view(workspace.emu)
    assert {"u0000", "u0002", "u0003"} == set(users)
    assert users["u0003"][1], "the early-created user is kept active"
    assert {"eng": frozenset({"u0002", "u0003"}), "ops": frozenset({"u0000"})} == groups
    assert not [e for e in audit(workspace) if e[0] in REMOVALS]

    workspace.write(data)
    code, out = sync(workspace)
    assert (0, 0) == (code, sum(out["changes"].values())), "the next run keeps the tie where Identity Center has it"
    assert (users, groups) == idc_view(workspace.emu)


def test_a_new_user_taking_the_email_of_a_cached_user_not_read_yet_waits(workspace: Workspace) -> None:
    """A new user with the email of a cached user the read has not reached is not created early, then skipped."""
    members_only(workspace)
    data = make_directory(4, {"eng": [0, 1], "ops": [2, 3]})
    data["users"][3]["email"] = "ann@example.com"
    workspace.write(data)
    assert 0 == sync(workspace)[0]
    # u0004 joins eng with u0003's email; u0003's group (ops) is read only after the early round.
    changed = make_directory(6, {"eng": [0, 1, 4, 5], "ops": [2, 3]})
    changed["users"][3]["email"] = "ann@example.com"
    changed["users"][4]["email"] = "ANN@example.com"
    seen: dict[str, Any] = {}

    async def during(engine: Engine, source: Announcing, progress: Landed) -> None:
        await progress.until("create_user", 1)
        await progress.until("add_members", 1)
        seen["view"] = idc_view(workspace.emu)

    result = run(workspace, Finding(changed, early=1), during)
    assert "ok" == result.status, result.errors
    users, _ = seen["view"]
    assert "u0005" in users, "the other new user was created during the read"
    assert "u0004" not in users, "the user sharing a cached user's email waited for the final pass"
    assert [("u0004", "email 'ANN@example.com' is already used by user u0003")] == [
        (s.id, s.reason) for s in result.skipped
    ]
    users, groups = idc_view(workspace.emu)
    assert {f"u{i:04d}" for i in (0, 1, 2, 3, 5)} == set(users)
    assert frozenset({"u0000", "u0001", "u0005"}) == groups["eng"]


def test_a_read_failing_after_users_found_removes_nothing(workspace: Workspace) -> None:
    """With users = members, a read failing after some groups' users were found and created removes nothing."""
    members_only(workspace)
    data = make_directory(4, {"eng": [0, 1], "ops": [2, 3]})
    workspace.write(data)
    assert 0 == sync(workspace)[0]
    # u0003 leaves, u0004 joins eng.
    changed = make_directory(5, {"eng": [0, 1, 4], "ops": [2]})

    result = run(workspace, Finding(changed, early=1, fail=True), creates_landed(1, member_adds=1))
    assert ("failed", 5, 1) == (result.status, result.exit_code, result.counts["users_created"])
    users, groups = idc_view(workspace.emu)
    assert users["u0003"][1], "the leaver is not deactivated"
    assert {"eng": frozenset({"u0000", "u0001", "u0004"}), "ops": frozenset({"u0002", "u0003"})} == groups
    assert not [e for e in audit(workspace) if e[0] in REMOVALS]


class OneGroupAtATime(Announcing):
    """Announces every user and the group list, then one group per round: the next once the last one's adds landed."""

    def __init__(self, data: dict[str, Any], progress: Landed) -> None:
        super().__init__(data)
        self.progress = progress

    async def read(self, ctx: ReadContext) -> SourceRead:
        assert ctx.listener is not None
        ctx.listener.users_read(self.users)
        ctx.listener.groups_listed([replace(g, members=(), groups=()) for g in self.groups])
        for landed, group in enumerate(self.groups, start=1):
            ctx.listener.group_read(group)
            await self.progress.until("add_members", landed)
        await self.proceed.wait()
        return SourceRead(users=self.users, groups=self.groups)


def test_each_user_is_planned_by_one_round_only(workspace: Workspace) -> None:
    """Rounds after the first plan no user again: unchanged, updated and created users are settled by the first."""
    workspace.write(make_directory(6, {"a": [0], "b": [1], "c": [2]}))
    assert 0 == sync(workspace)[0]
    changed = make_directory(7, {"a": [0, 3], "b": [1, 4], "c": [2, 5]})
    changed["users"][1]["family_name"] = "Renamed"  # an update: it waits for the final pass

    progress = Landed()
    with capture_logs() as logs:
        result = run(workspace, OneGroupAtATime(changed, progress), progress=progress)
    assert "ok" == result.status, result.errors
    rounds = [e for e in logs if e["event"] == "early.round"]
    assert 3 == len(rounds), "one round per group"
    assert [7, 0, 0] == [e["planned_users"] for e in rounds], "every user planned once, in the first round"
    assert (1, 1, 3) == (result.counts["users_created"], result.counts["users_updated"], result.counts["members_added"])
    _, groups = idc_view(workspace.emu)
    assert {"u0000", "u0003"} == groups["a"]
    assert {"u0002", "u0005"} == groups["c"]
    workspace.write(changed)
    code, out = sync(workspace)
    assert (0, 0) == (code, sum(out["changes"].values())), "converged"
