"""What a template means: Markdown before personalization, links, pixel and footer."""

from __future__ import annotations

import re
from typing import Any

import pytest

from pigeon_common.render import compile_campaign, render_exact
from tests.unit.render.helpers import BASE, SIGNER, campaign, parse, recipient


def _render(markdown: str, name: str = "Ada", base: str | None = BASE, **attributes: Any):
    spec = campaign(markdown, public_base_url=base)
    compiled = compile_campaign(spec, SIGNER)
    message = compiled.render(recipient(name, **attributes), nonce="n0")
    exact = render_exact(spec, SIGNER, recipient(name, **attributes), nonce="n0")
    assert (message.html, message.text) == (exact.html, exact.text)
    return compiled, message


@pytest.mark.parametrize(
    "value",
    [
        "[x](http://evil.example)",
        "<b>bold</b>",
        "<script>alert(1)</script>",
        "**not bold**",
        "# no heading",
        "&lt;",
    ],
)
def test_values_are_text_never_markdown_or_html(value: str) -> None:
    _, message = _render("Hello {{ recipient.name }}!\n\n# {{ recipient.name }}", name=value)
    body = message.html.split("<body>")[1]
    assert (
        "<b>" not in body
        and "<script>" not in body
        and "evil" not in re.findall(r'href="([^"]*)"', body)
    )
    assert "<strong>not" not in body and "<h1>#" not in body.replace("<h1># no", "x")
    escaped = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert f"Hello {escaped}!" in body
    assert f"Hello {value}!" in message.text


def test_markdown_is_converted_once_around_slots() -> None:
    _, message = _render(
        "# Hi {{ recipient.name }}\n\n*{{ recipient.city }}* and ~~old~~\n\n"
        "| a | b |\n|---|---|\n| 1 | 2 |",
        city="Oslo",
    )
    assert "<h1>Hi Ada</h1>" in message.html
    assert "<em>Oslo</em>" in message.html and "<s>old</s>" in message.html
    assert "<table>" in message.html


def test_attribute_values_with_jinja_are_not_evaluated() -> None:
    _, message = _render(
        "{{ recipient.note }}", note="{{ recipient.email }} {% if 1 %}x{% endif %}"
    )
    assert "{{ recipient.email }} {% if 1 %}x{% endif %}" in message.text


def test_statements_wrap_whole_blocks() -> None:
    markdown = "Intro\n{% if recipient.vip %}\n## VIP corner\n\nThanks, *VIP*.\n{% endif %}\nOutro"
    _, vip = _render(markdown, vip=True)
    _, plain = _render(markdown, vip=False)
    assert "<h2>VIP corner</h2>" in vip.html and "<em>VIP</em>" in vip.html
    assert "VIP" not in plain.html and "<p></p>" not in plain.html
    assert plain.text.startswith("Intro\n\nOutro")


def test_inline_statement_stays_in_its_paragraph() -> None:
    _, message = _render("Hello {% if recipient.vip %}dear {% endif %}friend", vip=False)
    assert "<p>Hello friend</p>" in message.html
    assert message.text.startswith("Hello friend\n")


def test_loop_around_a_list_repeats_items() -> None:
    markdown = "Topics:\n\n{% for t in recipient.topics %}\n- {{ t }}\n{% endfor %}\n\nEnd"
    compiled, message = _render(markdown, topics=["a", "b", "c"])
    assert message.html.count("<ul>") == 1 and message.html.count("<li>") == 3
    assert "  * a\n  * b\n  * c" in message.text
    assert compiled.text_compiled


def test_raw_block_stays_literal() -> None:
    _, message = _render("{% raw %}{{ recipient.name }}{% endraw %} and {{ recipient.name }}")
    assert "{{ recipient.name }} and Ada" in message.text


