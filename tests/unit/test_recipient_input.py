"""Recipients CSV parsing and event-sized chunks, from bytes, without a server."""

from __future__ import annotations

import io
import json
import uuid

import pytest

from pigeon_api.recipient_input import (
    MAX_ERRORS_SHOWN,
    CsvFormatError,
    MergedRecipients,
    merge_list,
    parse_csv,
)
from pigeon_common.events import RecipientData
from pigeon_common.validation import recipient_id

CAMPAIGN = uuid.UUID("5d6b0a52-7a34-4bb4-9b1a-2c3d4e5f6a7b")


def _parse(text: str | bytes) -> MergedRecipients:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return parse_csv(data, CAMPAIGN)


def _errors(result: MergedRecipients) -> list[tuple[int, str]]:
    return [(e.line, e.reason) for e in result.errors]


# --- header -------------------------------------------------------------------------------


def test_email_name_and_attributes() -> None:
    result = _parse("email,name,city,plan\nann@example.org,Ann,Paris,pro\nbob@example.org,,,\n")
    assert result.errors == []
    assert result.rows == 2 and result.merged == 0
    ann, bob = result.recipients
    assert ann == RecipientData(
        recipient_id=recipient_id(CAMPAIGN, "ann@example.org"),
        email="ann@example.org",
        name="Ann",
        attributes={"city": "Paris", "plan": "pro"},
    )
    assert (bob.email, bob.name, bob.attributes) == ("bob@example.org", "", {})


def test_email_column_anywhere_and_alone() -> None:
    result = _parse("city,email\nRome,c@example.org\n")
    assert [(r.email, r.attributes) for r in result.recipients] == [
        ("c@example.org", {"city": "Rome"})
    ]
    assert [r.email for r in _parse("email\nd@example.org\n").recipients] == ["d@example.org"]


@pytest.mark.parametrize("header", ["Email", "EMAIL", " email ", "eMail"])
def test_email_column_name_is_case_insensitive(header: str) -> None:
    result = _parse(f"{header},Name\nann@example.org,Ann\n")
    assert [(r.email, r.name, r.attributes) for r in result.recipients] == [
        ("ann@example.org", "Ann", {})
    ]


def test_byte_order_mark_is_ignored() -> None:
    result = _parse(b"\xef\xbb\xbfEmail,name\r\nann@example.org,Ann\r\n")
    assert [(r.email, r.name) for r in result.recipients] == [("ann@example.org", "Ann")]
    assert result.errors == []


@pytest.mark.parametrize(
    "header",
    ["name,city", "e-mail,name", "mail", "emails", "email_address"],
)
def test_missing_email_column(header: str) -> None:
    with pytest.raises(CsvFormatError) as caught:
        _parse(f"{header}\nann@example.org\n")
    assert caught.value.line == 1
    assert "email" in str(caught.value)


@pytest.mark.parametrize("header", ["email,name,Name", "email,Email", "email,city,city", "email,,"])
def test_duplicate_column(header: str) -> None:
    with pytest.raises(CsvFormatError) as caught:
        _parse(f"{header}\n")
    assert caught.value.line == 1
    assert "twice" in str(caught.value)


@pytest.mark.parametrize(
    "column", ["first name", "1st", "city-name", "plan.tier", "x" * 65, "naïve", "a$b"]
)
def test_invalid_attribute_column_name(column: str) -> None:
    with pytest.raises(CsvFormatError) as caught:
        _parse(f'email,"{column}"\nann@example.org,x\n')
    assert caught.value.line == 1
    assert repr(column) in str(caught.value)


def test_valid_attribute_column_names() -> None:
    result = _parse("email,_private,Plan2,x" + "y" * 63 + "\na@example.org,1,2,3\n")
    assert result.recipients[0].attributes == {"_private": "1", "Plan2": "2", "x" + "y" * 63: "3"}


def test_too_many_attribute_columns() -> None:
    header = "email," + ",".join(f"a{i}" for i in range(101))
    with pytest.raises(CsvFormatError) as caught:
        _parse(header + "\n")
    assert caught.value.line == 1


@pytest.mark.parametrize("data", [b"", b"\xef\xbb\xbf"])
def test_empty_file(data: bytes) -> None:
    with pytest.raises(CsvFormatError) as caught:
        _parse(data)
    assert caught.value.line is None
    assert "empty" in str(caught.value)


def test_header_only_gives_nothing() -> None:
    result = _parse("email,name\n")
    assert (result.recipients, result.errors, result.rows) == ([], [], 0)


def test_blank_lines_are_skipped_but_counted() -> None:
    result = _parse("email\n\nann@example.org\n\n   \nnot-an-address\n")
    assert [r.email for r in result.recipients] == ["ann@example.org"]
    assert [line for line, _ in _errors(result)] == [6]


# --- merging duplicates within the file ---------------------------------------------------


