"""The stored JSON of `message.opened` and `link.clicked`, written without pydantic.

These two events are the tracker's hot path (one per pixel fetch or click). The bytes are
exactly what `jetstream.encode(envelope_for(event, str(campaign_id)))` gives for the same
event id and time (a unit test holds the two together), so the projector and any reader
of the stream see an ordinary `Envelope`.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime

from pigeon_common import events as ev
from pigeon_common.events import EVENT_SUBJECT_PREFIX, MachineReason

OPENED_SUBJECT = f"{EVENT_SUBJECT_PREFIX}.{ev.MessageOpened.type}"
CLICKED_SUBJECT = f"{EVENT_SUBJECT_PREFIX}.{ev.LinkClicked.type}"

# Field order and spelling as pydantic dumps `Envelope` and the payload models.
_HEAD = (
    '{"event_id":"%s","type":"%s","schema_version":%d,"occurred_at":"%s",'
    '"aggregate_id":"%s","causation_id":null,"actor":null,"data":'
)
_OPENED_DATA = (
    '{"campaign_id":"%s","recipient_id":"%s","machine":%s,"machine_reason":"%s","user_agent":%s}}'
)
_CLICKED_DATA = (
    '{"campaign_id":"%s","recipient_id":"%s","link_index":%d,"url":%s,"machine":%s,'
    '"machine_reason":"%s","user_agent":%s}}'
)
_BOOL = ("false", "true")
_OPENED, _OPENED_VERSION = ev.MessageOpened.type, ev.MessageOpened.schema_version
_CLICKED, _CLICKED_VERSION = ev.LinkClicked.type, ev.LinkClicked.schema_version


def new_event_id() -> str:
    """A random (version 4) UUID in its canonical spelling, without a UUID object."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def json_string(value: str) -> str:
    """A JSON string literal as pydantic writes it (UTF-8 kept, quotes and controls escaped)."""
    return json.dumps(value, ensure_ascii=False)


def timestamp(at: datetime) -> str:
    """`2024-05-17T09:30:15.123456Z`, pydantic's spelling of an aware UTC datetime."""
    return at.isoformat()[:-6] + "Z"


def opened_json(
    event_id: str,
    at: datetime,
    campaign_id: uuid.UUID,
    recipient_id: uuid.UUID,
    reason: MachineReason,
    agent_json: str,
) -> bytes:
    """The stored envelope of a `message.opened` event (`at` must be UTC; `agent_json` is
    the User-Agent as a JSON string literal, see `json_string`)."""
    campaign = str(campaign_id)
    head = _HEAD % (event_id, _OPENED, _OPENED_VERSION, timestamp(at), campaign)
    data = _OPENED_DATA % (campaign, recipient_id, _BOOL[bool(reason)], reason, agent_json)
    return (head + data).encode()


def clicked_json(
    event_id: str,
    at: datetime,
    campaign_id: uuid.UUID,
    recipient_id: uuid.UUID,
    link_index: int,
    url_json: str,
    reason: MachineReason,
    agent_json: str,
) -> bytes:
    """The stored envelope of a `link.clicked` event (`at` must be UTC; `url_json` and
    `agent_json` are JSON string literals)."""
    campaign = str(campaign_id)
    head = _HEAD % (event_id, _CLICKED, _CLICKED_VERSION, timestamp(at), campaign)
    data = _CLICKED_DATA % (
        campaign,
        recipient_id,
        link_index,
        url_json,
        _BOOL[bool(reason)],
        reason,
        agent_json,
    )
    return (head + data).encode()


def utc_now() -> datetime:
    return datetime.now(UTC)
