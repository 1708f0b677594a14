"""Bad input gets a 4xx in the one error shape, says what is wrong, and changes nothing."""

from __future__ import annotations

import pytest

from pigeon_testing.stack import Stack

from .api_helpers import assert_error_shape, campaign_body, mailbox_body

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _campaign_count(stack: Stack) -> int:
    assert stack.client is not None
    response = await stack.client.get("/api/v1/campaigns")
    assert response.status_code == 200, response.text
    return response.json()["count"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (campaign_body(subject="Hi\r\nBcc: all@example.com"), "subject"),
        (campaign_body(subject="Hi\nthere"), "subject"),
        (campaign_body(name="a\rb"), "name"),
        (campaign_body(subject=""), "subject"),
        (campaign_body(subject=42), "subject"),
        (campaign_body(extra="x"), "extra"),
        (campaign_body(mailbox_id="not-a-uuid"), "mailbox_id"),
        (campaign_body(mailbox_id="8d3b2a1c-7e90-4c55-9f0e-6f2c1d4e2b7a"), "mailbox_id"),
        (campaign_body(template_markdown="{% if %}"), "template_markdown"),
        (campaign_body(subject="{{ unclosed"), "subject"),
        (campaign_body(template_markdown="x" * (512 * 1024 + 1)), "template_markdown"),
        # What the sandbox refuses is refused when saved, not first when sending.
        (campaign_body(template_markdown="{{ recipient.__class__ }}"), "template_markdown"),
        (campaign_body(subject="{% include 'x' %}"), "subject"),
        (campaign_body(template_markdown="[a]({{ track_url('ftp://x') }})"), "template_markdown"),
    ],
)
async def test_bad_campaign_is_refused_and_nothing_is_stored(stack: Stack, body, field) -> None:
    assert stack.client is not None
    before = await _campaign_count(stack)
    response = await stack.client.post("/api/v1/campaigns", json=body)
    error = assert_error_shape(response, 422, mentions=field)
    assert error.get("field") == field or field in error["message"]
    assert await _campaign_count(stack) == before


@pytest.mark.parametrize(
    ("address", "fragment"),
    [
        ("not-an-address", "@"),
        ("alice@example.org)<bob@example.org>", "email"),
        ('"alice@example.org"@evil.example.com', "email"),
        ("Bob <bob@example.com>", "email"),
        ("bob@example.com\r\nBcc: x@example.com", "email"),
        ("alice@example.org,bob@example.org", "email"),
        ("a@[127.0.0.1]", "email"),
        ("user@localhost", "email"),
        ("x" * 65 + "@example.com", "email"),
    ],
)
async def test_tricky_addresses_are_refused(stack: Stack, address: str, fragment: str) -> None:
    assert stack.client is not None
    campaign = (await stack.client.post("/api/v1/campaigns", json=campaign_body())).json()
    response = await stack.client.post(
        f"/api/v1/campaigns/{campaign['id']}/recipients", json={"email": address}
    )
    assert_error_shape(response, 422, mentions=fragment)
    listed = await stack.client.get(f"/api/v1/campaigns/{campaign['id']}/recipients")
    assert listed.json()["count"] == 0


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"from_name": "Ann\r\nX-Evil: 1"}, "from_name"),
        ({"from_address": "ann"}, "from_address"),
        ({"smtp": {**mailbox_body()["smtp"], "port": "587"}}, "smtp.port"),
        ({"smtp": {**mailbox_body()["smtp"], "port": 70000}}, "smtp.port"),
        ({"smtp": {**mailbox_body()["smtp"], "security": "ssl3"}}, "smtp.security"),
        ({"imap": {**mailbox_body()["imap"], "host": "bad host"}}, "imap.host"),
        ({"rate_per_day": 0}, "rate_per_day"),
        ({"sent_folder": "Sent\r\n"}, "sent_folder"),
        ({"password": "top-level"}, "password"),
    ],
)
async def test_bad_mailbox_is_refused(stack: Stack, override, field) -> None:
    assert stack.client is not None
    before = (await stack.client.get("/api/v1/mailboxes")).json()["count"]
    response = await stack.client.post("/api/v1/mailboxes", json=mailbox_body(**override))
    assert_error_shape(response, 422, mentions=field)
    assert (await stack.client.get("/api/v1/mailboxes")).json()["count"] == before