def test_duplicates_are_merged() -> None:
    result = _parse(
        "email,name,city,plan\n"
        "ann@example.org,Ann,Paris,\n"
        "ANN@EXAMPLE.ORG,,Lyon,pro\n"
        "bob@example.org,Bob,,\n"
        "Ann@Example.org,Annie,,\n"
        "ann@example.org,,,\n"
    )
    assert result.rows == 5
    assert result.merged == 3
    assert len(result.recipients) == 2
    ann, bob = result.recipients  # first-seen order
    assert ann.recipient_id == recipient_id(CAMPAIGN, "ann@example.org")
    assert ann.email == "ann@example.org"
    assert ann.name == "Annie"  # the later non-empty name wins; an empty one keeps it
    assert ann.attributes == {"city": "Lyon", "plan": "pro"}  # merged, the newer value winning
    assert bob.name == "Bob"


def test_merge_list_merges_like_the_csv() -> None:
    result = merge_list(
        CAMPAIGN,
        [
            ("a@example.org", "A", {"x": 1}),
            ("A@example.org", "", {"y": 2}),
            ("a@example.org", "Z", {"x": 3}),
        ],
    )
    assert result.merged == 2
    assert [(r.name, r.attributes) for r in result.recipients] == [("Z", {"x": 3, "y": 2})]


# --- row errors and their line numbers ----------------------------------------------------


def test_row_errors_carry_their_line() -> None:
    result = _parse(
        "email,name\n"  # 1
        "ann@example.org,Ann\n"  # 2
        "not-an-address,X\n"  # 3
        "bob@example.org,Bob\n"  # 4
        "bad@@example.org,Y\n"  # 5
    )
    assert [r.email for r in result.recipients] == ["ann@example.org", "bob@example.org"]
    assert [line for line, _ in _errors(result)] == [3, 5]
    assert "not-an-address" in result.errors[0].reason
    assert result.error_count == 2


def test_line_numbers_after_a_quoted_multi_line_field() -> None:
    result = _parse(
        "email,note\n"  # 1
        'ann@example.org,"first\nsecond\nthird"\n'  # 2-4
        "broken,x\n"  # 5
        'bob@example.org,"a\r\nb"\n'  # 6-7
        "also broken,y\n"  # 8
    )
    assert [line for line, _ in _errors(result)] == [5, 8]
    assert result.recipients[0].attributes == {"note": "first\nsecond\nthird"}
    assert result.recipients[1].attributes == {"note": "a\r\nb"}


def test_an_error_in_a_multi_line_row_names_its_first_line() -> None:
    result = _parse('email,name\nann@example.org,A\n"not\nan address",B\n')
    assert [line for line, _ in _errors(result)] == [3]


def test_wrong_field_count() -> None:
    result = _parse(
        "email,name,city\n"
        "ann@example.org,Ann\n"  # 2: too few
        "bob@example.org,Bob,Rome,extra\n"  # 3: too many
        "cy@example.org,Cy,Oslo\n"
    )
    assert _errors(result) == [(2, "expected 3 fields, found 2"), (3, "expected 3 fields, found 4")]
    assert [r.email for r in result.recipients] == ["cy@example.org"]


@pytest.mark.parametrize(
    "name", ["Ann\nBcc: eve@example.org", "Ann\tB", "Ann\u2028B", "A" * 201], ids=repr
)
def test_unsafe_or_long_names_are_row_errors(name: str) -> None:
    result = _parse(f'email,name\nann@example.org,"{name}"\nbob@example.org,Bob\n')
    assert [line for line, _ in _errors(result)] == [2]
    assert "name" in result.errors[0].reason
    assert [r.email for r in result.recipients] == ["bob@example.org"]


def test_overlong_attribute_value_is_a_row_error() -> None:
    result = _parse("email,note\nann@example.org," + "x" * 10_001 + "\nbob@example.org,ok\n")
    assert [line for line, _ in _errors(result)] == [2]
    assert "note" in result.errors[0].reason
    assert [r.email for r in result.recipients] == ["bob@example.org"]


def test_errors_shown_are_capped_but_all_counted() -> None:
    rows = "".join(f"bad{i}\n" for i in range(MAX_ERRORS_SHOWN + 50))
    result = _parse("email\n" + rows + "ok@example.org\n")
    assert result.error_count == MAX_ERRORS_SHOWN + 50
    assert len(result.errors) == MAX_ERRORS_SHOWN
    assert result.errors[0].line == 2
    assert [r.email for r in result.recipients] == ["ok@example.org"]


# --- faults of the file as a whole --------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "line"),
    [
        (b"email,name\n\xff\xfe,x\n", 2),
        (b"email,name\nann@example.org,Ann\nbob@example.org,B\xe9a\n", 3),
        (b"\xef\xbb\xbfemail\nann@example.org\n\n\nx@exa\xc3mple.org\n", 5),
        (b"em\x80ail\n", 1),
    ],
)
def test_non_utf8_bytes(data: bytes, line: int) -> None:
    with pytest.raises(CsvFormatError) as caught:
        _parse(data)
    assert caught.value.line == line
    assert "UTF-8" in str(caught.value)
    assert str(caught.value).startswith(f"line {line}:")


def test_unclosed_quote() -> None:
    with pytest.raises(CsvFormatError) as caught:
        _parse('email,name\nann@example.org,"Ann\n')
    assert caught.value.line == 2


