"""The IMAP wire format of the project's IMAP client, without sockets.

Covers pigeon_common.imap_protocol: command encoding, response parsing, mailbox names.
"""

from __future__ import annotations

import pytest

from pigeon_common.imap_protocol import (
    Arg,
    ImapConnectionError,
    ImapError,
    ImapProtocolError,
    ImapTimeoutError,
    LiteralArg,
    LiteralMode,
    Response,
    ResponseKind,
    ResponseParser,
    Status,
    StringArg,
    capabilities_in,
    decode_mailbox_name,
    display_mailbox_name,
    encode_command,
    encode_mailbox_name,
    flag_list,
    literal_mode,
    mailbox_argument,
    parse_list,
    parse_response,
    parse_search,
    parse_status_items,
    parse_values,
    plan_batches,
    quote_string,
)

MESSAGE = b"Subject: hi\r\n\r\n.dot line\r\n\xc3\xa9t\xc3\xa9\r\n"


def parse_all(*pieces: bytes) -> list[Response]:
    parser = ResponseParser()
    responses: list[Response] = []
    for piece in pieces:
        responses += parser.feed(piece)
    assert parser.pending == 0
    return responses


# --- command encoding ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"Sent", b'"Sent"'),
        (b"", b'""'),
        (b'pa"ss\\word', b'"pa\\"ss\\\\word"'),
        (b"two words", b'"two words"'),
        (b"caf\xc3\xa9", None),
        (b"line\r\nbreak", None),
        (b"nul\x00", None),
    ],
)
def test_quote_string(value: bytes, expected: bytes | None) -> None:
    assert quote_string(value) == expected


def test_login_with_plain_and_odd_strings() -> None:
    args: list[Arg] = ["LOGIN", StringArg(b"bob@example.test"), StringArg(b'a"b\\c d')]
    assert encode_command("P1", args, LiteralMode.SYNC) == [
        b'P1 LOGIN "bob@example.test" "a\\"b\\\\c d"\r\n'
    ]


def test_non_ascii_password_becomes_a_literal() -> None:
    password = "pässwört".encode()
    args: list[Arg] = ["LOGIN", StringArg(b"bob"), StringArg(password)]
    assert encode_command("P1", args, LiteralMode.SYNC) == [
        b'P1 LOGIN "bob" {%d}\r\n' % len(password),
        password + b"\r\n",
    ]
    assert encode_command("P1", args, LiteralMode.PLUS) == [
        b'P1 LOGIN "bob" {%d+}\r\n' % len(password) + password + b"\r\n"
    ]


def test_multiappend_with_literal_plus_is_one_segment() -> None:
    second = b"Subject: two\r\n\r\nbody\r\n"
    args: list[Arg] = [
        "APPEND",
        StringArg(b"Sent"),
        "(\\Seen)",
        LiteralArg(MESSAGE),
        "(\\Seen)",
        LiteralArg(second),
    ]
    [command] = encode_command("A7", args, LiteralMode.PLUS)
    assert command == (
        b'A7 APPEND "Sent" (\\Seen) {%d+}\r\n' % len(MESSAGE)
        + MESSAGE
        + b" (\\Seen) {%d+}\r\n" % len(second)
        + second
        + b"\r\n"
    )


def test_synchronizing_literals_split_the_command_where_the_server_must_answer() -> None:
    args: list[Arg] = ["APPEND", StringArg(b"Sent")]
    args += ["()", LiteralArg(b"one"), "()", LiteralArg(b"two")]
    assert encode_command("A1", args, LiteralMode.SYNC) == [
        b'A1 APPEND "Sent" () {3}\r\n',
        b"one () {3}\r\n",
        b"two\r\n",
    ]


