"""SCIM user bodies and syncd's users, both ways: the resource a create or replace sends, and a
listed body reduced to what the plan compares.

Identity Center's rules for the body ("Constraints and limitations" and CreateUser in the SCIM
developer guide, https://docs.aws.amazon.com/singlesignon/latest/developerguide/createuser.html):
one email, marked primary; the enterprise extension's manager is the manager's own SCIM id
(RFC 7643 §4.3).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from syncd import model
from syncd.live import LiveUser


if TYPE_CHECKING:
    from scim2_models import EnterpriseUser, User


__all__ = ["ENTERPRISE_URN", "live_user", "user_resource"]

ENTERPRISE_URN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
_ENTERPRISE_KEYS = {
    "employee_number": "employeeNumber",
    "cost_center": "costCenter",
    "organization": "organization",
    "division": "division",
    "department": "department",
}


def user_resource(
    user: model.User,
    model_cls: type[User[EnterpriseUser]],
    target_id: str | None = None,
    manager_id: Callable[[str], str | None] | None = None,
) -> User[EnterpriseUser]:
    """The SCIM user for ``user``: the attributes syncd owns, one primary email.

    ``manager_id`` turns the manager's source id into its Identity Center id (RFC 7643 §4.3:
    ``manager.value`` is the id of the manager's SCIM resource); a manager without one is left out.
    """
    from scim2_models import Email, EnterpriseUser, Manager, Name

    resource = model_cls(
        id=target_id,
        external_id=user.source_id,
        user_name=user.user_name,
        display_name=user.display_name,
        name=Name(given_name=user.given_name, family_name=user.family_name),
        active=user.active,
        emails=[Email(value=user.email, type="work", primary=True)] if user.email else None,
    )
    if user.enterprise:
        values = dict(user.enterprise)
        ext = EnterpriseUser(**{k: values[k] for k in _ENTERPRISE_KEYS if k in values})
        manager = values.get("manager")
        if manager is not None and manager_id is not None:
            manager = manager_id(manager)
        if manager is not None:
            ext.manager = Manager(value=manager)
        resource[EnterpriseUser] = ext
    return resource


def live_user(
    raw: Mapping[str, Any],
    expected: Mapping[str, model.User] | None = None,
    ids: dict[str, str] | None = None,
    owners: Mapping[str, str] | None = None,
) -> LiveUser:
    """Reduce a SCIM user body to what :meth:`syncd.model.User.payload` compares.

    ``expected`` (source id → user) lets a user whose externalId names one and whose attributes
    are exactly its payload be kept as a reference to it (see :class:`~syncd.live.LiveUser`);
    ``ids`` gives the id string to keep for an id already held (the cache's), not a copy;
    ``owners`` (Identity Center id → source id) turns the manager back into the source id the
    snapshot compares (the reverse of :func:`user_resource`'s ``manager_id``).
    """
    name = raw.get("name") or {}
    emails = raw.get("emails") or []
    primary = next((e for e in emails if e.get("primary")), emails[0] if emails else None)
    active = raw.get("active", True)
    if isinstance(active, str):  # the developer guide's own PATCH example sends "false" [DG:patchuser]
        active = active.lower() == "true"
    data: dict[str, Any] = {
        "externalId": raw.get("externalId"),
        "userName": raw.get("userName", ""),
        "displayName": raw.get("displayName"),
        "givenName": name.get("givenName"),
        "familyName": name.get("familyName"),
        "email": primary.get("value") if primary else None,
        "active": bool(active),
    }
    ext = raw.get(ENTERPRISE_URN) or {}
    enterprise = {k: ext[v] for k, v in _ENTERPRISE_KEYS.items() if ext.get(v)}
    manager = (ext.get("manager") or {}).get("value")
    if manager and owners is not None:
        manager = owners.get(manager, manager)
    if manager:
        enterprise["manager"] = manager
    if enterprise:
        data["enterprise"] = dict(sorted(enterprise.items()))
    target_id = str(raw["id"])
    if ids is not None:
        target_id = ids.setdefault(target_id, target_id)
    external_id = raw.get("externalId")
    user = expected.get(external_id) if expected is not None and isinstance(external_id, str) else None
    if user is not None and model.canonical(data) == model.canonical(user.payload()):
        return LiveUser(target_id, user.source_id, user.user_name, same=user)
    return LiveUser(target_id, external_id, str(raw.get("userName", "")), data)
