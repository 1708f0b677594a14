"""Input that used to answer 500: huge limits and offsets, control characters in query
strings, non-ASCII local parts, bodies that are not UTF-8. Each now gets a 4xx that names
what is wrong, and the OpenAPI document lists every status an operation answers."""

from __future__ import annotations

import re
import uuid
from typing import Any

import asyncpg
import pytest

from pigeon_testing.stack import Stack

from .api_helpers import assert_error_shape, campaign_body, mailbox_body

pytestmark = pytest.mark.asyncio(loop_scope="session")

HUGE = str(2**63)


async def _openapi(stack: Stack) -> dict[str, Any]:
    assert stack.client is not None
    response = await stack.client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    return response.json()


def _fill(path: str) -> str:
    return re.sub(r"\{[^}]+\}", lambda _m: str(uuid.uuid4()), path)


async def _campaign(stack: Stack) -> str:
    assert stack.client is not None
    mailbox = await stack.client.post("/api/v1/mailboxes", json=mailbox_body())
    assert mailbox.status_code == 201, mailbox.text
    body = campaign_body(mailbox_id=mailbox.json()["id"])
    campaign = await stack.client.post("/api/v1/campaigns", json=body)
    assert campaign.status_code == 201, campaign.text
    return str(campaign.json()["id"])


async def test_every_list_refuses_limit_and_offset_past_their_bound(stack: Stack) -> None:
    assert stack.client is not None
    lists = [
        (path, op)
        for path, ops in (await _openapi(stack))["paths"].items()
        for method, op in ops.items()
        if method == "get" and {"limit", "offset"} <= {p["name"] for p in op.get("parameters", [])}
    ]
    assert len(lists) >= 10, [p for p, _ in lists]
    for path, op in lists:
        for name in ("limit", "offset"):
            declared = next(p for p in op["parameters"] if p["name"] == name)["schema"]
            assert "maximum" in declared, (path, name)
            for value in (HUGE, str(declared["maximum"] + 1), "-1"):
                response = await stack.client.get(_fill(path), params={name: value})
                error = assert_error_shape(response, 422, mentions=name)
                assert error["field"] == name, (path, error)


@pytest.mark.parametrize("bad", ["a\x00b", "a\nb", "a\x7fb", "\u2028"])
@pytest.mark.parametrize("name", ["q", "email", "attr"])
async def test_recipient_filters_refuse_control_characters(
    stack: Stack, name: str, bad: str
) -> None:
    assert stack.client is not None
    campaign_id = await _campaign(stack)
    value = f"k:{bad}" if name == "attr" else bad
    response = await stack.client.get(
        f"/api/v1/campaigns/{campaign_id}/recipients", params={name: value}
    )
    error = assert_error_shape(response, 422, mentions="control characters")
    assert error["field"] is not None and error["field"].startswith(name), error


@pytest.mark.parametrize("method", ["GET", "DELETE"])
async def test_suppression_email_with_nul_is_refused(stack: Stack, method: str) -> None:
    assert stack.client is not None
    response = await stack.client.request(
        method, "/api/v1/suppressions", params={"email": "ann\x00@example.com"}
    )
    error = assert_error_shape(response, 422)
    assert error["field"] == "email", error


async def test_non_ascii_local_parts_are_refused_everywhere(stack: Stack) -> None:
    assert stack.client is not None
    campaign_id = await _campaign(stack)
    address = "jörg@example.com"
    attempts = [
        ("POST", f"/api/v1/campaigns/{campaign_id}/recipients", {"email": address}, "email"),
        (
            "POST",
            f"/api/v1/campaigns/{campaign_id}/recipients/bulk",
            {"recipients": [{"email": address}]},
            "recipients.0.email",
        ),
        ("POST", "/api/v1/mailboxes", mailbox_body(from_address=address), "from_address"),
        ("POST", f"/api/v1/campaigns/{campaign_id}/test-send", {"email": address}, "email"),
        ("POST", "/api/v1/suppressions", {"email": address}, "email"),
    ]
    for method, path, body, field in attempts:
        response = await stack.client.request(method, path, json=body)
        error = assert_error_shape(response, 422, mentions="SMTPUTF8")
        assert error["field"] == field, (path, error)
    csv = f"email\n{address}\n".encode()
    response = await stack.client.post(
        f"/api/v1/campaigns/{campaign_id}/recipients/import",
        content=csv,
        headers={"Content-Type": "text/csv"},
    )
    assert_error_shape(response, 422, mentions="SMTPUTF8")
    listed = await stack.client.get(f"/api/v1/campaigns/{campaign_id}/recipients")
    assert listed.json()["count"] == 0
    # Nothing was stored that a dry run could trip over.
    dry = await stack.client.post(f"/api/v1/campaigns/{campaign_id}/dry-run")
    assert dry.status_code == 200, dry.text


async def test_unicode_and_punycode_domains_are_one_recipient(stack: Stack) -> None:
    assert stack.client is not None
    campaign_id = await _campaign(stack)
    for address in ("bob@Bücher.example.com", "BOB@xn--bcher-kva.example.com"):
        response = await stack.client.post(
            f"/api/v1/campaigns/{campaign_id}/recipients", json={"email": address}
        )
        assert response.status_code == 201, response.text
        assert response.json()["email"].endswith("@xn--bcher-kva.example.com")
    listed = await stack.client.get(f"/api/v1/campaigns/{campaign_id}/recipients")
    assert listed.json()["count"] == 1
    dry = await stack.client.post(f"/api/v1/campaigns/{campaign_id}/dry-run")
    assert dry.status_code == 200, dry.text