def test_literal_minus_waits_only_for_literals_over_4096_bytes() -> None:
    small, large = b"s" * 4096, b"L" * 4097
    args: list[Arg] = ["APPEND", StringArg(b"Sent")]
    args += ["()", LiteralArg(small), "()", LiteralArg(large)]
    segments = encode_command("A1", args, LiteralMode.MINUS)
    assert len(segments) == 2
    assert segments[0].endswith(b"{4096+}\r\n" + small + b" () {4097}\r\n")
    assert segments[1] == large + b"\r\n"


def test_literal_mode_follows_capabilities() -> None:
    assert literal_mode({"IMAP4REV1", "LITERAL+"}) is LiteralMode.PLUS
    assert literal_mode({"LITERAL-"}) is LiteralMode.MINUS
    assert literal_mode({"IMAP4REV1"}) is LiteralMode.SYNC


def test_flag_list() -> None:
    assert flag_list(["\\Seen", "$Pigeon"]) == "(\\Seen $Pigeon)"
    assert flag_list([]) == "()"
    for bad in ("two words", "(x)", '"q"', "\\"):
        with pytest.raises(ValueError, match="not an IMAP flag"):
            flag_list([bad])


@pytest.mark.parametrize(
    ("sizes", "max_messages", "max_bytes", "expected"),
    [
        ([], 3, 100, []),
        ([10] * 7, 3, 1000, [range(0, 3), range(3, 6), range(6, 7)]),
        ([40, 40, 40, 40], 10, 100, [range(0, 2), range(2, 4)]),
        ([500, 10, 10], 10, 100, [range(0, 1), range(1, 3)]),  # too big: a batch of its own
        ([10, 500, 10], 10, 100, [range(0, 1), range(1, 2), range(2, 3)]),
        ([50, 50], 10, 100, [range(0, 2)]),  # exactly max_bytes fits
    ],
)
def test_plan_batches(
    sizes: list[int], max_messages: int, max_bytes: int, expected: list[range]
) -> None:
    assert plan_batches(sizes, max_messages, max_bytes) == expected


def test_plan_batches_rejects_empty_limits() -> None:
    with pytest.raises(ValueError, match="at least one"):
        plan_batches([1], 0, 10)


# --- responses -------------------------------------------------------------------------


def test_greeting_with_capability_code() -> None:
    [greeting] = parse_all(b"* OK [CAPABILITY IMAP4rev1 LITERAL+ AUTH=PLAIN] Dovecot ready.\r\n")
    assert greeting.kind is ResponseKind.UNTAGGED
    assert greeting.status is Status.OK
    assert greeting.code == "CAPABILITY IMAP4rev1 LITERAL+ AUTH=PLAIN"
    assert greeting.text == "Dovecot ready."
    assert capabilities_in(greeting) == frozenset({"IMAP4REV1", "LITERAL+", "AUTH=PLAIN"})


def test_capability_data_response() -> None:
    [response] = parse_all(b"* CAPABILITY IMAP4rev1 MULTIAPPEND Special-Use\r\n")
    assert capabilities_in(response) == frozenset({"IMAP4REV1", "MULTIAPPEND", "SPECIAL-USE"})
    assert capabilities_in(parse_response([b"P1 OK done"])) is None


def test_tagged_answers_with_and_without_codes() -> None:
    ok, no, bad = parse_all(
        b"P1 OK [APPENDUID 17 1:100] Append completed (0.01 secs).\r\n"
        b"P2 NO [TRYCREATE] Mailbox doesn't exist: Nope\r\n"
        b"P3 BAD Error in IMAP command APPEND: Invalid arguments.\r\n"
    )
    assert ok.is_tagged_ok() and ok.tag == "P1" and ok.code == "APPENDUID 17 1:100"
    assert (no.tag, no.name, no.code, no.text) == (
        "P2",
        "NO",
        "TRYCREATE",
        "Mailbox doesn't exist: Nope",
    )
    assert not no.is_tagged_ok()
    assert (bad.name, bad.code) == ("BAD", None)
    error = no.to_error("APPEND")
    assert isinstance(error, ImapError)
    assert (error.code, error.status, error.command) == ("TRYCREATE", "NO", "APPEND")
    assert "TRYCREATE" in str(error) and not error.temporary


