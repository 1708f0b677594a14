"""`pigeon up` as a user runs it: embedded servers, every service, a first admin, Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from pigeon_embedded.ports import free_port
from pigeon_testing.metrics import parse


def _start(data_dir: Path, log: Path, ports: dict[str, int]) -> subprocess.Popen[bytes]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PIGEON_DATABASE_URL", "PIGEON_NATS_URL", "PIGEON_SECRET_KEY")
    }
    env.update(
        PIGEON_DATA_DIR=str(data_dir),
        **{f"PIGEON_{name.upper()}_PORT": str(port) for name, port in ports.items()},
    )
    return subprocess.Popen(
        [sys.executable, "-m", "pigeon_cli", "up"],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} not ready:\n{log.read_text()}")


def _stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGINT)
    return process.wait(timeout=60)


def _no_children_left(data_dir: Path) -> None:
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True)
    leftovers = [line for line in ps.stdout.splitlines() if str(data_dir) in line]
    assert leftovers == []


# A metric each service exports from its own process (a labelled one may show only its
# TYPE line until first counted).
OWN_METRICS = {
    "api": "pigeon_api_requests_total",
    "projector": "pigeon_projector_lag_events",
    "sender": "pigeon_sender_messages_total",
    "tracker": "pigeon_tracker_requests_total",
    "imap_sync": "pigeon_imap_sync_runs_total",
    "mcp": "pigeon_mcp_tool_calls_total",
}


def _each_service_exports_its_metrics(ports: dict[str, int]) -> None:
    """/metrics of every process `pigeon up` runs: its own metrics, nobody else's."""
    tracker = f"http://127.0.0.1:{ports['tracker']}"
    assert httpx.get(f"{tracker}/campaigns/o/forged/p.png").status_code == 404
    time.sleep(1.5)  # the tracker's workers write their counts out every second
    texts = {}
    for name, port in ports.items():
        answer = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
        assert answer.status_code == 200, (name, answer.text)
        assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
        texts[name] = answer.text
    for name, text in texts.items():
        assert f"# TYPE {OWN_METRICS[name]} counter" in text or (
            f"# TYPE {OWN_METRICS[name]} gauge" in text
        ), (name, text[:2000])
        for other, metric in OWN_METRICS.items():
            if other != name:
                assert metric not in text, (name, metric)
    api, tracker_samples, sender = (parse(texts[n]) for n in ("api", "tracker", "sender"))
    created = {"method": "POST", "route": "/api/v1/campaigns", "status": "201"}
    assert api.get("pigeon_api_requests_total", **created) == 1
    assert tracker_samples.get("pigeon_tracker_requests_total", route="open", answer="404") == 1
    assert ("pigeon_sender_messages_total", frozenset({("outcome", "sent")})) in sender.values


def test_pigeon_up_serves_keeps_data_and_stops_cleanly(tmp_path: Path) -> None:
    data_dir = tmp_path / "pigeon-data"
    ports = {
        name: free_port() for name in ("api", "projector", "sender", "tracker", "imap_sync", "mcp")
    }
    api = f"http://127.0.0.1:{ports['api']}"
    log = tmp_path / "up.log"
    process = _start(data_dir, log, ports)
    try:
        _wait_ready(f"{api}/readyz", process, log)
        for name in ("projector", "sender", "tracker", "imap_sync", "mcp"):
            port = ports[name]
            _wait_ready(f"http://127.0.0.1:{port}/readyz", process, log)
            assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
        assert httpx.get(f"{api}/healthz").json() == {"status": "ok"}
        output = log.read_text()
        token = re.search(r"token:\s+(pgn_\S+)", output)
        assert token, output
        assert re.search(r"password:\s+\S{16,}", output)
        assert f"Admin:         {api}/admin/" in output
        assert httpx.get(f"{api}/admin/login").status_code == 200
        auth = {"Authorization": f"Bearer {token.group(1)}"}
        created = httpx.post(
            f"{api}/api/v1/campaigns",
            headers=auth,
            json={"name": "Kept", "subject": "Hi", "template_markdown": "Hello"},
        )
        assert created.status_code == 201, created.text
        _each_service_exports_its_metrics(ports)
    finally:
        code = _stop(process)
    assert code == 0, log.read_text()
    assert "Traceback" not in log.read_text()
    _no_children_left(data_dir)

    log2 = tmp_path / "up2.log"
    process = _start(data_dir, log2, ports)
    try:
        _wait_ready(f"{api}/readyz", process, log2)
        assert "First administrator" not in log2.read_text()
        campaigns = httpx.get(f"{api}/api/v1/campaigns", headers=auth).json()
        assert [c["name"] for c in campaigns["data"]] == ["Kept"]
    finally:
        assert _stop(process) == 0
    _no_children_left(data_dir)
