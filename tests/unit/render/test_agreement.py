"""The fast path agrees with the exact path and with the standard library's parser.

Many recipients with hostile data (line breaks in names, markup, Markdown syntax,
non-ASCII, emoji, very long values, Jinja in attribute values, odd whitespace) go
through both paths; headers, decoded text and decoded HTML must be the same, and
the stdlib must read each fast-path message back to what `RenderedMessage` claims.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime

import pytest

from pigeon_common.render import RecipientSpec, compile_campaign, render_exact
from tests.unit.render.helpers import SIGNER, campaign, parse

TEMPLATE = """# Hello {{ recipient.name }}!

Dear **{{ recipient.name }}**, from *{{ recipient.city }}*:
see [our site](https://example.com/?a=1&b=2)
or [your page](https://example.com/u/{{ recipient.slug }})
or [{{ recipient.name }}]({{ track_url('https://shop.example.com/') }}).

{% if recipient.vip %}
## VIP corner

You are a VIP, {{ recipient.name }}. {{ recipient.note }}
{% endif %}

{% for tag in recipient.tags %}
- tag {{ tag }} for {{ recipient.city }}
{% endfor %}

```
code: {{ recipient.note }}   keep   spaces
```

> quoted {{ recipient.city }} &amp; more

Bye {% for i in range(2) %}{{ i }}, {% endfor %}{{ recipient.name }} ({{ recipient.email }}).
{{ recipient.note }}
"""

NOW = datetime(2025, 11, 24, 9, 30, tzinfo=UTC)
HOSTILE = [
    "Ada",
    "",
    " ",
    "Bob\r\nBcc: victim@example.com",
    "Eve\nSubject: spam",
    "Mallory\u2028Line\u2029Para\x85Nel",
    "<script>alert(1)</script>",
    "[click](http://evil.example) **bold** _x_ `code`",
    "# Heading\n- item\n1. one",
    "Zoë Ünïcødé",
    "李小龍",
    "🎉 Party 👩‍👩‍👧 time",
    "x" * 2000,
    ("long words " * 300).strip(),
    "{{ recipient.email }} {% if 1 %}jinja{% endif %}",
    "Tab\there  and  double  spaces ",
    "\u00a0nbsp\u00a0inside\u00a0",
    "a=b=c =3D ==",
    'O\'Brien, "The" <Boss> (Jr.); x@y',
    "trailing spaces   ",
    "ctrl\x00\x01\x07\x1b\x7f chars",
    "&lt;already escaped&gt; &amp;",
    'back\\slash \\" quote',
    "  leading",
    ". dot at start",
    "lone \ud800 surrogate",
]


def _hostile(rng: random.Random, index: int) -> RecipientSpec:
    def pick() -> str:
        return rng.choice(HOSTILE)

    return RecipientSpec(
        recipient_id=uuid.UUID(int=rng.getrandbits(128)),
        email=f"user{index}@example.org",
        name=pick(),
        attributes={
            "city": pick(),
            "slug": pick(),
            "note": pick(),
            "vip": rng.random() < 0.5,
            "tags": [pick() for _ in range(rng.randint(0, 3))],
        },
    )


def _same_headers(left: dict[str, str], right: dict[str, str]) -> bool:
    """Equal headers; To only up to whitespace (see below).

    A display name too long for one RFC 2047 word is split over several. Mail programs
    ignore the folding between them; Python's parser reads a space there, and the
    standard library's writer (the exact path) splits differently, so the two paths
    and the parser agree on such a name only up to whitespace (headers.py).
    """
    if left.keys() != right.keys():
        return False
    return all(
        "".join(value.split()) == "".join(right[name].split())
        if name == "To"
        else value == right[name]
        for name, value in left.items()
    )


def _check_raw(raw: bytes) -> None:
    assert raw.isascii()
    assert (
        b"\r\n" in raw
        and b"\n" not in raw.replace(b"\r\n", b"")
        and b"\r" not in raw.replace(b"\r\n", b"")
    )
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    head = raw.split(b"\r\n\r\n", 1)[0]
    for line in head.split(b"\r\n"):
        if not line.startswith((b"Message-ID:", b"List-Unsubscribe:")):
            assert len(line) <= 78, line


@pytest.mark.parametrize("base", ["https://t.example.com", None])
def test_fast_and_exact_agree_on_hostile_data(base: str | None) -> None:
    spec = campaign(
        TEMPLATE,
        public_base_url=base,
        subject="{{ recipient.name }} — news from {{ recipient.city }}",
    )
    compiled = compile_campaign(spec, SIGNER)
    assert compiled.text_compiled
    rng = random.Random(1234)
    for index in range(50):
        person = _hostile(rng, index)
        nonce = f"n{index}"
        fast = compiled.render(person, nonce=nonce, now=NOW)
        exact = render_exact(spec, SIGNER, person, nonce=nonce, now=NOW)
        assert fast.message_id == exact.message_id
        assert fast.subject == exact.subject
        assert _same_headers(fast.headers, exact.headers)
        assert fast.html == exact.html
        assert fast.text == exact.text, (person.name, person.attributes)

        read_fast, read_exact = parse(fast), parse(exact)
        assert _same_headers(read_fast.headers, fast.headers)
        # The standard library misfolds some long subjects it writes (an extra space).
        assert {k: " ".join(v.split()) for k, v in read_exact.headers.items()} == {
            k: " ".join(v.split()) for k, v in exact.headers.items()
        }
        assert (read_fast.text, read_fast.html) == (fast.text, fast.html)
        assert (read_exact.text, read_exact.html) == (exact.text, exact.html)
        for fast_part, exact_part in zip(read_fast.parts, read_exact.parts, strict=True):
            assert dict(fast_part.items()) == dict(exact_part.items())
        _check_raw(fast.raw)


def test_fast_and_exact_agree_on_plain_recipients() -> None:
    spec = campaign(TEMPLATE)
    compiled = compile_campaign(spec, SIGNER)
    for index in range(50):
        person = RecipientSpec(
            uuid.uuid4(),
            f"p{index}@example.org",
            f"Person {index}",
            {
                "city": "Oslo",
                "slug": f"p{index}",
                "note": "Note.",
                "vip": index % 2 == 0,
                "tags": ["a", "b"],
            },
        )
        fast = compiled.render(person, nonce="abc", now=NOW)
        exact = render_exact(spec, SIGNER, person, nonce="abc", now=NOW)
        assert (fast.headers, fast.html, fast.text) == (exact.headers, exact.html, exact.text)
