"""The issue's whole admin flow in a real Chromium, against real servers on loopback:
Dovecot (IMAP), the aiosmtpd test server (SMTP), a sender, the tracker, the projector
and the API. Sign in; create a mailbox; test its connection and pick the folders; create
a campaign; import a CSV (a bad row listed by its line); preview; dry run; send live after
the confirmation; watch progress reach done; fetch the pixel and see the open; read a
recipient's story; pause and resume a second campaign; export CSV; sign out.

Every page visited is checked with axe and saved as a screenshot artefact.
"""

from __future__ import annotations

import asyncio
import csv
import email
import email.policy
import io
import re
from collections.abc import AsyncIterator
from email.message import EmailMessage

import httpx
import pytest
import pytest_asyncio
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, Page, expect

from pigeon_embedded.nats import NatsServer
from pigeon_embedded.ports import free_port
from pigeon_testing.browser import screenshot
from pigeon_testing.dovecot import DovecotServer, ImapAccount
from pigeon_testing.smtp import SmtpTestServer
from pigeon_testing.stack import ADMIN_EMAIL, ADMIN_PASSWORD, Stack, stack_settings
from pigeon_tracker.service import Tracker

BLOCKING_IMPACTS = {"serious", "critical"}
PIXEL = re.compile(r"https?://[^\s\"'<>]+/campaigns/o/[^\s\"'<>]+/p\.png")
MAIL_CLIENT = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Thunderbird/128.0"
DONE_TIMEOUT_MS = 60_000
TEMPLATE = "# Hello {{ recipient.name }}\n\nRead [our news](https://example.org/news).\n"
CSV_FILE = (
    "email,name,city\n"
    "ann@example.org,Ann,Oslo\n"
    "not-an-address,Bad,Nowhere\n"
    "bob@example.org,Bob,Rome\n"
)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def flow_stack(
    module_nats: NatsServer, module_database: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[Stack, Tracker]]:
    """API, projector, one sender and the tracker; tracking URLs point at the tracker."""
    tracker_port = free_port()
    settings = stack_settings(
        module_database,
        module_nats.url,
        tmp_path_factory.mktemp("flow"),
        public_base_url=f"http://127.0.0.1:{tracker_port}",
        tracker_port=tracker_port,
        job_ack_wait_sec=5.0,
    )
    stack = Stack(settings)
    await stack.start()
    stack.start_sender()
    tracker = Tracker(settings, port=tracker_port)
    await tracker.start()
    try:
        yield stack, tracker
    finally:
        await tracker.close()
        await stack.close()


async def _check(page: Page, name: str) -> None:
    """Accessible (axe: nothing serious or critical) and saved as an artefact."""
    await screenshot(page, f"admin flow {name}")
    results = await Axe().run(page)
    blocking = [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v["impact"] in BLOCKING_IMPACTS
    ]
    assert not blocking, f"{name}: {blocking}"


def _html_of(raw: bytes) -> str:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    body = message.get_body(("html",))
    assert body is not None
    return str(body.get_content())  # type: ignore[attr-defined]


