"""load(current=...): the data of users whose digest did not change is left out, the rest is as before."""

from __future__ import annotations

import sys
from dataclasses import replace
from datetime import UTC, datetime

from syncd.cache import Cache
from syncd.cache.tables import users
from syncd.state import UNCHANGED, CachedGroup, CachedUser, Current


ALICE = CachedUser("00u1", "t-alice", "alice@example.com", "d-alice", {"userName": "alice@example.com", "active": True})
BOB = CachedUser("00u2", "t-bob", "bob@example.com", "d-bob", {"userName": "bob@example.com", "active": False})
CAROL = CachedUser("00u3", "t-carol", "carol@example.com", "d-carol", {"userName": "carol@example.com"}, "adopted")
ENG = CachedGroup("00g1", "tg-eng", "Engineering", "d-eng")


def _fill(cache: Cache) -> None:
    for user in (ALICE, BOB, CAROL):
        cache.put_user(user)
    cache.put_group(ENG)
    cache.add_memberships(ENG.source_id, [ALICE.source_id, BOB.source_id])


def test_unchanged_users_load_without_data_and_the_rest_with_it(cache: Cache) -> None:
    """Same digest: no data. Other digest, or gone from the source: data as stored."""
    _fill(cache)

    state = cache.load(
        current={
            ALICE.source_id: Current(ALICE.source_id, ALICE.user_name, ALICE.digest),
            BOB.source_id: Current(BOB.source_id, BOB.user_name, "d-bob-2"),
        }
    )

    assert {
        u.source_id: u for u in (replace(ALICE, digest=UNCHANGED), BOB, CAROL)
    } == state.users  # ids, names, digests, origins
    assert ({}, BOB.data, CAROL.data) == tuple(dict(state.users[u.source_id].data) for u in (ALICE, BOB, CAROL))
    assert cache.load().groups == state.groups
    assert cache.load().memberships == state.memberships


def test_unchanged_users_share_the_strings_of_current(cache: Cache) -> None:
    """An unchanged user holds the very id and userName strings it was given, not copies, and no digest."""
    _fill(cache)
    now = Current("".join(["00", "u1"]), "".join(["alice", "@example.com"]), "".join(["d-", "alice"]))

    loaded = cache.load(current={now.source_id: now}).users[ALICE.source_id]

    assert (True, True, UNCHANGED) == (
        loaded.source_id is now.source_id,
        loaded.user_name is now.user_name,
        loaded.digest,
    )


def test_without_current_every_user_loads_its_data(cache: Cache) -> None:
    """The default reads every user's data."""
    _fill(cache)

    assert [ALICE.data, BOB.data, CAROL.data] == [cache.load().users[u.source_id].data for u in (ALICE, BOB, CAROL)]


def test_many_changed_users_are_read_in_chunks(cache: Cache) -> None:
    """More changed users than one IN list takes still all come back with their data."""
    now = datetime.now(UTC)
    with cache.engine.begin() as connection:
        connection.execute(
            users.insert(),
            [
                {
                    "source_id": f"u{i:04d}",
                    "target_id": f"t{i:04d}",
                    "user_name": f"u{i}",
                    "digest": "old",
                    "data": {"n": i},
                    "origin": "created",
                    "updated_at": now,
                }
                for i in range(1_200)
            ],
        )

    state = cache.load(current={})

    assert 1_200 == len(state.users)
    assert all({"n": int(sid[1:])} == user.data for sid, user in state.users.items())


def test_members_are_the_very_strings_of_the_loaded_users(cache: Cache) -> None:
    """A group's loaded members are the loaded users' own id strings (one copy of each id), whatever they hold."""
    odd = [
        CachedUser(sid, f"t-{n}", f"user{n}@example.com", f"d-{n}", {})
        for n, sid in enumerate(['00u"quoted"', "00u\\back", "00u,comma", "00uü-ß", "00u[1]"])
    ]
    for user in odd:
        cache.put_user(user)
    cache.put_group(ENG)
    cache.add_memberships(ENG.source_id, [u.source_id for u in odd])

    state = cache.load()

    members = state.members[ENG.source_id]
    assert sorted(u.source_id for u in odd) == list(members)
    assert all(m is state.users[m].source_id for m in members)


def test_a_lean_load_holds_no_payload_but_each_users_pushed_email(cache: Cache) -> None:
    """lean=True: no user keeps its data; unchanged users load as UNCHANGED, the rest with their digest and email."""
    gone = datetime(2026, 11, 1, tzinfo=UTC)
    dan = CachedUser("00u4", "t-dan", "dan@example.com", "d-dan", {"email": "Dan@Example.com", "active": True})
    erin = CachedUser("00u5", "t-erin", "erin", "d-erin", {"email": "erin@example.com"}, gone_since=gone)
    nomail = CachedUser("00u6", "t-nomail", "nomail", "d-nomail", {"email": None, "userName": "nomail"})
    _fill(cache)
    for user in (dan, erin, nomail):
        cache.put_user(user)

    state = cache.load(
        current={
            ALICE.source_id: Current(ALICE.source_id, ALICE.user_name, ALICE.digest),
            dan.source_id: Current(dan.source_id, dan.user_name, "d-dan-2"),
            erin.source_id: Current(erin.source_id, erin.user_name, erin.digest),  # back: gone_since set
        },
        lean=True,
    )

    assert all(not user.data for user in state.users.values()), "no payload is loaded"
    assert {
        u.source_id: u for u in (replace(ALICE, digest=UNCHANGED), BOB, CAROL, dan, erin, nomail)
    } == state.users  # ids, names, digests, origins, gone_since
    assert {"00u4": "Dan@Example.com", "00u5": "erin@example.com"} == state.emails
    full = cache.load()
    assert (full.groups, full.memberships) == (state.groups, state.memberships)


def test_a_lean_load_holds_one_string_per_id_and_per_username_its_email_equals(cache: Cache) -> None:
    """A lean load and target_ids() keep the id a connector interned; an email equal to the userName is its string."""
    frank = CachedUser("00u7", "t-frank", "frank@example.com", "d-frank", {"email": "frank@example.com"})
    cache.put_user(frank)

    state = cache.load(lean=True)

    loaded = state.users["00u7"]
    read_id = sys.intern("".join(["00u", "7"]))  # as a connector packs the id it reads
    assert loaded.source_id is read_id
    assert state.emails["00u7"] is loaded.user_name
    assert cache.target_ids()[0]["t-frank"] is read_id


def test_every_load_keeps_the_identity_center_id_strings_the_run_read(cache: Cache) -> None:
    """load(targets=...): unchanged, changed and lean users hold the very target-id strings given, not copies."""
    _fill(cache)
    read = {tid: tid for tid in ("".join(["t-", name]) for name in ("alice", "bob", "carol"))}
    now = {
        ALICE.source_id: Current(ALICE.source_id, ALICE.user_name, ALICE.digest),  # unchanged
        BOB.source_id: Current(BOB.source_id, BOB.user_name, "d-bob-2"),  # changed: loaded with its data
    }

    for state in (cache.load(current=now, targets=read), cache.load(current=now, lean=True, targets=read)):
        assert all(state.users[u.source_id].target_id is read[u.target_id] for u in (ALICE, BOB, CAROL))
    assert cache.load(current=now).users[ALICE.source_id].target_id is not read["t-alice"]