def test_static_links_rewritten_and_registered() -> None:
    markdown = (
        "[a](https://example.com/a?x=1&y=2) [b](https://example.com/b) [a again](https://example.com/a?x=1&y=2)"
        " [mail](mailto:x@example.com) [top](#top) [rel](/relative)"
        " [mine]({{ recipient.site }}) [tracked]({{ track_url('https://shop.example.com/') }})"
    )
    compiled, message = _render(markdown, site="https://ada.example/")
    assert compiled.links == [
        "https://example.com/a?x=1&y=2",
        "https://example.com/b",
        "https://shop.example.com/",
    ]
    hrefs = re.findall(r'href="([^"]*)"', message.html)
    clicks = [h for h in hrefs if h.startswith(f"{BASE}/campaigns/t/")]
    assert len(clicks) == 4
    assert clicks[0] == clicks[2]
    assert "mailto:x@example.com" in hrefs and "#top" in hrefs and "/relative" in hrefs
    assert "https://ada.example/" in hrefs
    link_tokens = [c.split("/r/")[1].rstrip("/") for c in clicks]
    rid = recipient("Ada", site="https://ada.example/").recipient_id
    assert [SIGNER.read_link_token(campaign().campaign_id, rid, t) for t in link_tokens] == [
        0,
        1,
        0,
        2,
    ]
    assert f"[b]({clicks[1]})" in message.text


def test_no_tracking_keeps_links_and_adds_nothing() -> None:
    compiled, message = _render(
        "[a](https://example.com/a) {{ track_url('https://example.com/t') }}", base=None
    )
    assert compiled.links == ["https://example.com/a", "https://example.com/t"]
    assert (
        'href="https://example.com/a"' in message.html and "https://example.com/t" in message.html
    )
    assert "<img" not in message.html and "Unsubscribe" not in message.html
    assert (
        "List-Unsubscribe" not in message.headers and "List-Unsubscribe-Post" not in message.headers
    )
    assert b"List-Unsubscribe" not in message.raw


def test_pixel_and_footer_added_once() -> None:
    _, message = _render("Hello")
    assert message.html.count("/campaigns/o/") == 1 and message.html.count("/campaigns/unsub/") == 1
    assert (
        message.html.index("/campaigns/unsub/")
        < message.html.index("/campaigns/o/")
        < message.html.index("</body>")
    )
    assert "[Unsubscribe](https://t.example.com/campaigns/unsub/" in message.text
    assert "/campaigns/o/" not in message.text


def test_pixel_and_footer_not_added_when_template_has_them() -> None:
    markdown = "Hi\n\n[Leave]({{ unsubscribe_url }}) {{ tracking_pixel }}"
    _, message = _render(markdown)
    assert message.html.count("/campaigns/o/") == 1 and message.html.count("/campaigns/unsub/") == 1
    assert "want these emails" not in message.html
    _, message = _render('Hi <img src="{{ open_url }}" alt="">')
    assert message.html.count("/campaigns/o/") == 1


def test_full_html_document_gets_footer_before_body_end() -> None:
    _, message = _render("<html><body>\n<p>Designed</p>\n</body></html>")
    assert message.html.count("<body>") == 1
    assert re.search(r"Unsubscribe.*/campaigns/o/.*</body></html>", message.html, re.S)


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "  JavaScript:alert(1)", "data:text/html,x"]
)
def test_data_cannot_bring_a_script_url(url: str) -> None:
    _, message = _render("[x]({{ recipient.site }})", site=url)
    hrefs = re.findall(r'href="([^"]*)"', message.html)
    assert not any(h.lower().lstrip().startswith(("javascript:", "data:")) for h in hrefs)


def test_context_variables() -> None:
    markdown = (
        "{{ campaign.name }}|{{ campaign.id }}|{{ recipient.email }}|{{ recipient.id }}"
        "|{{ message.id }}|{{ public_base_url }}|{{ recipient.items }}"
        "|{{ recipient.attributes.items }}"
    )
    _, message = _render(markdown, items="data wins")
    line = parse(message).text.splitlines()[0]
    assert line.split("|")[:3] == ["Spring news", str(campaign().campaign_id), "ada@example.org"]
    assert line.split("|")[4] == message.message_id and line.split("|")[5] == BASE
    assert line.endswith("|data wins|data wins")
