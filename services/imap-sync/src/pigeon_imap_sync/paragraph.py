"""The text of a bounce that is about one recipient.

A bounce notice comes first and the message it returns after it; words in the returned
message ("spam", "blocked", an address in a quoted header) say nothing about the failure,
so only the notice (`notice_text`: the text up to the first returned-message marker) is
read. In it, the paragraph about a recipient is, in order:

1. the first paragraph naming the address (its line up to the next blank line, at most
   `WINDOW_CHARS` either side) that says why it failed;
2. else the text after the first mention, up to `FOLLOWING_CHARS` (Gmail and Exim put the
   address, a blank line, then the reason);
3. else, when the notice does not name the address at all (AOL names the local part only),
   the start of the notice.
"""

from __future__ import annotations

import re

from pigeon_imap_sync.mailtext import BLANK_LINE
from pigeon_imap_sync.reasons import says_why

WINDOW_CHARS = 600
FOLLOWING_CHARS = 1200
# An address named more often than this is in a list or a loop, not a notice.
_MAX_OCCURRENCES = 20
_RETURNED_MESSAGE = re.compile(
    r"^[ \t>]*(?:[-=_*]{2,}[ \t]*(?:original message|unsent message|returned message|"
    r"message header|the header of the original|copy of|text of the original|"
    r"headers of the original|original message headers|this is a copy|returned mail)|"
    r"original message follows|this is a copy of the message|below this line is a copy)",
    re.IGNORECASE | re.MULTILINE,
)


def notice_text(body: str) -> str:
    """`body` up to the first marker of a returned message."""
    marker = _RETURNED_MESSAGE.search(body)
    return body[: marker.start()] if marker else body


def paragraph_about(email: str, body: str) -> str:
    """The text of `body` (a notice) about `email`, by the order in the module docstring."""
    first = ""
    following = ""
    pattern = re.compile(re.escape(email), re.IGNORECASE)
    for count, match in enumerate(pattern.finditer(body)):
        if count == _MAX_OCCURRENCES:
            break
        line_start = body.rfind("\n", 0, match.start()) + 1
        start = max(line_start, match.start() - WINDOW_CHARS)
        blank = BLANK_LINE.search(body, match.end())
        end = min(blank.start() if blank else len(body), match.end() + WINDOW_CHARS)
        paragraph = body[start:end]
        if says_why(paragraph):
            return paragraph
        first = first or paragraph
        following = following or body[line_start : match.end() + FOLLOWING_CHARS]
    if following and says_why(following):
        return following
    return first or body[:FOLLOWING_CHARS]
