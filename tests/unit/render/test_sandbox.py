"""Template escapes and runaway templates are refused with a TemplateError (invariant 6)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from pigeon_common.render import TemplateError, compile_campaign, dry_run, render_exact
from tests.unit.render.helpers import SIGNER, campaign, recipient


def _render_body(markdown: str, **attributes: Any) -> str:
    compiled = compile_campaign(campaign(markdown), SIGNER)
    return compiled.render(recipient(**attributes)).html


def _refusal(markdown: str, **attributes: Any) -> TemplateError:
    with pytest.raises(TemplateError) as caught:
        _render_body(markdown, **attributes)
    assert caught.value.field == "template_markdown"
    return caught.value


@pytest.mark.parametrize(
    "markdown",
    [
        "{{ ''.__class__ }}",
        "{{ recipient.name.__class__.__mro__ }}",
        "{{ recipient|attr('__class__') }}",
        "{{ recipient['__class__'] }}",
    ],
)
def test_private_attributes_refused_at_compile_time(markdown: str) -> None:
    with pytest.raises(TemplateError) as caught:
        compile_campaign(campaign("Hi\n\n" + markdown), SIGNER)
    assert "access to '__" in caught.value.message and "is not allowed" in caught.value.message
    assert caught.value.line == 3


@pytest.mark.parametrize(
    "markdown",
    [
        "{{ '{0.__class__}'.format(recipient.name) }}",
        "{{ recipient.name|attr(recipient.key) }}",
        "{% set n = '__cla' ~ 'ss__' %}{{ recipient.name|attr(n) }}",
    ],
)
def test_private_attributes_refused_at_render_time(markdown: str) -> None:
    error = _refusal(markdown, key="__class__")
    assert error.message == "access to '__class__' is not allowed"


def test_range_limit() -> None:
    assert "range too large" in _refusal("{{ range(10**9)|list }}").message


@pytest.mark.parametrize(
    ("markdown", "words"),
    [
        ("{{ 'x' * 10**9 }}", "larger than"),
        ("{{ 10 ** 100000 }}", "number too large"),
        ("{{ 'x'|center(10**9) }}", "number too large"),
        ("{{ 'x'.ljust(10**9) }}", "number too large"),
        ("{{ '%0999999999d' % 1 }}", "number too large"),
        ("{{ '{:>999999999}'.format(1) }}", "number too large"),
        ("{% set a = 'x' * 1000000 %}{{ a|replace('x', a) }}", "replace would build"),
        ("{% set s = ['y' * 1000000] %}{{ (s * 100)|join }}", "larger than"),
        (
            "{% set ns = namespace(x='ab') %}{% for i in range(40) %}"
            "{% set ns.x = ns.x ~ ns.x %}{% endfor %}{{ ns.x|length }}",
            "larger than",
        ),
        ("{% for i in range(100000) %}{{ 'x' * 100 }}{% endfor %}", "output larger than"),
    ],
)
def test_size_limits(markdown: str, words: str) -> None:
    assert words in _refusal(markdown).message


LONG_LOOP = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"


def test_time_limit_stops_a_long_loop() -> None:
    started = time.monotonic()
    with pytest.raises(TemplateError) as caught:
        compile_campaign(campaign(subject=LONG_LOOP), SIGNER).render(recipient())
    assert caught.value.message == "template ran longer than 1 s"
    with pytest.raises(TemplateError) as caught:
        render_exact(campaign(LONG_LOOP), SIGNER, recipient())
    assert caught.value.message == "template ran longer than 1 s"
    # The fast path's body may stop at the output limit first (it marks loop stretches).
    error = _refusal(LONG_LOOP)
    assert error.message in (
        "template ran longer than 1 s",
        "output larger than 2000000 characters",
    )
    assert time.monotonic() - started < 15


def test_runaway_recursion_refused() -> None:
    error = _refusal("{% macro m(n) %}{{ m(n) }}{% endmacro %}{{ m(1) }}")
    assert "recursion" in error.message


def test_data_cannot_be_changed() -> None:
    with pytest.raises(TemplateError):
        _render_body("{{ recipient.tags.append('x') }}", tags=["a"])


def test_include_refused() -> None:
    with pytest.raises(TemplateError, match="include, extends and import"):
        compile_campaign(campaign("{% include 'secrets.txt' %}"), SIGNER)


@pytest.mark.parametrize(
    ("markdown", "name", "line"),
    [
        ("Hi {{ recipient.citty }}", "recipient.citty", 1),
        ("Hi\n\n**{{ recipient.attributes.zip }}**", "recipient.attributes.zip", 3),
        ("{% if recipient.vip %}\n\n{{ nickname }}\n\n{% endif %}", "nickname", 3),
        ("Dear {{ campaign.owner }}", "campaign.owner", 1),
        ("{{ recipient.address.zip }}", "recipient.address.zip", 1),
    ],
)
def test_undefined_variable_named_with_line(markdown: str, name: str, line: int) -> None:
    error = _refusal(markdown, city="Paris", vip=True, address={"street": "Rue 1"})
    assert error.message == f"undefined variable '{name}'"
    assert error.line == line
    assert f"undefined variable '{name}'" in str(error)


def test_undefined_in_subject() -> None:
    with pytest.raises(TemplateError) as caught:
        compile_campaign(campaign(subject="Hi {{ recipient.nick }}"), SIGNER).render(recipient())
    assert caught.value.field == "subject"
    assert caught.value.message == "undefined variable 'recipient.nick'"
    assert caught.value.line == 1


def test_syntax_error_at_compile_time_with_line() -> None:
    with pytest.raises(TemplateError) as caught:
        compile_campaign(campaign("Hello\n\n{% if recipient.vip %}\nno end"), SIGNER)
    assert caught.value.field == "template_markdown"
    assert caught.value.line is not None
    with pytest.raises(TemplateError) as caught:
        compile_campaign(campaign(subject="{{ recipient.name "), SIGNER)
    assert caught.value.field == "subject"


def test_dry_run_names_first_problem_and_recipient() -> None:
    spec = campaign("Hello {{ recipient.city }}")
    people = [recipient(city="Oslo"), recipient(email_address="bob@example.org")]
    with pytest.raises(TemplateError) as caught:
        dry_run(compile_campaign(spec, SIGNER), people)
    assert caught.value.recipient == "bob@example.org"
    assert caught.value.message == "undefined variable 'recipient.city'"
    assert len(dry_run(compile_campaign(spec, SIGNER), people[:1])) == 1


def test_track_url_of_unregistered_link_refused() -> None:
    error = _refusal("[x]({{ track_url(recipient.site) }})", site="https://evil.example")
    assert "not a registered link" in error.message
    with pytest.raises(TemplateError, match="absolute http"):
        compile_campaign(campaign("{{ track_url('javascript:alert(1)') }}"), SIGNER)