def test_stray_quote_inside_a_field() -> None:
    with pytest.raises(CsvFormatError) as caught:
        _parse('email,name\nann@example.org,"Ann"x\n')
    assert caught.value.line == 2


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("email,note\nann@example.org,a\x00b\n", 2),
        ("email,name\nann@example.org,Ann\nbob@example.org,B\x00b\n", 3),
        ("email\nann@example.org\n\x00bob@example.org\n", 3),
    ],
    ids=["attribute", "name", "email"],
)
def test_nul_character(text: str, line: int) -> None:
    # A NUL is a broken file, not data: PostgreSQL cannot store it in text or jsonb.
    with pytest.raises(CsvFormatError) as caught:
        _parse(text)
    assert caught.value.line == line


# --- event-sized groups -------------------------------------------------------------------


Row = tuple[str, str, dict[str, object]]


def _row(i: int, name: str = "", **attributes: object) -> Row:
    return (f"user{i}@example.org", name, attributes)


def _grouped(rows: list[Row], **limits: int) -> MergedRecipients:
    result = MergedRecipients(CAMPAIGN, **limits)
    for email, name, attributes in rows:
        result.add(email, name, attributes)
    return result


def _groups(result: MergedRecipients) -> list[list[dict[str, object]]]:
    return [json.loads(group) for group in result.groups()]


def _emails(groups: list[list[dict[str, object]]]) -> list[object]:
    return [r["email"] for group in groups for r in group]


def test_no_rows_no_groups() -> None:
    assert _groups(_grouped([])) == []


def test_groups_keep_every_recipient_in_order() -> None:
    rows = [_row(i, "N" * (i % 50), k="v" * (i % 300)) for i in range(5_000)]
    groups = _groups(_grouped(rows, max_count=700, max_bytes=60_000))
    assert len(groups) > 1
    assert _emails(groups) == [email for email, _, _ in rows]
    assert all(groups)


def test_groups_respect_max_count() -> None:
    rows = [_row(i) for i in range(2_500)]
    assert [len(g) for g in _groups(_grouped(rows, max_count=1000))] == [1000, 1000, 500]
    assert [len(g) for g in _groups(_grouped(rows[:1000], max_count=1000))] == [1000]
    assert [len(g) for g in _groups(_grouped(rows[:3], max_count=1))] == [1, 1, 1]


def test_groups_default_count() -> None:
    assert [len(g) for g in _groups(_grouped([_row(i) for i in range(1001)]))] == [1000, 1]


def test_a_recipient_larger_than_the_budget_travels_alone() -> None:
    rows = [_row(0), _row(1, note="x" * 5_000), _row(2)]
    groups = _groups(_grouped(rows, max_bytes=1_000))
    assert [_emails([g]) for g in groups] == [[email] for email, _, _ in rows]


@pytest.mark.parametrize(
    "text",
    ["plain ascii text", "äöü ß é", "漢字かな", "😀🐦", "\x01\x1f", 'quo"te\\'],
    ids=["ascii", "latin", "cjk", "emoji", "control", "escapes"],
)
def test_groups_respect_the_byte_budget(text: str) -> None:
    # The budget is about what goes over NATS: the UTF-8 JSON of the recipients,
    # where a CJK character takes 3 bytes, an emoji 4 and a control character 6 (\u0001).
    budget = 50_000
    rows = [
        _row(i, name=(text * 40)[:200], note=(text * 400)[:2_000], tag=text) for i in range(300)
    ]
    result = _grouped(rows, max_count=1000, max_bytes=budget)
    groups = list(result.groups())
    assert len(groups) > 1
    assert _emails([json.loads(g) for g in groups]) == [email for email, _, _ in rows]
    for group in groups:
        assert len(group) <= budget, f"{len(json.loads(group))} recipients, {len(group)} B"


def test_a_repeat_after_its_group_was_written_travels_again_and_merges() -> None:
    rows = [_row(0, "Ann", a=1), _row(1), _row(0, "", b=2), _row(2), _row(0, "Anna", a=3)]
    result = _grouped(rows, max_count=2)
    assert (result.rows, result.merged, result.imported) == (5, 2, 3)
    groups = _groups(result)
    # The second row of user0 merges within its group; the third comes after that
    # group was written, so it travels again.
    assert _emails(groups) == [
        "user0@example.org",
        "user1@example.org",
        "user2@example.org",
        "user0@example.org",
    ]
    ann = result.recipients[0]
    assert (ann.email, ann.name, ann.attributes) == ("user0@example.org", "Anna", {"a": 3, "b": 2})
    assert ann.recipient_id == recipient_id(CAMPAIGN, "user0@example.org")


def test_a_large_file_is_read_from_a_file_object() -> None:
    body = "email,name\n" + "".join(f"u{i}@example.org,U {i}\n" for i in range(3_000))
    result = parse_csv(io.BytesIO(body.encode()), CAMPAIGN)
    assert (result.rows, result.imported, result.error_count) == (3_000, 3_000, 0)
    assert [len(g) for g in _groups(result)] == [1000, 1000, 1000]
