"""The web admin in a real Chromium (Debian's, through Playwright): sign-in, every page
readable, accessible (axe: no serious or critical violation), XSS payloads inert, CSRF
and sessions enforced.

Data is made through the REST API of the test stack (API + projector on loopback); the
mailbox points at 127.0.0.1 and no sender or imap-sync runs, so nothing connects out.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, Page

from pigeon_api.admin.security import CONTENT_SECURITY_POLICY
from pigeon_testing.browser import screenshot
from pigeon_testing.stack import ADMIN_EMAIL, ADMIN_PASSWORD, Stack

# Each would run script or change the page if it were not escaped.
XSS = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>"\'&'
BLOCKING_IMPACTS = {"serious", "critical"}


def _mailbox(name: str) -> dict[str, Any]:
    server = {"host": "127.0.0.1", "port": 9, "security": "plain", "username": "u"}
    return {
        "name": name,
        "from_name": "Ann",
        "from_address": "ann@example.com",
        "smtp": {**server, "password": "smtp-secret-never-shown"},
        "imap": {**server, "password": "imap-secret-never-shown"},
        "sent_folder": "Sent",
        "bounce_folder": "Bounces",
    }


async def _post(stack: Stack, path: str, body: dict[str, Any]) -> dict[str, Any]:
    assert stack.client is not None
    response = await stack.client.post(f"/api/v1{path}", json=body)
    assert response.status_code in (200, 201), response.text
    result: dict[str, Any] = response.json()
    return result


@pytest.fixture(scope="module")
async def data(stack: Stack) -> dict[str, Any]:
    """A mailbox, a campaign and recipients whose every text field is an XSS payload."""
    mailbox = await _post(stack, "/mailboxes", _mailbox(f"Box {XSS}"))
    campaign = await _post(
        stack,
        "/campaigns",
        {
            "name": f"Launch {XSS}",
            "subject": "Hello there",
            "template_markdown": "# Hi {{ recipient.name }}\n\n[site](https://example.org/)",
            "mailbox_id": mailbox["id"],
        },
    )
    people = [
        {"email": f"p{i}@example.org", "name": f"P{i} {XSS}", "attributes": {"note": XSS}}
        for i in range(3)
    ]
    await _post(stack, f"/campaigns/{campaign['id']}/recipients/bulk", {"recipients": people})
    recipients = await stack.client.get(f"/api/v1/campaigns/{campaign['id']}/recipients")  # type: ignore[union-attr]
    return {
        "mailbox": mailbox,
        "campaign": campaign,
        "recipient": recipients.json()["data"][0],
    }


async def sign_in(page: Page, base_url: str, email: str, password: str) -> None:
    await page.goto(f"{base_url}/admin/login")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(re.compile(r"/admin/$"))


async def _check_page(page: Page, name: str) -> None:
    """The page is accessible, nothing injected ran, and it is saved as an artefact."""
    await screenshot(page, f"admin {name}")
    results = await Axe().run(page)
    blocking = [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v["impact"] in BLOCKING_IMPACTS
    ]
    assert not blocking, f"{name}: {blocking}"
    assert await page.evaluate("window.pwned") is None, f"{name}: injected script ran"
    assert await page.locator("img[src=x]").count() == 0, f"{name}: injected markup"


async def test_signed_out_visitor_is_sent_to_sign_in(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.base_url) as client:
        response = await client.get("/admin/campaigns")
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/login?next=/admin/campaigns"


async def test_every_page_is_accessible_and_shows_payloads_as_text(
    stack: Stack, data: dict[str, Any], page: Page
) -> None:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    await page.goto(f"{stack.base_url}/admin/login")
    await _check_page(page, "sign in")
    await sign_in(page, stack.base_url, ADMIN_EMAIL, ADMIN_PASSWORD)
    campaign, mailbox = data["campaign"]["id"], data["mailbox"]["id"]
    recipient = data["recipient"]["id"]
    pages = {
        "dashboard": "/admin/",
        "campaigns": "/admin/campaigns",
        "campaign": f"/admin/campaigns/{campaign}",
        "recipients": f"/admin/campaigns/{campaign}/recipients",
        "recipients by state": f"/admin/campaigns/{campaign}/recipients?state=opened_human",
        "recipient story": f"/admin/campaigns/{campaign}/recipients/{recipient}",
        "replies": f"/admin/campaigns/{campaign}/replies",
        "mailboxes": "/admin/mailboxes",
        "mailbox": f"/admin/mailboxes/{mailbox}",
        "suppressions": "/admin/suppressions",
        "users": "/admin/users",
        "account": "/admin/account",
    }
    for name, path in pages.items():
        response = await page.goto(f"{stack.base_url}{path}")
        assert response is not None and response.status == 200, name
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
        await _check_page(page, name)
    # The payloads are on the pages as text.
    await page.goto(f"{stack.base_url}/admin/campaigns")
    assert XSS in await page.get_by_role("link", name=re.compile("Launch")).inner_text()
    await page.goto(f"{stack.base_url}/admin/campaigns/{campaign}/recipients/{recipient}")
    assert XSS in await page.locator("main").inner_text()
    await page.goto(f"{stack.base_url}/admin/mailboxes")
    assert XSS in await page.locator("main").inner_text()
    assert "secret-never-shown" not in await page.content()
    assert not [e for e in errors if "Content Security Policy" in e], errors


async def test_phone_width_has_no_horizontal_page_scroll(
    stack: Stack, data: dict[str, Any], browser: Browser
) -> None:
    context = await browser.new_context(viewport={"width": 375, "height": 740})
    try:
        page = await context.new_page()
        await sign_in(page, stack.base_url, ADMIN_EMAIL, ADMIN_PASSWORD)
        await page.goto(f"{stack.base_url}/admin/campaigns/{data['campaign']['id']}")
        await screenshot(page, "admin campaign phone")
        overflow = await page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 1
    finally:
        await context.close()


async def test_keyboard_reaches_the_skip_link_first(stack: Stack, page: Page) -> None:
    await sign_in(page, stack.base_url, ADMIN_EMAIL, ADMIN_PASSWORD)
    await page.keyboard.press("Tab")
    focused = await page.evaluate("document.activeElement.textContent")
    assert focused == "Skip to content"
    await page.keyboard.press("Enter")
    assert await page.evaluate("document.activeElement.id") == "main"


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert match is not None
    return match.group(1)


async def test_a_form_without_its_csrf_token_is_refused(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.base_url) as client:
        login = await client.get("/admin/login")
        form = {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        assert (await client.post("/admin/login", data=form)).status_code == 403
        wrong = {**form, "csrf": "0" * 64}
        assert (await client.post("/admin/login", data=wrong)).status_code == 403
        signed = await client.post("/admin/login", data={**form, "csrf": _csrf(login.text)})
        assert signed.status_code == 303
        account = await client.get("/admin/account")
        assert account.status_code == 200
        for path in ("/admin/logout", "/admin/account/tokens/rotate", "/admin/account/password"):
            refused = await client.post(path, data={})
            assert refused.status_code == 403, path
        # The session's token, not the pre-session one, is what the forms now carry.
        assert _csrf(account.text) != _csrf(login.text)
        assert (await client.get("/admin/account")).status_code == 200


async def test_a_password_change_ends_every_session(stack: Stack, browser: Browser) -> None:
    email, password = f"{uuid.uuid4().hex[:8]}@example.com", "first-password-1"
    await _post(stack, "/users", {"email": email, "password": password, "role": "member"})
    first, second = await browser.new_context(), await browser.new_context()
    try:
        one, two = await first.new_page(), await second.new_page()
        await sign_in(one, stack.base_url, email, password)
        await sign_in(two, stack.base_url, email, password)
        await one.goto(f"{stack.base_url}/admin/account")
        await one.get_by_label("Current password").fill(password)
        await one.get_by_label("New password").fill("second-password-2")
        await one.get_by_role("button", name="Change password").click()
        await one.wait_for_url(re.compile(r"/admin/login"))
        await two.goto(f"{stack.base_url}/admin/campaigns")
        assert "/admin/login" in two.url
        await one.goto(f"{stack.base_url}/admin/campaigns")
        assert "/admin/login" in one.url
        await sign_in(one, stack.base_url, email, "second-password-2")
        # A change through the REST API ends the admin sessions as well.
        token = (
            await stack.client.post(  # type: ignore[union-attr]
                "/api/v1/auth/token", json={"email": email, "password": "second-password-2"}
            )
        ).json()["token"]
        changed = await stack.client.post(  # type: ignore[union-attr]
            "/api/v1/users/me/password",
            json={"current_password": "second-password-2", "new_password": "third-password-3"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert changed.status_code == 200, changed.text
        await one.goto(f"{stack.base_url}/admin/campaigns")
        assert "/admin/login" in one.url
    finally:
        await first.close()
        await second.close()


async def test_logout_ends_the_session(stack: Stack, page: Page) -> None:
    await sign_in(page, stack.base_url, ADMIN_EMAIL, ADMIN_PASSWORD)
    cookies = await page.context.cookies()
    session = next(c for c in cookies if c["name"] == "pigeon_session")
    assert session["httpOnly"] and session["sameSite"] == "Lax"
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url(re.compile(r"/admin/login"))
    # The old cookie value is dead on the server too, not only forgotten by the browser.
    async with httpx.AsyncClient(
        base_url=stack.base_url, cookies={"pigeon_session": session["value"]}
    ) as client:
        assert (await client.get("/admin/campaigns")).status_code == 303


async def test_unknown_campaign_is_404(stack: Stack, page: Page) -> None:
    await sign_in(page, stack.base_url, ADMIN_EMAIL, ADMIN_PASSWORD)
    response = await page.goto(f"{stack.base_url}/admin/campaigns/{uuid.uuid4()}")
    assert response is not None and response.status == 404
    response = await page.goto(f"{stack.base_url}/admin/campaigns/not-a-uuid")
    assert response is not None and response.status == 404


async def _session_client(stack: Stack, email: str, password: str) -> tuple[httpx.AsyncClient, str]:
    """A signed-in admin session over plain HTTP and the CSRF token of its forms."""
    client = httpx.AsyncClient(base_url=stack.base_url)
    login = await client.get("/admin/login")
    form = {"email": email, "password": password, "csrf": _csrf(login.text)}
    assert (await client.post("/admin/login", data=form)).status_code == 303
    account = await client.get("/admin/account")
    return client, _csrf(account.text)


async def _user(stack: Stack, role: str) -> tuple[str, str]:
    email, password = f"{role}-{uuid.uuid4().hex[:8]}@example.com", "a-password-123"
    await _post(stack, "/users", {"email": email, "password": password, "role": role})
    return email, password


async def test_a_viewer_sees_no_action_and_every_action_url_refuses_it(
    stack: Stack, data: dict[str, Any]
) -> None:
    email, password = await _user(stack, "viewer")
    campaign, mailbox = data["campaign"]["id"], data["mailbox"]["id"]
    recipient = data["recipient"]["id"]
    assert stack.client is not None
    shared = await stack.client.post(f"/api/v1/campaigns/{campaign}/shares", json={"email": email})
    assert shared.status_code == 204, shared.text
    shared = await stack.client.post(f"/api/v1/mailboxes/{mailbox}/shares", json={"email": email})
    assert shared.status_code == 204, shared.text
    client, csrf = await _session_client(stack, email, password)
    try:
        for path in (
            f"/admin/campaigns/{campaign}",
            f"/admin/campaigns/{campaign}/recipients",
            f"/admin/campaigns/{campaign}/sharing",
            "/admin/campaigns",
            "/admin/mailboxes",
            "/admin/suppressions",
        ):
            page = await client.get(path)
            assert page.status_code == 200, path
            forms = re.findall(r'<form method="post" action="([^"]+)"', page.text)
            assert forms == ["/admin/logout"], (path, forms)
            assert "New campaign" not in page.text and "Send live" not in page.text
        refused = [f"/admin/campaigns/{campaign}/{op}" for op in (
            "edit", "dry-run", "test-send", "send", "schedule", "unschedule", "pause",
            "resume", "cancel", "clone", "delete", "shares", "recipients/add",
            "recipients/import", f"recipients/{recipient}/delete",
        )] + [f"/admin/mailboxes/{mailbox}/{op}" for op in (
            "edit", "test", "folders", "sync", "shares", "delete",
        )] + ["/admin/campaigns/new", "/admin/mailboxes/new", "/admin/users"]  # fmt: skip
        refused.append("/admin/suppressions")
        for path in refused:
            answer = await client.post(path, data={"csrf": csrf, "email": "x@example.org"})
            assert answer.status_code == 403, (path, answer.status_code)
        for path in (
            f"/admin/campaigns/{campaign}/preview",
            "/admin/campaigns/new",
            "/admin/users",
        ):
            assert (await client.get(path)).status_code == 403, path
    finally:
        await client.aclose()
    # Nothing changed: still a draft with its recipients.
    after = await stack.client.get(f"/api/v1/campaigns/{campaign}")
    assert after.json()["status"] == "draft" and after.json()["recipient_count"] == 3


async def test_another_users_campaign_is_404_everywhere(stack: Stack, data: dict[str, Any]) -> None:
    email, password = await _user(stack, "member")
    campaign, mailbox = data["campaign"]["id"], data["mailbox"]["id"]
    client, csrf = await _session_client(stack, email, password)
    try:
        listed = await client.get("/admin/campaigns")
        assert campaign not in listed.text and "Launch" not in listed.text
        assert mailbox not in (await client.get("/admin/mailboxes")).text
        assert mailbox not in (await client.get("/admin/")).text
        for path in ("", "/recipients", "/replies", "/edit", "/preview", "/export/results.csv"):
            answer = await client.get(f"/admin/campaigns/{campaign}{path}")
            assert answer.status_code == 404, path
        for path in ("/pause", "/send", "/clone", "/edit"):
            answer = await client.post(f"/admin/campaigns/{campaign}{path}", data={"csrf": csrf})
            assert answer.status_code == 404, path
        assert (await client.get(f"/admin/mailboxes/{mailbox}")).status_code == 404
    finally:
        await client.aclose()


async def test_payloads_in_subject_and_template_are_inert_in_the_preview_and_editor(
    stack: Stack, data: dict[str, Any], page: Page
) -> None:
    campaign = await _post(
        stack,
        "/campaigns",
        {
            "name": "Preview check",
            "subject": f"Hi {XSS}",
            "template_markdown": f"# Hello {{{{ recipient.name }}}}\n\n{XSS}\n",
            "mailbox_id": data["mailbox"]["id"],
        },
    )
    person = {"email": "xss@example.org", "name": f"N {XSS}", "attributes": {"a": XSS}}
    await _post(stack, f"/campaigns/{campaign['id']}/recipients", person)
    await sign_in(page, stack.base_url, ADMIN_EMAIL, ADMIN_PASSWORD)
    base = f"{stack.base_url}/admin/campaigns/{campaign['id']}"
    for name, path in (
        ("editor", "/edit"),
        ("preview", "/preview"),
        ("send confirmation", "/send"),
        ("sharing", "/sharing"),
    ):
        response = await page.goto(f"{base}{path}")
        assert response is not None and response.status == 200, name
        await _check_page(page, name)
    await page.goto(f"{base}/preview")
    assert XSS in await page.locator("p.subject").inner_text()
    frame = page.locator("iframe.preview")
    assert await frame.get_attribute("sandbox") == ""
    html = await page.request.get(f"{stack.base_url}{await frame.get_attribute('src')}")
    policy = html.headers["content-security-policy"]
    assert policy.startswith("default-src 'none'") and "script" not in policy
    await page.wait_for_timeout(300)  # time for an injected handler to run, were it able
    assert await page.evaluate("window.pwned") is None
    for path in ("/admin/mailboxes/new", "/admin/campaigns/new"):
        await page.goto(f"{stack.base_url}{path}")
        await _check_page(page, path.strip("/").replace("/", " "))
