"""A kept Entra user read back from the state's text names its shared values with one string each."""

from __future__ import annotations

import json

from connectors.entra_graph import pack_user, reshare_user
from syncd.model import Skipped


def _packed(index: int) -> list[object]:
    record = {
        "id": f"user-{index}",
        "userPrincipalName": f"u{index}@example.com",
        "userType": "Member",
        "department": "Engineering",
        "jobTitle": "Engineer",
        "companyName": "Example",
        "employeeId": f"E{index}",
        "manager": {"id": "user-0"},
    }
    packed = pack_user(record, None)
    assert not isinstance(packed, Skipped)
    return json.loads(json.dumps(packed[1]))  # as the state comes back: every value its own copy


def test_reshare_makes_shared_values_one_string_and_leaves_the_rest() -> None:
    """Department, title, company, user type and manager id: one string across users; employee ids stay apart."""
    first, second = _packed(1), _packed(2)

    reshare_user(first)
    reshare_user(second)

    for index in (6, 8, 9, 10, 11):  # userType, department, jobTitle, companyName, the manager's id
        assert first[index] is second[index], index
    assert (first[7], second[7], first[11]) == ("E1", "E2", "user-0")