def test_continuation_and_numbered_untagged_responses() -> None:
    plus, exists, bye = parse_all(b"+ OK\r\n* 3 EXISTS\r\n* BYE [UNAVAILABLE] shutting down\r\n")
    assert plus.kind is ResponseKind.CONTINUATION and plus.text == "OK"
    assert (exists.name, exists.number) == ("EXISTS", 3)
    assert bye.status is Status.BYE and bye.code == "UNAVAILABLE"


def test_responses_split_anywhere_are_reassembled() -> None:
    wire = b'* LIST (\\HasNoChildren \\Sent) "/" {4}\r\nSent\r\nP1 OK LIST completed\r\n'
    for cut in range(1, len(wire)):
        listed, done = parse_all(wire[:cut], wire[cut:])
        assert parse_list(listed).raw_name == "Sent"
        assert done.is_tagged_ok()
    one_by_one = parse_all(*(wire[i : i + 1] for i in range(len(wire))))
    assert [r.name for r in one_by_one] == ["LIST", "OK"]


def test_literal_can_hold_line_breaks_and_braces() -> None:
    body = b"a\r\n{5}\r\n* BYE not a response\r\n"
    [fetch] = parse_all(b"* 1 FETCH (BODY[] {%d}\r\n" % len(body) + body + b")\r\n")
    assert fetch.name == "FETCH" and fetch.number == 1
    assert parse_values(fetch.rest) == [[b"BODY[]", body]]


def test_bare_lf_line_endings_are_tolerated() -> None:
    [ok] = parse_all(b"P9 OK fine\n")
    assert ok.is_tagged_ok()


def test_parser_limits() -> None:
    with pytest.raises(ImapProtocolError, match="longer than"):
        ResponseParser(max_line=10).feed(b"* OK " + b"x" * 20)
    with pytest.raises(ImapProtocolError, match="too large"):
        ResponseParser(max_literal=10).feed(b"* LIST () NIL {11}\r\n")


@pytest.mark.parametrize(
    "line",
    [b"", b"P1", b"P1 MAYBE so", b"P1 EXISTS 3"],
)
def test_not_a_response(line: bytes) -> None:
    with pytest.raises(ImapProtocolError):
        parse_response([line])


def test_status_without_text_is_tolerated() -> None:
    ok = parse_response([b"P1 ok"])
    assert ok.is_tagged_ok() and ok.text == ""


# --- values, LIST, SEARCH ----------------------------------------------------------------


def test_values() -> None:
    values = parse_values([b'(\\Seen "a \\"q\\" b" NIL (x y)) nil "NIL" BODY[HEADER.FIELDS (A B)]'])
    assert values == [
        [b"\\Seen", b'a "q" b', None, [b"x", b"y"]],
        None,
        b"NIL",
        b"BODY[HEADER.FIELDS (A B)]",
    ]


@pytest.mark.parametrize(
    "text",
    [b"(a b", b"a b)", b'"unterminated', b"{3} trailing"],
)
def test_malformed_values(text: bytes) -> None:
    with pytest.raises(ImapProtocolError):
        parse_values([text, b"abc", b""])


def test_list_with_quoted_name_and_special_use() -> None:
    [response] = parse_all(b'* LIST (\\HasNoChildren \\SENT) "." "INBOX.Sent Items"\r\n')
    mailbox = parse_list(response)
    assert mailbox.raw_name == mailbox.name == "INBOX.Sent Items"
    assert mailbox.delimiter == "."
    assert mailbox.has_flag("\\Sent") and mailbox.selectable


def test_list_with_atom_name_nil_delimiter_and_extended_data() -> None:
    [response] = parse_all(b'* LIST (\\Noselect) NIL Archive ("CHILDINFO" ("SUBSCRIBED"))\r\n')
    mailbox = parse_list(response)
    assert (mailbox.raw_name, mailbox.delimiter) == ("Archive", None)
    assert not mailbox.selectable


