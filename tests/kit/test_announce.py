"""Announcing a full read: the kit's Announcer, alone and in the small kit-made connector."""

from __future__ import annotations

from typing import Any

import pytest
from structlog.testing import capture_logs

from connectors.base import Deps, ReadContext
from connectors.kit import Announcer, KeptDirectory, PackedGroup, PackedUser, assemble
from connectors.kit.announce import AnnouncedDiffers
from syncd.model import Skipped, SourceGroup, SourceRead, SourceUser
from syncd.normalise import Scope
from tests.announced import Recorder, assert_announced_the_read
from tests.kit.conftest import Sleeps
from tests.kit.connector import ACME, AcmeSettings, AcmeSource
from tests.kit.fake_acme import FakeAcme


pytestmark = pytest.mark.anyio


def _user(user_id: str, packed: PackedUser) -> SourceUser | Skipped:
    if packed[1] is None:
        return Skipped("user", user_id, "no email")
    return SourceUser(id=user_id, user_name=packed[1], email=packed[1])


def _group(group_id: str, packed: PackedGroup) -> SourceGroup:
    return SourceGroup(id=group_id, name=packed[0], members=tuple(packed[-1]))


def _directory() -> KeptDirectory:
    directory = KeptDirectory(scope="s", last_full_read=0.0)
    directory.users = {"u2": ["u2", "b@example.com"], "u1": ["u1", "a@example.com"], "u3": ["u3", None]}
    return directory


def _assemble(directory: KeptDirectory, announce: Announcer | None) -> SourceRead:
    return assemble(directory, user=_user, group=_group, skipped=[], requests=0, announce=announce)


def test_what_is_announced_is_what_the_read_holds() -> None:
    """Users in id order without the skipped one, groups listed without members, then each with
    its members: the read returns those very records."""
    directory = _directory()
    recorder = Recorder()
    announce = Announcer(recorder, user=_user, group=_group)
    announce.users(directory.users)
    announce.groups([("g1", ["eng", []]), ("g2", ["ops", []])])
    directory.groups["g1"] = packed = ["eng", ["u1", "u2"]]
    announce.group("g1", packed)
    directory.groups["g2"] = ["ops", ["u3"]]

    read = _assemble(directory, announce)

    assert_announced_the_read(recorder, read)
    assert [u.id for u in read.users] == ["u1", "u2"]
    assert [s.id for s in read.skipped] == ["u3"]
    assert recorder.users is not None
    assert all(a is b for a, b in zip(recorder.users, read.users, strict=True))
    assert read.groups[0] is recorder.groups[0]
    assert [name for name, _ in recorder.events] == ["users", "groups", "group:g1", "group:g2"]


def test_a_connector_that_announces_nothing_is_announced_whole_at_the_end() -> None:
    """assemble tells the listener everything when the connector said nothing during the read."""
    directory = _directory()
    directory.groups["g1"] = ["eng", ["u1"]]
    recorder = Recorder()

    read = _assemble(directory, Announcer(recorder, user=_user, group=_group))

    assert_announced_the_read(recorder, read)


def test_a_group_changed_after_it_was_announced_fails_the_read() -> None:
    """A connector bug (members changed after announcing) is an error, not a read that differs silently."""
    directory = _directory()
    announce = Announcer(Recorder(), user=_user, group=_group)
    announce.groups([("g1", ["eng", []])])
    announce.group("g1", ["eng", ["u1"]])
    directory.groups["g1"] = ["eng", ["u1", "u2"]]

    with pytest.raises(AnnouncedDiffers, match="g1 changed after it was announced"):
        _assemble(directory, announce)


def test_users_changed_after_they_were_announced_fail_the_read() -> None:
    """Users announced, then one more in the directory: the read fails rather than differ."""
    directory = _directory()
    announce = Announcer(Recorder(), user=_user, group=_group)
    announce.users(dict(directory.users))
    directory.users["u4"] = ["u4", "d@example.com"]

    with pytest.raises(AnnouncedDiffers, match="users announced"):
        _assemble(directory, announce)


