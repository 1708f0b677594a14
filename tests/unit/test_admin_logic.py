"""The admin's pure parts: CSRF tokens, paging links, the chart geometry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pigeon_api.admin.charts import HEIGHT, PAD, cumulative_chart
from pigeon_api.admin.paging import PAGE_SIZE, page_number, pager
from pigeon_api.admin.security import csrf_keys, csrf_ok, csrf_token


def test_csrf_token_is_bound_to_its_cookie_and_key() -> None:
    key = csrf_keys([b"secret"])
    token = csrf_token(key, "cookie-a")
    assert csrf_ok(key, "cookie-a", token)
    assert not csrf_ok(key, "cookie-b", token)
    assert not csrf_ok(csrf_keys([b"other"]), "cookie-a", token)
    assert not csrf_ok(key, "cookie-a", None)
    assert not csrf_ok(key, None, token)
    assert not csrf_ok(key, "cookie-a", "")


def test_a_form_signed_before_a_rotation_is_still_accepted() -> None:
    before = csrf_token(csrf_keys([b"old secret"]), "cookie-a")
    rotated = csrf_keys([b"new secret", b"old secret"])
    assert csrf_ok(rotated, "cookie-a", before)
    assert csrf_token(rotated, "cookie-a") == csrf_token(csrf_keys([b"new secret"]), "cookie-a")
    assert csrf_token(rotated, "cookie-a") != before
    assert not csrf_ok(csrf_keys([b"new secret"]), "cookie-a", before)  # once it is dropped
    assert not csrf_ok(rotated, "cookie-a", csrf_token(csrf_keys([b"unknown"]), "cookie-a"))


def test_pager_keeps_filters_and_clamps() -> None:
    pages = pager("/admin/campaigns", 2, PAGE_SIZE * 2 + 1, {"q": "a b", "status": None})
    assert (pages.page, pages.pages, pages.offset) == (2, 3, PAGE_SIZE)
    assert pages.prev_url == "/admin/campaigns?q=a+b&page=1"
    assert pages.next_url == "/admin/campaigns?q=a+b&page=3"
    assert pager("/x", 99, 0, {}).page == 1
    assert page_number("-3") == 1 and page_number("x") == 1 and page_number(None) == 1


def test_chart_is_cumulative_and_scaled_to_the_peak() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    hours = [start + timedelta(hours=i) for i in range(3)]
    chart = cumulative_chart(hours, {"a": [1, 0, 3], "b": [0, 1, 0]}, {"a": "s-a"})
    a, b = chart.series
    assert (a.total, b.total, chart.peak) == (4, 1, 4)
    last_y = float(a.points.split()[-1].split(",")[1])
    assert last_y == PAD  # the largest total reaches the top
    assert float(b.points.split()[0].split(",")[1]) == HEIGHT - PAD
    assert (chart.first, chart.last) == (hours[0], hours[-1])
    assert cumulative_chart([], {}, {}).first is None