def test_list_with_literal_and_modified_utf7_name() -> None:
    raw = b'Gesendete &ANY-bjekte ["x"]'
    [response] = parse_all(b'* LIST (\\Sent) "/" {%d}\r\n' % len(raw) + raw + b"\r\n")
    mailbox = parse_list(response)
    assert mailbox.raw_name == 'Gesendete &ANY-bjekte ["x"]'
    assert mailbox.name == 'Gesendete Öbjekte ["x"]'
    assert mailbox.has_flag("\\Sent")


def test_list_with_quoted_specials_in_name() -> None:
    [response] = parse_all(b'* LIST () "/" "a\\\\b \\"c\\""\r\n')
    assert parse_list(response).raw_name == 'a\\b "c"'


def test_malformed_list() -> None:
    [response] = parse_all(b'* LIST "/" Sent\r\n')
    with pytest.raises(ImapProtocolError, match="LIST"):
        parse_list(response)


def test_search() -> None:
    [hits, empty] = parse_all(b"* SEARCH 3 17 2001\r\n* SEARCH\r\n")
    assert parse_search(hits) == [3, 17, 2001]
    assert parse_search(empty) == []
    with pytest.raises(ImapProtocolError):
        parse_search(parse_response([b"* SEARCH 1 x"]))


def test_status_items() -> None:
    [response] = parse_all(b'* STATUS "Sent Items" (UIDVALIDITY 1700000000 UIDNEXT 42)\r\n')
    assert parse_status_items(response) == {"UIDVALIDITY": 1700000000, "UIDNEXT": 42}
    for broken in (
        b"* STATUS Sent\r\n",
        b"* STATUS Sent (UIDNEXT)\r\n",
        b"* STATUS Sent (UIDNEXT x)\r\n",
    ):
        [response] = parse_all(broken)
        with pytest.raises(ImapProtocolError, match="STATUS"):
            parse_status_items(response)


# --- modified UTF-7 ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("display", "raw"),
    [
        ("Sent", "Sent"),
        ("Entwürfe", "Entw&APw-rfe"),
        ("Gesendete Elemente", "Gesendete Elemente"),
        ("A & B", "A &- B"),
        ("Отправленные", "&BB4EQgQ,BEAEMAQyBDsENQQ9BD0ESwQ1-"),
        ("已发送", "&XfJT0ZAB-"),
        ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
        ("😀 sent", "&2D3eAA- sent"),
    ],
)
def test_modified_utf7_round_trip(display: str, raw: str) -> None:
    assert encode_mailbox_name(display) == raw
    assert decode_mailbox_name(raw) == display


@pytest.mark.parametrize("raw", ["bad&name", "&Jjo!-", "&AGE-"[:-1], "&2D0-"])
def test_invalid_modified_utf7(raw: str) -> None:
    with pytest.raises(ValueError):
        decode_mailbox_name(raw)
    assert display_mailbox_name(raw) == raw


def test_mailbox_argument_encodes_only_display_names() -> None:
    assert mailbox_argument("Sent") == StringArg(b"Sent")
    assert mailbox_argument("Entw&APw-rfe") == StringArg(b"Entw&APw-rfe")  # raw: kept
    assert mailbox_argument("Entwürfe") == StringArg(b"Entw&APw-rfe")


# --- errors ------------------------------------------------------------------------------


def test_error_hierarchy_lets_callers_decide() -> None:
    timeout = ImapTimeoutError("no answer")
    assert isinstance(timeout, ImapConnectionError)
    assert isinstance(timeout, TimeoutError) and isinstance(timeout, ConnectionError)
    assert isinstance(timeout, ImapError) and timeout.temporary
    assert ImapError("OVERQUOTA", "full").temporary
    assert not ImapError("NONEXISTENT", "no such mailbox").temporary
    assert not ImapError(None, "no").temporary
