"""Why a recipient failed: a reason from the evidence a bounce gives, most trusted first.

`judge(status_field, diagnostic, context)` is pure. It weighs, in this order:

1. the words of the remote server's own diagnostic (`diagnostic`): "552 5.2.2 Over quota"
   is a full mailbox whatever the report's Status field says;
2. the enhanced status inside that diagnostic ("550 5.7.1 ...");
3. the report's Status field (`status_field`), when specific (not X.Y.0);
4. the words of the text around the recipient (`context`: the human-readable paragraph
   of a report, or the paragraph of a non-standard bounce that names the address);
5. the class alone: a 4.x.x failure that was given up is EXPIRED, a 5xx reply or 5.x.x
   status with nothing more is REJECTED, and nothing at all is UNKNOWN.

Within words, a cause that is not the address (the message's size, a full mailbox, a block
list, spam, authentication, policy, giving up) is looked for before an address-level one
(user or host unknown, a disabled mailbox): a text that says both is about the message, and
reading it as the address would suppress a valid one. A 4.x.x failure is never
address-level: the remote server itself said it was temporary. "User unknown" in reply to
the message's content (after DATA) is a filter (POLICY): the address was accepted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class Reason(StrEnum):
    """Why one recipient failed (the vocabulary of `message.bounced`)."""

    USER_UNKNOWN = "user_unknown"  # no such mailbox at that domain
    HOST_UNKNOWN = "host_unknown"  # no such domain, or no mail server for it
    MAILBOX_FULL = "mailbox_full"  # over quota
    SUSPEND = "suspend"  # mailbox disabled, suspended, inactive
    BLOCKED = "blocked"  # the sending server: block lists, reputation, reverse DNS, rate
    SPAM = "spam"  # the message was judged spam, a virus or unwanted content
    POLICY = "policy"  # a local rule refused it (attachments, security, permission)
    AUTH_FAILURE = "auth_failure"  # SPF, DKIM or DMARC failed
    EXPIRED = "expired"  # the sending side gave up retrying (timeouts, 4.x.x given up)
    TOO_LARGE = "too_large"  # the message exceeds a size limit
    REJECTED = "rejected"  # refused for no stated reason (relaying denied, 5xx alone)
    DELIVERED = "delivered"  # a delivery notification, not a failure
    UNKNOWN = "unknown"  # nothing said why


class Evidence(StrEnum):
    """Where a reason was read, most trusted first."""

    DIAGNOSTIC_TEXT = "diagnostic text"
    DIAGNOSTIC_STATUS = "diagnostic status"
    STATUS_FIELD = "status field"
    CONTEXT_TEXT = "bounce text"
    CLASS = "status class"
    NOTHING = "nothing"


# The status a failure without one implies, by its reason.
IMPLIED_STATUS: dict[Reason, str] = {
    Reason.USER_UNKNOWN: "5.1.1",
    Reason.HOST_UNKNOWN: "5.1.2",
    Reason.MAILBOX_FULL: "5.2.2",
    Reason.SUSPEND: "5.2.1",
    Reason.BLOCKED: "5.7.1",
    Reason.SPAM: "5.7.1",
    Reason.POLICY: "5.7.1",
    Reason.AUTH_FAILURE: "5.7.1",
    Reason.EXPIRED: "5.4.7",
    Reason.TOO_LARGE: "5.3.4",
    Reason.REJECTED: "5.0.0",
    Reason.DELIVERED: "2.0.0",
    Reason.UNKNOWN: "5.0.0",
}
# A reply to the message's content, after the recipient was accepted (Postfix, Exim,
# DragonFly wordings). A bare "User unknown" there is a filter's word: mobile carriers
# answer so for mail their users' filters refuse. Other words ("Rcpt <a> does not exist")
# still name the address: some servers check recipients only at the end of DATA.
_AFTER_DATA = re.compile(
    r"in reply to end of data command|after end of data|did not like our data\b",
    re.IGNORECASE,
)
_FILTER_WORDS = re.compile(r"\b(?:user unknown|unknown user)\b", re.IGNORECASE)
# Address-level reasons: the address itself is bad.
ADDRESS_REASONS = frozenset({Reason.USER_UNKNOWN, Reason.HOST_UNKNOWN, Reason.SUSPEND})


@dataclass(frozen=True)
class Judgement:
    reason: Reason
    status: str  # the most trusted specific enhanced status ('' when none was given)
    evidence: str  # "<Evidence>: <what was read>", one line


# An enhanced status in free text. A bounce body is full of IP addresses, and
# "192.5.1.10" must not read as status 5.1.10.
_STATUS_IN_TEXT = re.compile(r"(?<![\w.])([245])\.(\d{1,3})\.(\d{1,3})(?!\.?\d)")
# A reply code: three digits starting with 4 or 5, not part of a number, date or address.
_REPLY_CODE = re.compile(r"(?<![\w.:/#-])([45])\d\d(?=[\s-]|$)")

# Enhanced status → reason, by "class.subject.detail" with the class left out, then by
# subject alone. Only codes whose meaning does not depend on who wrote them.
_DETAIL_REASONS: dict[str, Reason] = {
    "1.1": Reason.USER_UNKNOWN,
    "1.2": Reason.HOST_UNKNOWN,
    "1.3": Reason.USER_UNKNOWN,  # bad syntax of the mailbox address
    "1.6": Reason.USER_UNKNOWN,  # moved, no forwarding address
    "1.10": Reason.USER_UNKNOWN,  # Exchange Online's RecipientNotFound (also null MX)
    "1.351": Reason.USER_UNKNOWN,  # Exchange's "recipient not found" (5.1.351)
    "1.7": Reason.REJECTED,  # the sender's address
    "1.8": Reason.REJECTED,
    "2.1": Reason.SUSPEND,
    "2.2": Reason.MAILBOX_FULL,
    "2.3": Reason.TOO_LARGE,
    "3.4": Reason.TOO_LARGE,
    "4.4": Reason.HOST_UNKNOWN,  # unable to route: no MX and no address for the domain
    "4.7": Reason.EXPIRED,
    "7.1": Reason.POLICY,
    "7.13": Reason.SUSPEND,  # user account disabled
    "7.17": Reason.USER_UNKNOWN,  # mailbox owner has changed (RFC 6710)
    "7.18": Reason.HOST_UNKNOWN,  # domain owner has changed
    "7.20": Reason.AUTH_FAILURE,
    "7.21": Reason.AUTH_FAILURE,
    "7.22": Reason.AUTH_FAILURE,
    "7.23": Reason.AUTH_FAILURE,
    "7.24": Reason.AUTH_FAILURE,
    "7.25": Reason.BLOCKED,  # no reverse DNS
    "7.26": Reason.AUTH_FAILURE,
    "7.27": Reason.REJECTED,
    "7.28": Reason.BLOCKED,  # mail flood
    "7.29": Reason.AUTH_FAILURE,
}
_SUBJECT_REASONS: dict[str, Reason] = {
    "6": Reason.POLICY,  # media / content conversion
    "7": Reason.POLICY,  # security or policy
}


def _words(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(patterns), re.IGNORECASE)


# Words of each reason: strong ones decide before any status, weak ones only after the
# statuses said nothing. Causes that are not the address are looked for first, then the
# address-level ones, then a bare refusal (REJECTED); within each group the earliest
# words in the text win ("blocked using spam pattern" is spam, not a block list).
_STRONG: dict[Reason, re.Pattern[str]] = {
    Reason.TOO_LARGE: _words(
        r"too (?:large|big)",
        r"(?:message|mail) (?:size|length) (?:exceeds|limit|too)",
        r"max(?:imum)? (?:message )?size",
        r"(?<!mailbox )size (?:limit|exceeds)",
        r"message too long",
        r"recipsizelimit",  # Exchange's RESOLVER.RST.RecipSizeLimit
        r"exceeds? (?:the )?(?:max|maximum|fixed) (?:message )?size",
    ),
    Reason.MAILBOX_FULL: _words(
        r"quota",
        r"mail ?box (?:is |was )?full",
        r"full mail ?box",
        r"mail ?folder is full",
        r"(?:inbox|account|mailbox|casilla|buz[oó]n) (?:is |est[aá] )?(?:full|llen[oa])",
        r"mailbox lleno",
        r"(?:not enough|insufficient|no) (?:free )?(?:system |disk )?(?:storage|space)",
        r"enough (?:disk )?space",
        r"mail ?box (?:size|storage) (?:limit|exceeded)",
        r"mail ?box exceeds",
        r"mail ?box exceeded",
        r"exceeded (?:its |the |their |his |her )?(?:disk|storage|mailbox|quota)",
        r"too many messages (?:on|in) (?:the )?(?:server|mailbox)",
        r"zu ?viele mails",
        r"postfach (?:ist )?voll",
    ),
    Reason.AUTH_FAILURE: _words(
        r"\bspf\b",
        r"sender policy framework",
        r"\bdkim\b",
        r"\bdmarc\b",
        r"domainkeys",
        r"unauthenticated (?:e?mail|sender)",
    ),
    Reason.BLOCKED: _words(
        r"block ?list",
        r"black ?list",
        r"deny ?list",
        r"\b(?:dns)?rbl\b",
        r"dnsbl",
        r"spamhaus",
        r"spamcop",
        r"\bsorbs\b",
        r"barracudacentral",
        r"(?<!not )listed (?:at|on|in|by) "
        r"(?!(?:the |our |public )?(?:domino|name|address|directory|user))",
        r"(?:ip|sender|client|connection|server)\b[^.;]{0,40}\bblocked",
        r"reverse (?:dns|lookup|hostname)",
        r"\bptr\b",
        r"\brdns\b",
        r"client host (?:\[[^\]]*\] )?rejected",
        r"reputation",
        r"rate limit",
        r"too many (?:connections|messages|recipients|e?mails)",
        r"sender (?:address |domain )?(?:is )?blocked",
        r"senderblock",
    ),
    Reason.SPAM: _words(
        r"spam(?!haus|cop)",
        r"\bjunk\b",
        r"junk ?e?mail ?filter",
        r"unsolicited",
        r"\bbulk (?:e?mail|mail)",
        r"mass ?mail",
        r"virus",
        r"malware",
        r"infected",
        r"content (?:rejected|filter|policy|not accepted)",
        r"suspicious",
        r"phishing",
        r"\buribl\b",
        r"\bsurbl\b",
        r"\bubce?\b",
    ),
    Reason.POLICY: _words(
        r"attachment",
        r"mail delivery failed\.{3} user unknown",  # BIGLOBE: its users' filters refused it
        r"administrative(?:ly)? prohibit",
        r"whitelist",
        r"rejected by (?:the )?(?:recipient'?s? )?polic",
    ),
    Reason.EXPIRED: _words(
        r"retry (?:time(?:out)?|period) (?:not reached|exceeded|expired)",
        r"retry timeout",
        r"failing for a long time",
        r"(?:gave|giving) up(?! on \d)",
        r"delivery time expired",
        r"queue\.expired",  # Exchange
        r"(?:message|mail) (?:has )?expired",
        r"could not be delivered (?:for|within|in) \d+",
        r"(?:time ?out|timed out)",
        r"too long in (?:the )?queue",
        r"connection (?:refused|reset|lost|dropped)",
        r"socket error",
    ),
    Reason.SUSPEND: _words(
        r"(?:account|mail ?box|user|address|recipient|casilla)\b[^.;]{0,40}\b"
        r"(?:disabled|deactivated|suspended|inactive|discontinued|frozen|locked)",
        r"\b(?:disabled|deactivated|suspended|inactive) (?:account|mail ?box|user|address)",
        r"ha expirado",
        r"expired (?:account|mailbox)",
        r"(?:account|mailbox) (?:has )?expired",
        r"\[suspend\]",
    ),
    Reason.HOST_UNKNOWN: _words(
        r"host (?:or domain name )?not found",
        r"dns lookup failure",  # DragonFly: "DNS lookup failure: host x not found"
        r"host [\w.-]+ not found",
        r"couldn'?t find any host",  # qmail
        r"mx records? points? to non-?existent hosts?",  # Exim
        r"non-?existent ?domain",  # Exchange's SMTPSEND.DNS.NonExistentDomain
        r"domain (?:name )?doesn'?t exist",  # au by KDDI: "the remote domain doesnt exist"
        r"host unknown",
        r"unknown host",
        r"no such (?:host|domain)",
        r"domain (?:name )?(?:not found|does not exist|unknown|is not valid|invalid)",
        r"unknown domain",
        r"name or service not known",
        r"name service error",
        r"\bnxdomain\b",
        r"no (?:mx|mail exchanger|mail server|dns)\b[^.;]{0,20}(?:record|host|for|found)",
        r"unrout(?:e)?able (?:mail )?(?:domain|address)",
        r"could not be resolved",
        r"domain (?:has )?no (?:mx|mail)",
        r"dns error",
        r"not a (?:valid|known) domain",
    ),
    Reason.USER_UNKNOWN: _words(
        r"user (?:is )?unknown",
        r"unknown (?:user|recipient|mailbox|address|local[- ]part|e-?mail address|account)",
        r"no such (?:user|mailbox|recipient|address|account|person|local user)",
        r"(?:user|mailbox|recipient|address|account|addressee)\b[^.;]{0,30}"
        r"(?:does not|doesn't|did not|not) exist",
        r"does not exist",
        r"doesn't have a [\w.-]+ account",
        r"not (?:a )?(?:known|valid|recognized) (?:user|recipient|mailbox|address|e-?mail)",
        r"is not (?:a )?(?:known|valid) user",
        r"not an active address",
        r"invalid (?:recipient|mailbox|user|address|e-?mail)",
        r"mail ?box (?:not found|unknown|does not exist)",
        r"no (?:mail ?box|mail box)\b",
        r"(?:user|recipient|mailbox|address|account) not found",
        r"(?:user|recipient|address)\b[^;\n]{0,60}not listed",
        r"recipient (?:address )?rejected: (?:user unknown|access denied|nonexistent|unknown)",
        r"bad[_ ]?(?:recipient|address|destination)",
        r"badrcptto",
        r"recip(?:ient)?notfound",  # Exchange's RESOLVER.ADR.RecipNotFound
        r"addressee unknown",
        r"address unknown",
        r"non-?existent(?![\w-]*\.[a-z])",  # not inside a host name
        r"unknown or illegal",
        r"not our customer",
        r"address (?:is )?(?:no longer|not) (?:valid|in use)",
        r"destinatario (?:desconocido|inexistente)",
        r"usuario (?:desconocido|inexistente|no existe)",
        r"no existe",
        r"unbekannt",
        r"inconnu",
        r"sconosciuto",
        r"ディレクトリのリストにありません",  # Notes: not listed in the directory
        r"宛先(?:が)?(?:不明|見つかりません)",
    ),
    Reason.REJECTED: _words(
        r"relay(?:ing)? (?:access )?(?:denied|not permitted|prohibited)",
        r"not permitted to relay",
        r"unable to relay",
        r"\bas a relay\b",
        r"rcpthosts",
        r"not (?:a )?member of",  # a mailing list refusing a post (fml, Google Groups)
        r"are not member",
        r"permission to post",
    ),
}
_WEAK: dict[Reason, re.Pattern[str]] = {
    Reason.BLOCKED: _words(r"\bblocked\b", r"not allowed to send"),
    Reason.SPAM: _words(r"\bfiltered\b", r"\bcontent\b"),
    Reason.POLICY: _words(
        r"polic(?:y|ies)",
        r"not (?:accepting|authori[sz]ed|permitted|allowed)",
        r"prohibited",
        r"restricted",
        r"security",
    ),
    Reason.USER_UNKNOWN: _words(
        r"mail ?box (?:unavailable|not available|unknown)",
        r"recipient (?:address )?rejected",
        r"address rejected",
    ),
    Reason.REJECTED: _words(
        r"service (?:currently )?unavailable", r"rejected", r"refused", r"denied"
    ),
}
_NOT_ADDRESS = (
    Reason.TOO_LARGE,
    Reason.MAILBOX_FULL,
    Reason.AUTH_FAILURE,
    Reason.BLOCKED,
    Reason.SPAM,
    Reason.POLICY,
    Reason.EXPIRED,
)
_GROUPS = (
    _NOT_ADDRESS,
    (Reason.SUSPEND, Reason.HOST_UNKNOWN, Reason.USER_UNKNOWN),
    (Reason.REJECTED,),
)


def status_in_text(text: str) -> str:
    """The first 4.x.x or 5.x.x enhanced status in `text` ('' when there is none)."""
    for match in _STATUS_IN_TEXT.finditer(text):
        if match.group(1) != "2":
            return ".".join(match.groups())
        break  # a success status first: the text is about a delivery
    return ""


def is_specific(status: str) -> bool:
    """A status that names a cause: not empty and not a vague X.Y.0."""
    return bool(status) and not status.endswith(".0")


def reason_of_status(status: str) -> Reason | None:
    """What a specific enhanced status means on its own (None: it does not say)."""
    if not is_specific(status):
        return None
    _, subject, detail = status.split(".")
    return _DETAIL_REASONS.get(f"{subject}.{detail}") or _SUBJECT_REASONS.get(subject)


def reason_in_text(text: str, *, weak: bool = False) -> tuple[Reason, str] | None:
    """The reason whose strong (or, with `weak`, weak) words `text` contains, by the
    order of `_GROUPS`, with the words."""
    if not text:
        return None
    table = _WEAK if weak else _STRONG
    for group in _GROUPS:
        found: list[tuple[int, Reason, str]] = []
        for reason in group:
            pattern = table.get(reason)
            match = pattern.search(text) if pattern is not None else None
            if match:
                found.append((match.start(), reason, match.group(0)))
        if found:
            _, reason, words = min(found, key=lambda item: item[0])
            return reason, words
    return None


def says_why(text: str) -> bool:
    """Whether `text` names a status or words of any reason."""
    return bool(status_in_text(text)) or any(
        reason_in_text(text, weak=weak) is not None for weak in (False, True)
    )


def judge(
    status_field: str, diagnostic: str, context: str = "", *, failed: bool = True
) -> Judgement:
    """The reason for one recipient (the order in the module docstring), and its status:
    the most trusted one given, else the one its reason implies (`IMPLIED_STATUS`; a
    delayed recipient 4.0.0). `failed`: the recipient failed for good, not delayed."""
    found = _judge(status_field, diagnostic, context, failed=failed)
    if found.status:
        return found
    implied = IMPLIED_STATUS[found.reason] if failed else "4.0.0"
    return Judgement(found.reason, implied, f"{found.evidence}; status {implied} implied")


def _judge(status_field: str, diagnostic: str, context: str, *, failed: bool) -> Judgement:
    field = status_field if _STATUS_IN_TEXT.fullmatch(status_field or "") else ""
    in_diagnostic = status_in_text(diagnostic)
    status = (
        next((s for s in (in_diagnostic, field) if is_specific(s)), "") or field or (in_diagnostic)
    )
    temporary = status.startswith("4") or (not status and _reply_class(diagnostic) == "4")
    found = _first_reason(field, diagnostic, in_diagnostic, context)
    if found is not None:
        reason, evidence = found
        if temporary and failed and reason in ADDRESS_REASONS:
            # The server said "try again": no proof that the address is bad.
            return Judgement(Reason.EXPIRED, status, f"{Evidence.CLASS}: {status or '4xx'}")
        if (
            reason is Reason.USER_UNKNOWN
            and _FILTER_WORDS.search(evidence)
            and _AFTER_DATA.search(f"{diagnostic}\n{context}")
        ):
            return Judgement(Reason.POLICY, status, f"{evidence}, after DATA: a filter")
        return Judgement(reason, status, evidence)
    if temporary:
        return Judgement(_given_up(failed), status, f"{Evidence.CLASS}: {status or '4xx'}")
    if status.startswith("5") or _reply_class(diagnostic or context) == "5":
        return Judgement(Reason.REJECTED, status, f"{Evidence.CLASS}: {status or '5xx'}")
    return Judgement(Reason.UNKNOWN, status, str(Evidence.NOTHING))


def _first_reason(
    field: str, diagnostic: str, in_diagnostic: str, context: str
) -> tuple[Reason, str] | None:
    strong = reason_in_text(diagnostic)
    if strong is not None:
        return strong[0], f"{Evidence.DIAGNOSTIC_TEXT}: {strong[1]}"
    statuses = ((in_diagnostic, Evidence.DIAGNOSTIC_STATUS), (field, Evidence.STATUS_FIELD))
    for status, evidence in statuses:
        reason = reason_of_status(status)
        if reason is not None:
            return reason, f"{evidence}: {status}"
    weak = reason_in_text(diagnostic, weak=True)
    if weak is not None:
        return weak[0], f"{Evidence.DIAGNOSTIC_TEXT}: {weak[1]}"
    for in_context in (reason_in_text(context), reason_in_text(context, weak=True)):
        if in_context is not None:
            return in_context[0], f"{Evidence.CONTEXT_TEXT}: {in_context[1]}"
    return None


def _given_up(failed: bool) -> Reason:
    return Reason.EXPIRED if failed else Reason.UNKNOWN


def _reply_class(text: str) -> str:
    match = _REPLY_CODE.search(text)
    return match.group(1) if match else ""
