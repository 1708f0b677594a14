"""Create-then-read through the REST API sees its own write."""

from __future__ import annotations

from pigeon_testing.stack import Stack


async def test_create_then_read_sees_own_write(stack: Stack) -> None:
    client = stack.client
    assert client is not None
    created = await client.post(
        "/api/v1/campaigns",
        json={"name": "Launch", "subject": "Hi {{ recipient.name }}", "template_markdown": "# Hi"},
    )
    assert created.status_code == 201, created.text
    campaign_id = created.json()["id"]
    read = await client.get(f"/api/v1/campaigns/{campaign_id}")
    assert read.status_code == 200
    assert read.json()["name"] == "Launch"
    listed = await client.get("/api/v1/campaigns")
    assert campaign_id in [c["id"] for c in listed.json()["data"]]
