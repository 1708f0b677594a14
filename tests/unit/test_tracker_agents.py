"""Machine flagging: image proxies, Apple Mail Privacy Protection, scanners, HEAD; the
client address behind trusted proxies; the stored User-Agent."""

from __future__ import annotations

import pytest

from pigeon_tracker.agents import (
    MAX_USER_AGENT,
    Agent,
    agent_reason,
    clean_user_agent,
    client_ip,
    is_apple_address,
    machine_reason,
    read_agent,
)

PEOPLE = [
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"
    " Version/17.0 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like"
    " Gecko) Mobile/15E148",
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17029; Pro)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:115.0) Gecko/20100101 Thunderbird/115.5.0",
]


def _agent(text: str) -> Agent:
    return read_agent(text.encode())


@pytest.mark.parametrize("agent", PEOPLE)
def test_people_are_people(agent: str) -> None:
    assert agent_reason(agent) == ""
    assert machine_reason(_agent(agent), "198.51.100.7") == ""


@pytest.mark.parametrize(
    ("agent", "reason"),
    [
        (
            "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com"
            " GoogleImageProxy)",
            "proxy",
        ),
        ("YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html", "proxy"),
        ("Mozilla/5.0", "apple_mpp"),
        ("", "scanner"),
        ("curl/8.4.0", "scanner"),
        ("Wget/1.21.3", "scanner"),
        ("python-requests/2.31.0", "scanner"),
        ("Python-urllib/3.11", "scanner"),
        ("Go-http-client/1.1", "scanner"),
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "scanner"),
        ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", "scanner"),
        ("Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", "scanner"),
        ("facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", "scanner"),
        ("Mozilla/5.0 (Windows NT 6.1) SkypeUriPreview Preview/0.5", "scanner"),
        ("Microsoft Office Existence Discovery", "scanner"),
        ("Mozilla/4.0 (compatible; ms-office; MSOffice 16)", "scanner"),
        ("Barracuda Sentinel (EE)", "scanner"),
        ("Mimecast Security Scanner", "scanner"),
        ("Proofpoint URL Defense", "scanner"),
        ("Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/120.0.0.0 Safari/537.36", "scanner"),
        ("WhatsApp/2.23.20.0", "scanner"),
        ("Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)", "scanner"),
    ],
)
def test_machines_are_flagged(agent: str, reason: str) -> None:
    assert agent_reason(agent) == reason
    assert machine_reason(_agent(agent), None) == reason


def test_head_wins_and_apple_addresses_flag_a_browser_agent() -> None:
    assert machine_reason(_agent(PEOPLE[0]), None, head=True) == "head"
    assert machine_reason(_agent("curl/8"), None, head=True) == "head"
    assert machine_reason(_agent(PEOPLE[0]), "17.58.100.1") == "apple_mpp"
    assert machine_reason(_agent(PEOPLE[0]), "::ffff:17.1.2.3") == "apple_mpp"
    assert machine_reason(_agent(PEOPLE[0]), "170.1.2.3") == ""
    assert machine_reason(_agent(PEOPLE[0]), "2001:db8::17") == ""
    assert not is_apple_address(None)
    assert not is_apple_address("17.1.2")


def test_client_address_counts_trusted_proxies_from_the_right() -> None:
    assert client_ip("10.0.0.1", "17.0.0.1", 0) == "10.0.0.1"  # nothing trusted
    assert client_ip("10.0.0.1", None, 1) == "10.0.0.1"
    assert client_ip("10.0.0.1", "198.51.100.7", 1) == "198.51.100.7"
    # The client may send its own X-Forwarded-For: only what our proxies added counts.
    assert client_ip("10.0.0.1", "17.0.0.1, 198.51.100.7", 1) == "198.51.100.7"
    assert client_ip("10.0.0.1", "17.0.0.1, 198.51.100.7, 203.0.113.9", 2) == "198.51.100.7"
    assert client_ip("10.0.0.1", "198.51.100.7", 3) == "198.51.100.7"
    assert client_ip(None, " , ", 1) is None


def test_stored_agent_is_cleaned_and_cut() -> None:
    assert clean_user_agent(b"Mozilla/5.0\r\nX-Evil: 1\x00\x7f") == "Mozilla/5.0X-Evil: 1"
    assert clean_user_agent("Zoë\u0085Browser".encode()) == "ZoëBrowser"
    assert clean_user_agent(b"\xff\xfe ok") == "\ufffd\ufffd ok"
    assert len(clean_user_agent(b"a" * 1000)) == MAX_USER_AGENT
