"""Who fetched a tracking URL: a person, or a machine acting for (or instead of) one.

Pure functions, no I/O. Mail providers fetch images through proxies, Apple Mail Privacy
Protection fetches every image on delivery, and security gateways, link scanners and chat
apps unfurling links follow URLs nobody clicked. Those fetches are still recorded, with
`machine` set and a `MachineReason`; the read model adds the fetch-within-seconds-of-sending
rule on top.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from pigeon_common.events import MachineReason
from pigeon_tracker.envelopes import json_string

MAX_USER_AGENT = 300

# Image proxies of webmail providers: they fetch when the person opens the message,
# but from the provider's servers, so the fetch says nothing about the reader's client.
_PROXY = re.compile(r"googleimageproxy|ggpht\.com|yahoomailproxy|imageproxy|mailproxy", re.I)

# Apple Mail Privacy Protection fetches with nothing but this (and from Apple's 17/8).
_APPLE_MPP_AGENT = "Mozilla/5.0"
_APPLE_IPV4_PREFIX = "17."
_IPV4_MAPPED_PREFIX = "::ffff:"

# Link scanners, security gateways, previews and scripts.
_SCANNER = re.compile(
    r"bot\b|bot[/_-]|crawl|spider|slurp|preview|scanner|headless|phantomjs"
    r"|curl/|wget/|python|aiohttp|httpx|go-http-client|java/|okhttp|libwww|perl|ruby|php/"
    r"|axios|node-fetch|undici|postman"
    r"|barracuda|mimecast|proofpoint|messagelabs|symantec|trend ?micro|forcepoint|sophos"
    r"|fortinet|fortiguard|ironport|zscaler|safelinks|safe links|cisco"
    r"|existence discovery|ms-office|msoffice|microsoft-webdav"
    r"|facebookexternalhit|whatsapp|skypeuripreview|embedly|iframely|vkshare",
    re.I,
)

# Control characters (C0, DEL, C1) never reach an event: they carry no meaning in an agent
# string and would only make logs and pages harder to read.
_CONTROL = dict.fromkeys([*range(0x20), *range(0x7F, 0xA0)])


def clean_user_agent(raw: bytes) -> str:
    """The User-Agent as stored: decoded, control characters removed, at most 300 chars."""
    return raw.decode("utf-8", "replace").translate(_CONTROL).strip()[:MAX_USER_AGENT]


def agent_reason(user_agent: str) -> MachineReason:
    """Why this agent string is a machine's ("" for what looks like a person's client)."""
    if not user_agent:
        return "scanner"
    if _PROXY.search(user_agent):
        return "proxy"
    if user_agent == _APPLE_MPP_AGENT:
        return "apple_mpp"
    if _SCANNER.search(user_agent):
        return "scanner"
    return ""


def is_apple_address(ip: str | None) -> bool:
    """True for an IPv4 address in Apple's 17.0.0.0/8 (also written IPv4-mapped)."""
    if not ip:
        return False
    if ip.startswith(_IPV4_MAPPED_PREFIX):
        ip = ip[len(_IPV4_MAPPED_PREFIX) :]
    return ip.startswith(_APPLE_IPV4_PREFIX) and ip.count(".") == 3


@dataclass(frozen=True, slots=True)
class Agent:
    """A request's User-Agent as stored, as a JSON literal, and what it says."""

    text: str
    json: str
    reason: MachineReason


@functools.lru_cache(maxsize=4096)
def read_agent(raw: bytes) -> Agent:
    """The agent of a raw header; cached, since the same few agents make most requests."""
    text = clean_user_agent(raw)
    return Agent(text, json_string(text), agent_reason(text))


def client_ip(peer: str | None, forwarded_for: str | None, trusted_proxies: int) -> str | None:
    """The client's address: the peer, or with `trusted_proxies` proxies in front the entry
    of X-Forwarded-For they vouch for, counted from the right (entries further left can be
    anything the client wrote). A chain shorter than expected yields its leftmost entry."""
    if trusted_proxies <= 0 or not forwarded_for:
        return peer
    hops = [part.strip() for part in forwarded_for.split(",") if part.strip()]
    if not hops:
        return peer
    return hops[-trusted_proxies] if len(hops) >= trusted_proxies else hops[0]


def machine_reason(agent: Agent, ip: str | None, *, head: bool = False) -> MachineReason:
    """The machine reason of one request; HEAD first (no person's browser sends one to a
    link), then the agent, then Apple's address range (`ip` is only read then, so a
    caller may pass None when the agent already decides)."""
    if head:
        return "head"
    if agent.reason:
        return agent.reason
    return "apple_mpp" if is_apple_address(ip) else ""
