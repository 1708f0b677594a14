"""Services wait for their servers instead of crashing, and say why on /readyz."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pigeon_embedded.nats import NatsServer
from pigeon_embedded.ports import free_port
from pigeon_embedded.postgres import PostgresServer
from pigeon_testing.stack import migrate


def _pigeon(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "pigeon_cli", *args], env=env, stdout=handle, stderr=handle
    )


async def _wait_for(url: str, status: int, contains: str = "", timeout: float = 30) -> str:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last = ""
    async with httpx.AsyncClient(timeout=3) as client:
        while loop.time() < deadline:
            try:
                response = await client.get(url)
                last = f"{response.status_code} {response.text}"
                if response.status_code == status and contains in response.text:
                    return response.text
            except httpx.HTTPError as exc:
                last = repr(exc)
            await asyncio.sleep(0.1)
    raise AssertionError(f"{url} never answered {status} with {contains!r}; last: {last}")


@pytest.fixture
def service_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {
        **os.environ,
        "PIGEON_NATS_URL": f"nats://127.0.0.1:{free_port()}",
        "PIGEON_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/postgres",
        "PIGEON_SECRET_KEY": secrets.token_urlsafe(40),
        "PIGEON_API_PORT": str(free_port()),
        "PIGEON_PROJECTOR_PORT": str(free_port()),
        "PIGEON_DATA_DIR": str(tmp_path / "data"),
    }
    yield env


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


async def test_services_wait_for_servers_and_recover(tmp_path: Path, service_env) -> None:
    api_url = f"http://127.0.0.1:{service_env['PIGEON_API_PORT']}"
    projector_url = f"http://127.0.0.1:{service_env['PIGEON_PROJECTOR_PORT']}"
    api = _pigeon(["serve", "api"], service_env, tmp_path / "api.log")
    projector = _pigeon(["serve", "projector"], service_env, tmp_path / "projector.log")
    nats = NatsServer(tmp_path / "nats", port=_port(service_env["PIGEON_NATS_URL"]))
    postgres = PostgresServer(
        tmp_path / "pg", port=_port(service_env["PIGEON_DATABASE_URL"]), fsync=False
    )
    try:
        await _wait_for(f"{api_url}/healthz", 200)
        await _wait_for(f"{api_url}/readyz", 503, "NATS")
        await _wait_for(f"{projector_url}/readyz", 503, "NATS")
        await asyncio.sleep(2)  # several failed attempts
        assert api.poll() is None and projector.poll() is None

        (tmp_path / "nats").mkdir()
        nats.start()
        await _wait_for(f"{api_url}/readyz", 503, "PostgreSQL")
        postgres.start()
        await migrate(postgres.url)
        await _wait_for(f"{api_url}/readyz", 200, "ready")
        await _wait_for(f"{projector_url}/readyz", 200, "ready")

        postgres.stop()
        await _wait_for(f"{api_url}/readyz", 503, "PostgreSQL")
        postgres.start()
        await _wait_for(f"{api_url}/readyz", 200, "ready")
        await _wait_for(f"{projector_url}/readyz", 200, "ready", timeout=40)

        nats.stop()
        await _wait_for(f"{api_url}/readyz", 503, "NATS")
        nats.start()
        await _wait_for(f"{api_url}/readyz", 200, "ready")
    finally:
        for process in (api, projector):
            process.send_signal(signal.SIGTERM)
        for process in (api, projector):
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        postgres.stop()
        nats.stop()
    for name in ("api.log", "projector.log"):
        log = (tmp_path / name).read_text()
        assert "Traceback" not in log, log
        assert "retrying in" in log
    assert api.returncode == 0 and projector.returncode == 0


@pytest.mark.parametrize(
    ("variable", "value"),
    [("PIGEON_API_PORT", "eighty"), ("PIGEON_BATCH_SIZE", "0"), ("PIGEON_SECRET_KEY", "short")],
)
def test_invalid_setting_is_one_clear_line(service_env, variable: str, value: str) -> None:
    env = {**service_env, variable: value}
    result = subprocess.run(
        [sys.executable, "-m", "pigeon_cli", "serve", "api"],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1, result.stderr.decode()
    assert variable in lines[0]
    if variable == "PIGEON_SECRET_KEY":
        assert value not in lines[0]


async def test_a_write_answered_503_while_nats_is_away_is_never_stored_later(
    tmp_path: Path, fresh_database: str
) -> None:
    """No reconnect buffer: a publish that failed (and was answered 503, so the client may
    retry) must not be sent after NATS comes back, or the retry would store it twice."""
    from pigeon_common.jetstream import EVENTS_STREAM, connect_nats
    from pigeon_testing.stack import Stack, stack_settings

    nats = NatsServer(tmp_path / "nats", port=free_port())
    nats.start()
    stack = Stack(stack_settings(fresh_database, nats.url, tmp_path / "data"))
    try:
        await stack.start()
        client = stack.client
        assert client is not None
        body = {"name": "Kept once", "subject": "Hi", "template_markdown": "Hello"}
        assert (await client.post("/api/v1/campaigns", json=body)).status_code == 201
        nats.stop()
        answer = await client.post("/api/v1/campaigns", json={**body, "name": "Refused"})
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"]["code"] == "event_store_unavailable"
        nats.start()
        await stack.wait_ready("/readyz")
        await asyncio.sleep(3)  # time for a buffered publish to go out, were there one
        nc = await connect_nats(nats.url, name="test", attempts=3)
        try:
            stored = (await nc.jetstream().stream_info(EVENTS_STREAM)).state.messages
        finally:
            await nc.close()
        assert stored == 1
        names = [c["name"] for c in (await client.get("/api/v1/campaigns")).json()["data"]]
        assert names == ["Kept once"]
    finally:
        await stack.close()
        nats.stop()