async def test_malformed_json_and_wrong_content(stack: Stack) -> None:
    assert stack.client is not None
    response = await stack.client.post(
        "/api/v1/campaigns", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_error_shape(response, 422, mentions="json")
    response = await stack.client.post("/api/v1/campaigns", json=["a", "list"])
    assert_error_shape(response, 422)


async def test_oversized_body_is_413(stack: Stack) -> None:
    assert stack.client is not None
    big = b'{"name": "' + b"x" * (9 * 1024 * 1024) + b'"}'
    response = await stack.client.post(
        "/api/v1/campaigns", content=big, headers={"content-type": "application/json"}
    )
    assert_error_shape(response, 413, mentions="limit")


async def test_unknown_ids_and_routes(stack: Stack) -> None:
    assert stack.client is not None
    missing = "8d3b2a1c-7e90-4c55-9f0e-6f2c1d4e2b7a"
    assert_error_shape(await stack.client.get(f"/api/v1/campaigns/{missing}"), 404)
    assert_error_shape(await stack.client.get("/api/v1/campaigns/not-a-uuid"), 422)
    assert_error_shape(await stack.client.get("/api/v1/nothing-here"), 404)
    assert_error_shape(await stack.client.delete("/api/v1/campaigns"), 405)
    assert_error_shape(await stack.client.get("/api/v1/campaigns?limit=0"), 422, mentions="limit")


async def _csv_campaign(stack: Stack) -> str:
    assert stack.client is not None
    return (await stack.client.post("/api/v1/campaigns", json=campaign_body())).json()["id"]


async def _import(stack: Stack, campaign_id: str, data: bytes, **params: str):
    assert stack.client is not None
    return await stack.client.post(
        f"/api/v1/campaigns/{campaign_id}/recipients/import",
        content=data,
        params=params,
        headers={"content-type": "text/csv"},
    )


async def _recipient_count(stack: Stack, campaign_id: str) -> int:
    assert stack.client is not None
    return (await stack.client.get(f"/api/v1/campaigns/{campaign_id}")).json()["recipient_count"]


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"", "empty"),
        (b"name,city\nAnn,Paris\n", "email"),
        (b"email,email\na@example.com,b@example.com\n", "twice"),
        (b"email,bad column\na@example.com,x\n", "bad column"),
        (b'email,name\na@example.com,"unclosed\n', "line"),
        (b"email,name\na@example.com,Ren\xe9\n", "UTF-8"),
        (b"email,name\na@example.com,A\x00B\n", "line"),
    ],
)
async def test_malformed_csv_is_refused_whole(stack: Stack, data: bytes, fragment: str) -> None:
    campaign_id = await _csv_campaign(stack)
    assert_error_shape(await _import(stack, campaign_id, data), 422, mentions=fragment)
    assert await _recipient_count(stack, campaign_id) == 0


async def test_csv_with_bad_rows_imports_nothing_by_default(stack: Stack) -> None:
    campaign_id = await _csv_campaign(stack)
    data = (
        b"email,name\na@example.com,Ann\nnot-an-address,Bob\n"
        b'c@example.com,"C\r\nD"\nd@example.com\n'
    )
    error = assert_error_shape(await _import(stack, campaign_id, data), 422)
    lines = {d["line"]: d["reason"] for d in error["details"]}
    assert set(lines) == {3, 4, 6}
    assert "not-an-address" in lines[3]
    assert "line breaks" in lines[4]
    assert "fields" in lines[6]
    assert await _recipient_count(stack, campaign_id) == 0


async def test_csv_with_bad_rows_can_import_exactly_the_valid_rows(stack: Stack) -> None:
    campaign_id = await _csv_campaign(stack)
    data = b"email,name\na@example.com,Ann\nnot-an-address,Bob\nb@example.com,Bea\n"
    response = await _import(stack, campaign_id, data, on_error="skip")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["imported"] == 2
    assert body["rejected"] == [{"line": 3, "reason": body["rejected"][0]["reason"]}]
    assert await _recipient_count(stack, campaign_id) == 2


async def test_import_needs_csv_content(stack: Stack) -> None:
    assert stack.client is not None
    campaign_id = await _csv_campaign(stack)
    response = await stack.client.post(
        f"/api/v1/campaigns/{campaign_id}/recipients/import", json={"email": "a@example.com"}
    )
    assert_error_shape(response, 415, mentions="text/csv")
