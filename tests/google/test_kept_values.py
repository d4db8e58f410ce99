"""A kept Google user read back from the state's text names its shared values with one string each."""

from __future__ import annotations

import json

from connectors.google_records import pack_user, reshare_user
from syncd.model import Skipped


def _packed(index: int) -> list[object]:
    record = {
        "id": f"1{index:05d}",
        "primaryEmail": f"u{index}@example.com",
        "name": {"givenName": "U", "familyName": f"{index}"},
        "organizations": [{"primary": True, "department": "Engineering", "costCenter": "CC-7"}],
        "externalIds": [{"type": "organization", "value": f"E{index}"}],
        "relations": [{"type": "manager", "value": "boss@example.com"}],
        "etag": f'"etag-{index}"',
    }
    packed = pack_user(record)
    assert not isinstance(packed, Skipped)
    return json.loads(json.dumps(packed[1]))  # as the state comes back: every value its own copy


def test_reshare_makes_department_cost_center_and_manager_one_string() -> None:
    """Department, cost center and manager address: one string across users; employee numbers stay apart."""
    first, second = _packed(1), _packed(2)

    reshare_user(first)
    reshare_user(second)

    ent_a, ent_b = first[5], second[5]
    assert isinstance(ent_a, dict)
    assert isinstance(ent_b, dict)
    assert ent_a["department"] is ent_b["department"]
    assert ent_a["cost_center"] is ent_b["cost_center"]
    assert first[6] is second[6] == "boss@example.com"
    assert (ent_a["employee_number"], ent_b["employee_number"]) == ("E1", "E2")
