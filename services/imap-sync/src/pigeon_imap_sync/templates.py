"""Bounces in the fixed templates of servers that neither write an RFC 3464 report nor
are known to flufl.bounce: each template names its failed recipients in its own way.

A template applies when the message carries its signature (a header, a subject, a line
the server always writes); then its recipient lines give the addresses and, for each, the
diagnostic is, in order: the text the line itself carries after the address, the
template's shared diagnostic block ("Error message below:"), or the paragraph of the
notice about the address (`paragraph.paragraph_about`). Every recipient failed for good:
these are non-delivery notices. The reason follows `reasons.judge` as for any bounce.

Where each template comes from (the server's own source or documentation):

- DragonFly Mail Agent: dma's `mail.c` bounce() ("There was an error delivering your
  mail to <%s>.") and `net.c` ("%s [%s] did not like our %s:", "DNS lookup failure").
- Apache James (also Verizon's vtext.com gateway, which runs it): the AbstractNotify
  mailet ("Error message below:", "Message details:", "  RCPT TO: ").
- au by KDDI: "Your mail sent on: ... Could not be delivered to: <...>".
- au EZweb: "<address>: reply" lines under "The user(s) account is ...".
- Lotus/IBM Notes: "------- Failure Reasons --------", a bare address line.
- Digital Arts m-FILTER: X-Mailer m-FILTER, "-------server message".
- TransWARE Active!hunter: X-AHMailID, ">>> address <address>".
- fml: X-MLServer, "... <list address>." before "Original mail as follows:".
- Trustwave MailMarshal: 'Undeliverable Mail: "...', "Could not be delivered because
  of", "The following recipients were affected:".
- Google Groups: X-Failed-Recipients and "the group you tried to contact".
- OpenSMTPD: bounce.c ("This is the MAILER-DAEMON, please DO NOT REPLY to this e-mail.",
  "address: reply" lines).
- Exchange Online / Office 365 without a report part: "Diagnostic information for
  administrators:" then the address alone on a line and "Remote Server returned ...".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import Message

from pigeon_imap_sync.hardness import bounced_recipient
from pigeon_imap_sync.inbound import Action, BouncedRecipient
from pigeon_imap_sync.mailtext import body_text, header_text
from pigeon_imap_sync.paragraph import paragraph_about

BODY_CHARS = 128 * 1024
MAX_RECIPIENTS = 100
CONTEXT_CHARS = 600
DIAGNOSTIC_SCAN_CHARS = 16 * 1024
_ADDRESS = r"[^\s<>()\[\]{}\"',;:@]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
_FLAGS = re.IGNORECASE | re.MULTILINE


def _lines(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(patterns), _FLAGS)


@dataclass(frozen=True)
class Template:
    """One server's notice: how to know it, where its notice ends, how it names
    recipients (group `address`, optionally `diagnostic`) and its shared diagnostic."""

    name: str
    signature: Callable[[Message, str], bool]  # (message, its body text)
    recipient: re.Pattern[str]
    start: re.Pattern[str] | None = None  # recipients are read after this line
    end: re.Pattern[str] | None = None  # the notice ends here (the returned message)
    diagnostic: re.Pattern[str] | None = None  # group `text`: one block for all
    from_header: str = ""  # read recipients from this header instead of the text
    # The notice's opening words are about every recipient ("The user(s) account is
    # disabled."): read them when the recipient's own words say nothing.
    notice_is_context: bool = False


def _header(name: str, pattern: str) -> Callable[[Message, str], bool]:
    compiled = re.compile(pattern, re.IGNORECASE)
    return lambda msg, _body: bool(compiled.search(header_text(msg, name)))


def _has_header(name: str) -> Callable[[Message, str], bool]:
    return lambda msg, _body: msg.get(name) is not None


def _body(pattern: str) -> Callable[[Message, str], bool]:
    compiled = re.compile(pattern, _FLAGS)
    return lambda _msg, body: bool(compiled.search(body))


def _all(*tests: Callable[[Message, str], bool]) -> Callable[[Message, str], bool]:
    return lambda msg, body: all(test(msg, body) for test in tests)


def _any(*tests: Callable[[Message, str], bool]) -> Callable[[Message, str], bool]:
    return lambda msg, body: any(test(msg, body) for test in tests)


TEMPLATES: tuple[Template, ...] = (
    Template(
        "DragonFly Mail Agent",
        _body(r"^This is the DragonFly Mail Agent "),
        re.compile(rf"There was an error delivering your mail to <(?P<address>{_ADDRESS})>"),
        end=_lines(r"^Original message follows\.", r"^Message headers follow\."),
    ),
    Template(
        "Apache James",
        _all(_body(r"^Message details:[ \t]*$"), _body(r"^  RCPT TO: ")),
        re.compile(rf"^(?:  RCPT TO: | {{11}})(?P<address>{_ADDRESS})[ \t]*$", re.M),
        start=_lines(r"^Message details:"),
        end=_lines(r"^  From: ", r"^  To: ", r"^  Size \(in bytes\)"),
        diagnostic=re.compile(
            r"^(?:Error message below:|Error:)(?P<text>.*?)^Message details:", _FLAGS | re.S
        ),
    ),
    Template(
        "au by KDDI",
        _body(r"^Your mail (?:sent|attempted to be delivered) on:"),
        re.compile(
            rf"Could not be delivered to: <(?P<address>{_ADDRESS})>[ \t]*\n"
            r"(?P<diagnostic>(?:[ \t]+\S.*\n?)*)"
        ),
        end=_lines(r"^Content-Type: message/rfc822"),
    ),
    Template(
        "au EZweb",
        _any(
            _header("From", r"postmaster@(?:ezweb\.ne\.jp|au\.com)"),
            _header("Subject", r"^Mail System Error - Returned Mail$"),
        ),
        re.compile(
            rf"^(?:<(?P<address>{_ADDRESS})>:?(?P<diagnostic>.*)"
            rf"|[ \t]+Recipient: <(?P<address2>{_ADDRESS})>.*)$",
            re.M,
        ),
        end=_lines(r"^-{20,}", r"^Content-Type: message/rfc822"),
        notice_is_context=True,
    ),
    Template(
        "Lotus Notes",
        _all(
            _header("Subject", r"^Undeliverable message"),
            _body(r"^-+ Failure Reasons"),
        ),
        re.compile(rf"^(?P<address>{_ADDRESS})[ \t]*$", re.M),
        start=_lines(r"^-+ Failure Reasons"),
        end=_lines(r"^-+ Returned Message"),
        # The reason comes on the line before the address.
        diagnostic=re.compile(r"^-+ Failure Reasons[ -]*$(?P<text>.*)", re.M | re.S),
    ),
    Template(
        "m-FILTER",
        _header("X-Mailer", r"^m-FILTER"),
        re.compile(rf"^(?P<address>{_ADDRESS})[ \t]*$", re.M),
        end=_lines(r"^-------original (?:message|mail info)"),
        diagnostic=re.compile(
            r"^-------server message[ \t]*\n(?P<text>.*?)(?:^-------|\Z)", re.M | re.S
        ),
    ),
    Template(
        "Active!hunter",
        _has_header("X-AHMailID"),
        re.compile(rf"^>>>[ \t]+\S+[ \t]+<(?P<address>{_ADDRESS})>", re.M),
        end=_lines(r"^Content-type: message/rfc822"),
    ),
    Template(
        "fml",
        _has_header("X-MLServer"),
        re.compile(rf"^(?P<diagnostic>[^\n<]*<(?P<address>{_ADDRESS})>.*)$", re.M),
        end=_lines(r"Original mail as follows:"),
    ),
    Template(
        "MailMarshal",
        _header("Subject", r'^Undeliverable Mail: "'),
        re.compile(rf"^ {{4}}(?P<address>{_ADDRESS})[ \t]*$", re.M),
        start=_lines(r"^The following recipients were affected:"),
        end=_lines(r"^Additional Information"),
        diagnostic=re.compile(
            r"^Could not be delivered because of(?P<text>.*?)^The following recipients",
            _FLAGS | re.S,
        ),
    ),
    Template(
        "Google Groups",
        _all(_has_header("X-Failed-Recipients"), _body(r"the group you tried to contact")),
        re.compile(rf"(?P<address>{_ADDRESS})"),
        end=_lines(r"^-+ Original message -+"),
        diagnostic=re.compile(r"(?P<text>We're writing to let you know.*?)(?:\n[ \t]*\n|\Z)", re.S),
        from_header="X-Failed-Recipients",
    ),
    Template(
        "OpenSMTPD",
        _body(r"This is the MAILER-DAEMON, please DO NOT REPLY to this e-mail"),
        re.compile(rf"^(?P<address>{_ADDRESS}): (?P<diagnostic>.+)$", re.M),
        end=_lines(r"^[ \t]*Below is a copy of the original message"),
    ),
    Template(
        "Office 365",
        _body(r"^Diagnostic information for administrators:"),
        re.compile(rf"^(?P<address>{_ADDRESS})[ \t]*$", re.M),
        start=_lines(r"^Diagnostic information for administrators:"),
        end=_lines(r"^Original message headers:"),
    ),
)


def read_template(msg: Message) -> tuple[BouncedRecipient, ...]:
    """The failed recipients of the first template `msg` carries the signature of."""
    body = body_text(msg, BODY_CHARS)
    for template in TEMPLATES:
        if template.signature(msg, body):
            found = tuple(_recipients(template, msg, body))
            if found:
                return found
    return ()


def _recipients(template: Template, msg: Message, body: str) -> Iterator[BouncedRecipient]:
    notice = _cut(body, template.end)
    shared = ""
    if template.diagnostic is not None:
        block = template.diagnostic.search(notice[:DIAGNOSTIC_SCAN_CHARS])
        shared = block.group("text").strip() if block else ""
    area = notice
    if template.start is not None:
        start = template.start.search(notice)
        if start is None:
            return
        area = notice[start.end() :]
    source = header_text(msg, template.from_header) if template.from_header else area
    seen: set[str] = set()
    for match in template.recipient.finditer(source):
        groups = match.groupdict()
        email = groups.get("address") or groups.get("address2") or ""
        if not email or email.casefold() in seen:
            continue
        seen.add(email.casefold())
        own = (groups.get("diagnostic") or "").strip()
        diagnostic = own or shared or paragraph_about(email, notice)
        context = notice[:CONTEXT_CHARS] if template.notice_is_context else ""
        yield bounced_recipient(email, Action.FAILED, "", diagnostic, context)
        if len(seen) == MAX_RECIPIENTS:
            return


def _cut(body: str, end: re.Pattern[str] | None) -> str:
    marker = end.search(body) if end is not None else None
    return body[: marker.start()] if marker else body