async def test_a_body_that_is_not_utf8_is_422(stack: Stack) -> None:
    assert stack.client is not None
    campaign_id = await _campaign(stack)
    response = await stack.client.post(
        f"/api/v1/campaigns/{campaign_id}/recipients",
        content=b'{"email": "\xff\xfe"}',
        headers={"Content-Type": "application/json"},
    )
    error = assert_error_shape(response, 422)
    assert error["code"] in ("invalid_body", "invalid_json"), error


async def test_relay_mailbox_without_password_says_so(stack: Stack) -> None:
    assert stack.client is not None
    relay = {"host": "relay.example.com", "port": 25, "security": "plain"}
    response = await stack.client.post("/api/v1/mailboxes", json=mailbox_body(smtp=relay))
    assert response.status_code == 201, response.text
    assert response.json()["smtp"]["password_set"] is False


async def test_openapi_lists_the_error_statuses_of_every_operation(stack: Stack) -> None:
    schema = await _openapi(stack)
    ids = []
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            ids.append(op["operationId"])
            codes = set(op["responses"])
            if not path.startswith("/api/v1"):
                continue
            assert {"422", "503"} <= codes, (method, path, codes)
            if op.get("security"):
                assert {"401", "403"} <= codes, (method, path, codes)
            if "{" in path:
                assert "404" in codes, (method, path, codes)
            if method != "get":
                assert "409" in codes, (method, path, codes)
            if "requestBody" in op:
                assert {"413", "415"} <= codes, (method, path, codes)
    assert len(ids) == len(set(ids)), "operation ids are unique"
    assert all(re.fullmatch(r"[a-z][a-z_]*", i) for i in ids), ids
    token = schema["paths"]["/api/v1/auth/token"]["post"]["responses"]
    assert "429" in token
    test_send = schema["paths"]["/api/v1/campaigns/{campaign_id}/test-send"]["post"]
    assert {"502", "504"} <= set(test_send["responses"])


@pytest.mark.parametrize(
    ("path_of", "body", "field"),
    [
        ("recipients", '{"email": "ann@example.com", "name": "A\\ud800"}', "name"),
        (
            "recipients",
            '{"email": "ann@example.com", "attributes": {"k": "\\udfff"}}',
            "attributes",
        ),
        ("campaigns", '{"name": "x\\ud83d", "subject": "s", "template_markdown": "t"}', "name"),
        (
            "campaigns",
            '{"name": "x", "subject": "s", "template_markdown": "t\\ud800"}',
            "template_markdown",
        ),
    ],
)
async def test_lone_surrogates_are_refused(
    stack: Stack, path_of: str, body: str, field: str
) -> None:
    """JSON can spell half a UTF-16 pair; no UTF-8 text holds one, so it is invalid input,
    not a 500 (or an event the projector cannot store)."""
    assert stack.client is not None
    campaign_id = await _campaign(stack)
    path = (
        f"/api/v1/campaigns/{campaign_id}/recipients"
        if path_of == "recipients"
        else "/api/v1/campaigns"
    )
    response = await stack.client.post(
        path, content=body.encode(), headers={"Content-Type": "application/json"}
    )
    error = assert_error_shape(response, 422)
    assert (error.get("field") or "").startswith(field), error


@pytest.mark.parametrize(
    ("table", "column", "field"),
    [("recipients", "email", "email"), ("mailboxes", "from_address", "from_address")],
)
async def test_addresses_stored_before_the_rule_get_422_not_500(
    stack: Stack, table: str, column: str, field: str
) -> None:
    """A non-ASCII local part kept from before it was refused at input: dry run and test
    send say which address cannot be sent (the sender records such a recipient failed)."""
    assert stack.client is not None and stack.settings.database_url is not None
    campaign_id = await _campaign(stack)
    added = await stack.client.post(
        f"/api/v1/campaigns/{campaign_id}/recipients", json={"email": "ann@example.com"}
    )
    assert added.status_code == 201, added.text
    conn = await asyncpg.connect(stack.settings.database_url)
    try:
        if table == "recipients":
            await conn.execute(
                "UPDATE recipients SET email = 'jörg@example.com' WHERE campaign_id = $1",
                uuid.UUID(campaign_id),
            )
        else:
            await conn.execute(
                "UPDATE mailboxes SET from_address = 'jörg@example.com' WHERE id = "
                "(SELECT mailbox_id FROM campaigns WHERE id = $1)",
                uuid.UUID(campaign_id),
            )
    finally:
        await conn.close()
    dry = await stack.client.post(f"/api/v1/campaigns/{campaign_id}/dry-run")
    assert assert_error_shape(dry, 422)["field"] == field
    if table == "mailboxes":
        test = await stack.client.post(
            f"/api/v1/campaigns/{campaign_id}/test-send", json={"email": "bo@example.com"}
        )
        assert assert_error_shape(test, 422)["field"] == field
