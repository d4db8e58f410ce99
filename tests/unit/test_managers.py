"""Managers: named by source id or userName, sent as the manager's Identity Center id, created first."""

from __future__ import annotations

from scim2_models import EnterpriseUser, User

from syncd.changes import Action, UserChange
from syncd.model import SourceRead, SourceUser
from syncd.normalise import Scope, build_snapshot
from syncd.plan import manager_waves
from syncd.target.resources import live_user, user_resource


def source_user(uid: str, name: str, manager: str | None = None) -> SourceUser:
    enterprise = {"department": "Ops"} | ({"manager": manager} if manager else {})
    return SourceUser(id=uid, user_name=name, given_name="A", family_name="B", enterprise=enterprise)


def snapshot(*users: SourceUser):  # type: ignore[no-untyped-def]
    return build_snapshot(SourceRead(users=list(users), groups=[]), Scope(users="all"))


def test_a_manager_named_by_user_name_becomes_their_source_id_and_an_unknown_one_is_dropped() -> None:
    """LDAP-style userName managers resolve to the synced user's id; a free-text name is left out."""
    snap = snapshot(
        source_user("u1", "boss@example.com"),
        source_user("u2", "ann@example.com", manager="Boss@Example.com"),
        source_user("u3", "bob@example.com", manager="Charles Babbage"),
        source_user("u4", "cy@example.com", manager="u1"),
    )
    assert "u1" == dict(snap.users["u2"].enterprise)["manager"]
    assert "manager" not in dict(snap.users["u3"].enterprise)
    assert "Ops" == dict(snap.users["u3"].enterprise)["department"]
    assert "u1" == dict(snap.users["u4"].enterprise)["manager"]


def test_the_manager_is_sent_as_its_identity_center_id_and_read_back_as_its_source_id() -> None:
    """The SCIM body carries the manager's Identity Center id; reading it back gives the source id again."""
    user = snapshot(source_user("u1", "boss@example.com"), source_user("u2", "ann@example.com", manager="u1")).users[
        "u2"
    ]
    resource = user_resource(user, User[EnterpriseUser], manager_id={"u1": "ic-boss"}.get)
    body = resource.model_dump(mode="json", scim_ctx=None, by_alias=True)
    ext = body["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]
    assert "ic-boss" == ext["manager"]["value"]
    body["id"] = "ic-ann"
    back = live_user(body, owners={"ic-boss": "u1"})
    assert "u1" == back.data["enterprise"]["manager"]
    unknown = user_resource(user, User[EnterpriseUser], manager_id={}.get)
    dumped = unknown.model_dump(mode="json", scim_ctx=None, by_alias=True)
    assert dumped["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"].get("manager") is None


def test_managers_created_in_the_same_run_go_first() -> None:
    """A chain of new users is created manager first, one wave per level; others share the first wave."""
    snap = snapshot(
        source_user("ceo", "ceo@example.com"),
        source_user("vp", "vp@example.com", manager="ceo"),
        source_user("ic", "ic@example.com", manager="vp"),
        source_user("solo", "solo@example.com"),
    )
    changes = [UserChange(Action.CREATE_USER, u) for u in snap.users.values()]
    waves = [sorted(c.source_id for c in wave) for wave in manager_waves(changes)]
    assert [["ceo", "solo"], ["vp"], ["ic"]] == waves
