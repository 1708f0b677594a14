"""Send-chunk jobs on the JOBS work queue, and the KV buckets the sender keeps state in."""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Awaitable, Iterable, Iterator
from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, KeyValueConfig, PubAck, StorageType
from nats.js.errors import BucketNotFoundError, NotFoundError
from pydantic import BaseModel, ConfigDict

from pigeon_common.jetstream import JOB_SUBJECT_PREFIX, JOBS_STREAM, Header, store_nowait

SEND_SUBJECT = f"{JOB_SUBJECT_PREFIX}.send"
SENDER_CONSUMER = "sender"
CLAIMS_BUCKET = "pigeon_claims"
RATES_BUCKET = "pigeon_rates"
RUNS_BUCKET = "pigeon_runs"
COPIES_BUCKET = "pigeon_copies"
JOB_ACK_WAIT_SEC = 6.0
COPIES_TTL_SEC = 14 * 86400
KV_STREAM_PREFIX = "KV_"  # JetStream keeps bucket B in the stream KV_B
UUID_BYTES = 16
# Jobs awaiting their acks at once while a run is enqueued (10,000 at a million
# recipients: all at once held every job's bytes until the last ack).
CHUNK_WINDOW = 64


class SendChunk(BaseModel):
    """One job: send campaign `campaign_id` (run `run_id`) to these recipients."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    campaign_id: uuid.UUID
    run_id: uuid.UUID
    chunk_index: int
    recipient_ids: list[uuid.UUID]
    sleep_before_sec: float = 0.0


@dataclass(frozen=True, slots=True)
class PackedIds:
    """Recipient ids in send order, 16 bytes each: a million take 16 MB here, where a
    list of UUID objects (and the rows they came in) took about 200 MB."""

    data: bytes

    def __len__(self) -> int:
        return len(self.data) // UUID_BYTES

    def chunks(self, size: int) -> Iterator[list[uuid.UUID]]:
        """Consecutive groups of `size` ids (the last one shorter), made as they are read."""
        step = size * UUID_BYTES
        for start in range(0, len(self.data), step):
            block = self.data[start : start + step]
            offsets = range(0, len(block), UUID_BYTES)
            yield [uuid.UUID(bytes=block[i : i + UUID_BYTES]) for i in offsets]

    def chunk_count(self, size: int) -> int:
        return -(-len(self) // size)


async def publish_chunks(
    js: JetStreamContext, chunks: Iterable[SendChunk], *, window: int = CHUNK_WINDOW
) -> None:
    """Enqueue jobs, up to `window` of them awaiting their acks at a time (`chunks` is read
    as it is sent); a job re-published in the window is dropped. Raises
    PublishFailedError when a job could not be stored within the retry window."""
    waiting: deque[Awaitable[PubAck]] = deque()
    for chunk in chunks:
        if len(waiting) >= window:
            await waiting.popleft()
        waiting.append(
            await store_nowait(
                js,
                SEND_SUBJECT,
                chunk.model_dump_json().encode(),
                {Header.MSG_ID: f"chunk:{chunk.campaign_id}:{chunk.run_id}:{chunk.chunk_index}"},
                stream=JOBS_STREAM,
            )
        )
    while waiting:
        await waiting.popleft()


def sender_consumer_config(ack_wait_sec: float = JOB_ACK_WAIT_SEC) -> ConsumerConfig:
    return ConsumerConfig(
        durable_name=SENDER_CONSUMER,
        filter_subject=SEND_SUBJECT,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=ack_wait_sec,
        max_deliver=-1,
        max_ack_pending=1000,
    )


BUCKETS: tuple[tuple[str, str], ...] = (
    (CLAIMS_BUCKET, "who is being / was sent to: <campaign>.<recipient> -> outcome"),
    (RATES_BUCKET, "per-mailbox send counters per second, hour and day window"),
    (RUNS_BUCKET, "chunks finished per campaign run"),
    (COPIES_BUCKET, "bytes of sent messages whose Sent copy is not filed yet"),
)
# Claims are kept for good (they are the no-resend promise); the rest expire.
TTL_SEC: dict[str, float | None] = {CLAIMS_BUCKET: None, COPIES_BUCKET: COPIES_TTL_SEC}


async def _set_bucket_replicas(js: JetStreamContext, bucket: str, replicas: int) -> bool:
    """Give an existing bucket (a stream `KV_<bucket>`) `replicas` copies, as the streams
    are given theirs; True when it had another count."""
    info = await js.stream_info(f"{KV_STREAM_PREFIX}{bucket}")
    if (info.config.num_replicas or 1) == replicas:
        return False
    await js.update_stream(info.config.evolve(num_replicas=replicas))
    return True


async def provision_sending(
    js: JetStreamContext, replicas: int = 1, ack_wait_sec: float = JOB_ACK_WAIT_SEC
) -> list[str]:
    """Create the KV buckets and the sender's durable consumer if they are missing, and
    give existing buckets `replicas` copies."""
    changed: list[str] = []
    for name, description in BUCKETS:
        try:
            await js.key_value(name)
            if await _set_bucket_replicas(js, name, replicas):
                changed.append(f"updated bucket {name}: {replicas} replicas")
        except BucketNotFoundError:
            await js.create_key_value(
                KeyValueConfig(
                    bucket=name,
                    description=description,
                    history=1,
                    storage=StorageType.FILE,
                    replicas=replicas,
                    ttl=TTL_SEC.get(name, 3 * 86400),
                )
            )
            changed.append(f"created bucket {name}")
    try:
        info = await js.consumer_info(JOBS_STREAM, SENDER_CONSUMER)
    except NotFoundError:
        await js.add_consumer(JOBS_STREAM, sender_consumer_config(ack_wait_sec))
        changed.append(f"created consumer {SENDER_CONSUMER}")
        return changed
    if info.config.ack_wait != ack_wait_sec:
        # A consumer made with another ack wait (an older default of 60 s) is updated:
        # the ack wait decides how soon a dead sender's chunk is taken over.
        await js.add_consumer(JOBS_STREAM, sender_consumer_config(ack_wait_sec))
        changed.append(f"updated consumer {SENDER_CONSUMER}: ack wait {ack_wait_sec} s")
    return changed
