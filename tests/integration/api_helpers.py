"""Request bodies shared by the API tests."""

from __future__ import annotations

from typing import Any

SMTP_PASSWORD = "smtp-Pa55word-never-shown"
IMAP_PASSWORD = "imap-Pa55word-never-shown"


def mailbox_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Main",
        "from_name": "Ann Example",
        "from_address": "ann@example.com",
        "smtp": {
            "host": "smtp.example.com",
            "port": 587,
            "security": "starttls",
            "username": "ann",
            "password": SMTP_PASSWORD,
        },
        "imap": {
            "host": "imap.example.com",
            "port": 993,
            "security": "tls",
            "username": "ann",
            "password": IMAP_PASSWORD,
        },
        "sent_folder": "Sent",
        "bounce_folder": "Bounces",
        "rate_per_hour": 500,
    }
    body.update(overrides)
    return body


def campaign_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Launch",
        "subject": "Hello {{ recipient.name }}",
        "template_markdown": "# Hi {{ recipient.name }}",
    }
    body.update(overrides)
    return body


def assert_error_shape(
    response: Any, status: int, *, mentions: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    if mentions is not None:
        assert mentions.lower() in response.text.lower(), response.text
    return error