async def _sign_in(page: Page, base: str) -> None:
    await page.goto(f"{base}/admin/login")
    await page.get_by_label("Email").fill(ADMIN_EMAIL)
    await page.get_by_label("Password").fill(ADMIN_PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(re.compile(r"/admin/$"))


async def _create_mailbox(page: Page, base: str, smtp: SmtpTestServer, imap: ImapAccount) -> str:
    await page.goto(f"{base}/admin/mailboxes")
    await page.get_by_role("link", name="New mailbox").click()
    await _check(page, "new mailbox")
    await page.get_by_label("Name", exact=True).fill("Newsletter box")
    await page.get_by_label("From name").fill("Pigeon News")
    await page.get_by_label("From address").fill("news@example.com")
    fields: dict[str, tuple[str, int, str, str]] = {
        "smtp": (smtp.host, smtp.port, smtp.username or "", smtp.password or ""),
        "imap": (imap.host, imap.port, imap.username, imap.password),
    }
    for side, (host, port, username, password) in fields.items():
        await page.locator(f"#{side}_host").fill(host)
        await page.locator(f"#{side}_port").fill(str(port))
        await page.locator(f"#{side}_security").select_option("plain")
        await page.locator(f"#{side}_username").fill(username)
        await page.locator(f"#{side}_password").fill(password)
    await page.get_by_label("Copy sent mail to the Sent folder").select_option("always")
    # Slow enough that the second campaign is still sending when it is paused.
    await page.get_by_label("Per second").fill("2")
    await page.get_by_role("button", name="Create mailbox").click()
    await page.wait_for_url(re.compile(r"/admin/mailboxes/[0-9a-f-]{36}$"))
    assert password not in await page.content()
    return page.url.rsplit("/", 1)[1]


async def _test_connection_and_pick_folders(page: Page) -> None:
    await page.get_by_role("button", name="Test connection").click()
    await expect(page.get_by_role("heading", name="Folders", exact=True)).to_be_visible()
    await _check(page, "connection test")
    results = page.locator("ul.results li")
    await expect(results).to_have_count(2)
    await expect(results.nth(0)).to_contain_text("Works: SMTP")
    await expect(results.nth(1)).to_contain_text("Works: IMAP")
    await expect(page.locator("table")).to_contain_text("\\Sent")
    # The \Sent-flagged folder is suggested; the bounce folder is picked by hand.
    sent = page.get_by_label("Sent folder")
    assert await sent.input_value() == "Sent"
    await page.get_by_label("Bounce folder").select_option("Bounces")
    await page.get_by_role("button", name="Use these folders").click()
    await page.wait_for_url(re.compile(r"/admin/mailboxes/[0-9a-f-]{36}$"))
    attrs = page.locator("dl.attrs")
    await expect(attrs).to_contain_text("Bounces")
    await expect(attrs).to_contain_text("Sent")
    await _check(page, "mailbox")


async def _create_campaign(page: Page, base: str, name: str) -> str:
    await page.goto(f"{base}/admin/campaigns")
    await page.get_by_role("link", name="New campaign").click()
    await _check(page, "new campaign")
    await page.get_by_label("Name", exact=True).fill(name)
    await page.locator("#subject").fill("News for {{ recipient.name }}")
    await page.get_by_label("Send from").select_option(label="Newsletter box <news@example.com>")
    # A template error is shown next to its field, with its line.
    await page.get_by_label(re.compile("^Message")).fill("# Hi\n\n{% if %}\n")
    await page.get_by_role("button", name="Create draft").click()
    error = page.locator("#template_markdown-error")
    await expect(error).to_contain_text("line")
    await _check(page, "template error")
    await page.get_by_label(re.compile("^Message")).fill(TEMPLATE)
    await page.get_by_role("button", name="Create draft").click()
    await page.wait_for_url(re.compile(r"/edit$"))
    return page.url.split("/campaigns/")[1].split("/")[0]


async def _import_csv(page: Page, base: str, campaign: str) -> None:
    await page.goto(f"{base}/admin/campaigns/{campaign}/recipients")
    await page.get_by_text("Add recipients").click()
    await page.get_by_label(re.compile("^CSV file")).set_input_files(
        {"name": "people.csv", "mimeType": "text/csv", "buffer": CSV_FILE.encode()}
    )
    await page.get_by_label("import the good rows, list the bad ones").check()
    await page.get_by_role("button", name="Import CSV").click()
    status = page.get_by_role("status")
    await expect(status).to_contain_text("2 recipient(s) imported")
    bad = page.locator("table tbody tr")
    await expect(bad).to_have_count(1)
    await expect(bad.first).to_contain_text("3")  # the line of the bad row
    await expect(bad.first).to_contain_text("not-an-address")
    await _check(page, "import result")


async def _preview(page: Page, base: str, campaign: str) -> None:
    await page.goto(f"{base}/admin/campaigns/{campaign}/edit")
    await page.get_by_label("Recipient", exact=True).select_option(label="ann@example.org (Ann)")
    await page.get_by_role("button", name="Preview").click()
    await page.wait_for_url(re.compile(r"/preview\?"))
    await expect(page.locator("p.subject")).to_have_text("News for Ann")
    frame = page.locator("iframe.preview")
    assert await frame.get_attribute("sandbox") == ""
    await expect(page.frame_locator("iframe.preview").locator("h1")).to_have_text("Hello Ann")
    await expect(page.locator("pre.text-part")).to_contain_text("Hello Ann")
    await expect(page.locator("table")).to_contain_text("List-Unsubscribe")
    await _check(page, "preview")


async def _dry_run_and_send(page: Page, base: str, campaign: str) -> None:
    await page.goto(f"{base}/admin/campaigns/{campaign}")
    await page.get_by_role("button", name="Dry run").click()
    await expect(page.locator("table tbody tr")).to_have_count(2)
    await _check(page, "dry run")
    await page.goto(f"{base}/admin/campaigns/{campaign}")
    await page.get_by_role("link", name="Send live…").click()
    await expect(page.locator("p.confirm")).to_contain_text("2 people will get it")
    await _check(page, "send confirmation")
    await page.get_by_role("button", name="Send live to 2 people").click()
    await page.wait_for_url(re.compile(rf"/admin/campaigns/{campaign}$"))
    # htmx polls the numbers while it sends: no reload needed to see it finish.
    await expect(page.locator("#numbers .status")).to_have_text("done", timeout=DONE_TIMEOUT_MS)
    await expect(page.locator("#numbers progress")).to_have_attribute("value", "2")
    await _check(page, "campaign sent")


async def _open_pixel(page: Page, base: str, campaign: str, smtp: SmtpTestServer) -> None:
    received = await smtp.wait_for_async(2)
    to_ann = next(m for m in received if "ann@example.org" in m.rcpt_tos)
    pixel = PIXEL.search(_html_of(to_ann.data))
    assert pixel is not None
    await page.goto(f"{base}/admin/campaigns/{campaign}/recipients?state=opened")
    await expect(page.locator("table tbody")).to_contain_text("No recipient matches")
    async with httpx.AsyncClient(timeout=10) as client:
        fetched = await client.get(pixel.group(0), headers={"User-Agent": MAIL_CLIENT})
    assert fetched.status_code == 200
    for _ in range(100):  # the projector applies the open shortly
        await page.goto(f"{base}/admin/campaigns/{campaign}/recipients?state=opened")
        if await page.get_by_role("link", name="ann@example.org").count():
            break
        await asyncio.sleep(0.1)
    await page.get_by_role("link", name="ann@example.org").click()
    story = page.locator("ol.story")
    for kind in ("added", "sent", "opened"):
        await expect(story).to_contain_text(kind)
    await expect(story).to_contain_text("copied to Sent")
    await _check(page, "recipient story")


async def _pause_and_resume(page: Page, base: str, first: str) -> None:
    """A clone with thirteen recipients through a mailbox sending two a second, so it is
    still sending when paused."""
    await page.goto(f"{base}/admin/campaigns/{first}")
    await page.get_by_role("button", name="Clone").click()
    await page.wait_for_url(re.compile(r"/edit$"))
    second = page.url.split("/campaigns/")[1].split("/")[0]
    assert second != first
    await page.goto(f"{base}/admin/campaigns/{second}/recipients")
    await page.get_by_text("Add recipients").click()
    await page.get_by_label("Email", exact=True).fill("cy@example.org")
    await page.get_by_label(re.compile("^Attributes")).fill("city=Lyon")
    await page.get_by_role("button", name="Add recipient").click()
    await page.wait_for_url(re.compile(r"/recipients$"))
    await expect(page.locator("table tbody")).to_contain_text("cy@example.org")
    await _check(page, "recipients")
    many = "email\n" + "".join(f"p{i}@example.net\n" for i in range(12))
    await page.get_by_text("Add recipients").click()
    await page.get_by_label(re.compile("^CSV file")).set_input_files(
        {"name": "more.csv", "mimeType": "text/csv", "buffer": many.encode()}
    )
    await page.get_by_role("button", name="Import CSV").click()
    await expect(page.get_by_role("status")).to_contain_text("12 recipient(s) imported")
    await page.goto(f"{base}/admin/campaigns/{second}/send")
    await page.get_by_label(re.compile("^Chunk size")).first.fill("2")
    await page.get_by_role("button", name="Send live to 13 people").click()
    await page.wait_for_url(re.compile(rf"/admin/campaigns/{second}$"))
    await page.get_by_role("button", name="Pause").click()
    await expect(page.locator("#numbers .status")).to_have_text("paused")
    await _check(page, "campaign paused")
    await page.get_by_role("button", name="Resume").click()
    await expect(page.locator("#numbers .status")).to_have_text("done", timeout=DONE_TIMEOUT_MS)
    await expect(page.locator("#numbers progress")).to_have_attribute("value", "13")


async def _export(page: Page, base: str, campaign: str) -> None:
    await page.goto(f"{base}/admin/campaigns/{campaign}")
    async with page.expect_download() as info:
        await page.get_by_role("link", name="Export results (CSV)").click()
    download = await info.value
    path = await download.path()
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    assert sorted(r["email"] for r in rows) == ["ann@example.org", "bob@example.org"]
    assert {r["status"] for r in rows} == {"sent"}
    assert [r["opens"] for r in rows if r["email"] == "ann@example.org"] == ["1"]


async def test_the_admin_flow_from_mailbox_to_opens(
    flow_stack: tuple[Stack, Tracker],
    browser: Browser,
    dovecot: DovecotServer,
    imap_user: ImapAccount,
    smtp: SmtpTestServer,
) -> None:
    stack, _tracker = flow_stack
    base = stack.base_url
    dovecot.create_folder(imap_user.username, "Bounces")
    context = await browser.new_context(
        viewport={"width": 1280, "height": 900}, accept_downloads=True
    )
    try:
        page = await context.new_page()
        await _sign_in(page, base)
        await _create_mailbox(page, base, smtp, imap_user)
        await _test_connection_and_pick_folders(page)
        campaign = await _create_campaign(page, base, "Spring news")
        await _import_csv(page, base, campaign)
        await _preview(page, base, campaign)
        await _dry_run_and_send(page, base, campaign)
        await _open_pixel(page, base, campaign, smtp)
        await _pause_and_resume(page, base, campaign)
        await _export(page, base, campaign)
        await page.get_by_role("button", name="Sign out").click()
        await page.wait_for_url(re.compile(r"/admin/login"))
        await page.goto(f"{base}/admin/campaigns")
        assert "/admin/login" in page.url
    finally:
        await context.close()