def test_found_users_come_before_their_group_and_are_the_read_s() -> None:
    """Users found listing by listing are told once each (the skipped one left out); a group waits
    for members not found yet; the read holds the very users found, and users_read still ends it."""
    directory = _directory()
    recorder = Recorder()
    announce = Announcer(recorder, user=_user, group=_group)
    announce.groups([("g1", ["eng", []]), ("g2", ["ops", []])])
    announce.group("g2", ["ops", ["u2", "u1"]])  # u1 not found yet: g2 waits
    announce.found({"u2": directory.users["u2"], "u3": directory.users["u3"]})
    assert [name for name, _ in recorder.events] == ["groups", "found"]
    announce.found({"u2": directory.users["u2"], "u1": directory.users["u1"]})
    announce.group("g1", ["eng", ["u1"]])
    directory.groups = {"g1": ["eng", ["u1"]], "g2": ["ops", ["u2", "u1"]]}

    read = _assemble(directory, announce)

    assert_announced_the_read(recorder, read)
    assert [u.id for u in recorder.found] == ["u2", "u1"]
    assert [name for name, _ in recorder.events] == ["groups", "found", "found", "group:g2", "group:g1", "users"]
    assert all(any(u is f for f in recorder.found) for u in read.users)


def test_a_user_found_then_changed_or_missing_fails_the_read() -> None:
    """A connector bug (a user found, then another record or no record in the read) is an error."""
    changed = _directory()
    announce = Announcer(Recorder(), user=_user, group=_group)
    announce.found({"u1": ["u1", "a@example.com"]})
    changed.users["u1"] = ["u1", "other@example.com"]
    with pytest.raises(AnnouncedDiffers, match="u1 changed after it was announced"):
        _assemble(changed, announce)

    missing = _directory()
    announce = Announcer(Recorder(), user=_user, group=_group)
    announce.found({"u9": ["u9", "z@example.com"]})
    with pytest.raises(AnnouncedDiffers, match="u9 was announced during the read but is not in it"):
        _assemble(missing, announce)


def test_a_group_gone_after_the_listing_is_logged_and_left_out() -> None:
    """A listed group deleted before its members were read is not in the read, and the log says so."""
    directory = _directory()
    recorder = Recorder()
    announce = Announcer(recorder, user=_user, group=_group)
    announce.groups([("g1", ["eng", []]), ("gone", ["old", []])])
    directory.groups["g1"] = ["eng", []]

    with capture_logs() as logs:
        read = _assemble(directory, announce)

    assert [g.id for g in read.groups] == ["g1"]
    assert [g.id for g in recorder.groups] == ["g1"]
    assert [e["groups"] for e in logs if e["event"] == "read.announced_group_gone"] == [1]


def test_without_a_listener_nothing_is_made_twice() -> None:
    """With nobody listening, announcing builds nothing: each user is made once, by assemble."""
    made: list[str] = []

    def counting(user_id: str, packed: PackedUser) -> SourceUser | Skipped:
        made.append(user_id)
        return _user(user_id, packed)

    directory = _directory()
    announce = Announcer(None, user=counting, group=_group)
    announce.users(directory.users)

    assemble(directory, user=counting, group=_group, skipped=[], requests=0, announce=announce)

    assert sorted(made) == ["u1", "u2", "u3"]


def _source(fake: FakeAcme) -> AcmeSource:
    data = {"url": fake.url, "client_id": fake.client_id, "client_secret": fake.client_secret}
    deps = Deps(transport=fake.transport, sleep=Sleeps(), random=lambda: 0.0, clock=lambda: 1000.0)
    source = ACME.factory(AcmeSettings.model_validate(data), deps)
    assert isinstance(source, AcmeSource)
    return source


async def _read(source: AcmeSource, recorder: Recorder, previous: SourceRead | None = None) -> SourceRead:
    state: dict[str, Any] = previous.state if previous is not None else {}
    return await source.read(ReadContext(Scope(), full=previous is None, state=state, listener=recorder))


async def test_the_kit_connector_announces_users_before_it_lists_groups() -> None:
    """The kit-made connector announces its users before its first group request reaches the API and
    its groups (final only at the end) when the read ends: all equal to the read; its delta reads say nothing."""
    fake = FakeAcme()
    for n in range(5):
        fake.put_user(f"u{n}", f"user{n}@example.com")
    fake.put_group("g1", "eng")
    fake.put_group("g2", "ops")
    fake.member("g1", "u0")
    fake.member("g2", "u4")
    source = _source(fake)
    recorder = Recorder(mark=lambda: len(fake.requests))

    first = await _read(source, recorder)

    assert_announced_the_read(recorder, first)
    first_group_request = next(i for i, r in enumerate(fake.requests) if r.url.path.startswith("/groups"))
    assert recorder.at("users") <= first_group_request
    assert recorder.at("groups") == len(fake.requests)

    fake.member("g1", "u3")
    quiet = Recorder()
    second = await _read(source, quiet, first)

    assert {g.id: set(g.members) for g in second.groups}["g1"] == {"u0", "u3"}
    assert quiet.events == []
