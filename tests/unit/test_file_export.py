"""The file source's record-by-record parser reads exactly what ``json.loads`` + ``parse_export`` read."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from connectors.base import ReadContext, SourceError
from connectors.file import FileSettings, FileSource, parse_export, parse_text
from syncd.normalise import Scope


EXPORT = {
    "users": [
        {
            "id": "u1",
            "user_name": "ada@example.com",
            "email": "ada@example.com",
            "given_name": "Ada",
            "family_name": "Lovelace",
            "active": "yes",
            "enterprise": {"department": "Maths", "manager": None},
        },
        {"id": 2, "user_name": "alan@example.com", "email": "Alan@Example.com", "active": False},
        "not a record",
        {"user_name": "no-id@example.com"},
    ],
    "groups": [
        {"id": "g1", "name": "aws-admins", "members": ["u1", 2, None], "groups": ["g2"]},
        {"id": "g2", "name": "nested", "description": "inner", "members": "not a list"},
        {"name": "no id"},
    ],
    "generated": {"by": "hr-export", "at": [2025, 6, 1]},
}


@pytest.mark.parametrize(
    "text",
    [
        json.dumps(EXPORT),
        json.dumps(EXPORT, indent=2),
        json.dumps({"groups": EXPORT["groups"], "users": EXPORT["users"]}),  # groups first
        json.dumps({"users": [], "groups": [], "users ": 1}),
        '{"users": [{"id": "old"}], "groups": [], "users": [{"id": "new"}]}',  # the last key counts
        '\n { "users" : [ ] , "groups" : [ ] } \n',
    ],
)
def test_parse_text_reads_what_parse_export_reads(text: str) -> None:
    """Same users, groups and skipped records, in the same order, for well-formed exports."""
    assert parse_export(json.loads(text)) == parse_text(text)


@pytest.mark.parametrize(
    "text",
    [
        '{"users": [], "groups": [],}',
        '{"users": [{"id": "u1"},], "groups": []}',
        '{"users": [], "groups": []} trailing',
        '{"users": [{"id": "u1"}',
        "\ufeff{}",
    ],
)
def test_malformed_json_fails_with_json_loads_own_error(text: str) -> None:
    """Invalid JSON raises the error json.loads raises, message and position included."""
    with pytest.raises(json.JSONDecodeError) as expected:
        json.loads(text)
    with pytest.raises(json.JSONDecodeError) as got:
        parse_text(text)
    assert str(expected.value) == str(got.value)


@pytest.mark.parametrize(
    "text", ["[]", '{"users": []}', '{"users": {}, "groups": []}', '{"users": null, "groups": []}']
)
def test_wrong_shape_fails_as_parse_export_does(text: str) -> None:
    """Valid JSON that is not an export is refused with parse_export's message."""
    with pytest.raises(SourceError, match='"users" and "groups" lists'):
        parse_text(text)


def test_member_ids_are_the_users_own_strings() -> None:
    """A member id is the very string of the user's id: one copy per id, however many groups hold it."""
    text = json.dumps({"users": [{"id": "u1"}], "groups": [{"id": f"g{i}", "members": ["u1"]} for i in range(3)]})
    read = parse_text(text)
    assert all(group.members[0] is read.users[0].id for group in read.groups)


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64])
def test_any_chunk_size_reads_the_same(chunk: int) -> None:
    """Read a few characters at a time (every value cut at every place), the export reads the same."""
    text = json.dumps({**EXPORT, "count": 12345678, "ratio": -1.5e10}, indent=1)

    assert parse_export(json.loads(text)) == parse_text(text, chunk=chunk)


@pytest.mark.parametrize("chunk", [1, 5])
def test_errors_are_the_same_in_small_chunks(chunk: int) -> None:
    """Malformed text read a little at a time still fails with json.loads's own message."""
    text = '{"users": [{"id": "u1"},], "groups": []}'
    with pytest.raises(json.JSONDecodeError) as expected:
        json.loads(text)
    with pytest.raises(json.JSONDecodeError) as got:
        parse_text(text, chunk=chunk)
    assert str(expected.value) == str(got.value)


def test_a_file_that_is_not_utf8_is_refused_by_name(tmp_path: Path) -> None:
    """Latin-1 bytes fail the read with the file's name and where, not as a connector bug."""
    path = tmp_path / "export.json"
    path.write_bytes('{"users": [{"id": "u1", "given_name": "Zoë"}], "groups": []}'.encode("latin-1"))
    source = FileSource(FileSettings(path=path))

    with pytest.raises(SourceError, match=r"export\.json is not UTF-8 text \(invalid .* at byte 41\)"):
        asyncio.run(source.read(ReadContext(scope=Scope(), full=True, state={})))


def test_dangling_member_ids_are_listed_as_skipped() -> None:
    """A group member id (or nested group id) that names nothing in the export is dropped and listed with why."""
    read = parse_export(
        {
            "users": [{"id": "u1", "user_name": "a@example.com"}],
            "groups": [{"id": "g1", "name": "eng", "members": ["u1", "u-gone"], "groups": ["g-gone"]}],
        }
    )
    assert ("u1",) == read.groups[0].members
    assert () == read.groups[0].groups
    assert [
        ("member", "g1/u-gone", "member 'u-gone' is not a user of the export"),
        ("member", "g1/g-gone", "nested group 'g-gone' is not a group of the export"),
    ] == [(s.kind, s.id, s.reason) for s in read.skipped]


def test_unknown_record_keys_skip_the_record_with_a_suggestion() -> None:
    """A record with a key the format does not have (a typo like "emial") is skipped, naming the key."""
    read = parse_export({"users": [{"id": "u1", "user_name": "a@example.com", "emial": "a@example.com"}], "groups": []})
    assert [] == read.users
    assert "unknown key 'emial' (did you mean 'email'?)" in read.skipped[0].reason
