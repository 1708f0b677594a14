"""Network namespaces as separate hosts on one machine, for partition drills (root only).

`Hosts(n)` makes one namespace per host, each with one address on a private /24, all
joined by a bridge in a hub namespace of their own; this (the caller's) namespace gets
one more veth into the hub with a client address, so the services here reach every host
while nothing is bound outside the namespaces made here. `cut(i)` takes host i's link
down (it is partitioned from the others and from the clients), `heal(i)` brings it back.
`destroy()` removes every namespace and link it made.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from types import TracebackType
from typing import Self

CLIENT_HOST = 254


def available() -> bool:
    """True when this process may make network namespaces (root with `ip`)."""
    return os.geteuid() == 0 and shutil.which("ip") is not None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


class Hosts:
    """`size` namespaces `<prefix>-h1...` on 10.<a>.<b>.1... with a hub and a client link."""

    def __init__(self, size: int, *, tag: str | None = None) -> None:
        tag = tag or f"{os.getpid() % 0xFFFF:04x}"
        self.prefix = f"pd{tag}"
        self.size = size
        number = int(tag, 16)
        self.subnet = f"10.{200 + number % 50}.{number % 250}"
        self.hub = f"{self.prefix}-hub"
        self._made: list[str] = []

    def namespace(self, i: int) -> str:
        return f"{self.prefix}-h{i}"

    def address(self, i: int) -> str:
        return f"{self.subnet}.{i}"

    def exec_prefix(self, i: int) -> list[str]:
        """The command prefix that runs a program on host i."""
        return ["ip", "netns", "exec", self.namespace(i)]

    def _hub_end(self, i: int) -> str:
        return f"{self.prefix}b{i}"

    def create(self) -> None:
        try:
            self._create()
        except BaseException:
            self.destroy()
            raise

    def _create(self) -> None:
        _ip("netns", "add", self.hub)
        self._made.append(self.hub)
        hub = ["-n", self.hub]
        _ip(*hub, "link", "add", "br0", "type", "bridge")
        _ip(*hub, "link", "set", "br0", "up")
        for i in range(1, self.size + 1):
            ns = self.namespace(i)
            _ip("netns", "add", ns)
            self._made.append(ns)
            inner, outer = f"{self.prefix}a{i}", self._hub_end(i)
            _ip("link", "add", inner, "netns", ns, "type", "veth", "peer", outer, "netns", self.hub)
            _ip("-n", ns, "addr", "add", f"{self.address(i)}/24", "dev", inner)
            _ip("-n", ns, "link", "set", inner, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip(*hub, "link", "set", outer, "master", "br0")
            _ip(*hub, "link", "set", outer, "up")
        # The clients' link: this namespace gets an address on the subnet, nothing more.
        here, there = f"{self.prefix}c", f"{self.prefix}bc"
        _ip("link", "add", here, "type", "veth", "peer", there, "netns", self.hub)
        self._made.append(here)
        _ip("addr", "add", f"{self.subnet}.{CLIENT_HOST}/24", "dev", here)
        _ip("link", "set", here, "up")
        _ip(*hub, "link", "set", there, "master", "br0")
        _ip(*hub, "link", "set", there, "up")

    def cut(self, i: int) -> None:
        """Partition host i from every other host and from the clients."""
        _ip("-n", self.hub, "link", "set", self._hub_end(i), "down")

    def heal(self, i: int) -> None:
        _ip("-n", self.hub, "link", "set", self._hub_end(i), "up")

    def destroy(self) -> None:
        for name in reversed(self._made):
            if name.startswith(f"{self.prefix}-"):
                subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)
            else:  # the client link in this namespace (its peer goes with the hub)
                subprocess.run(["ip", "link", "del", name], capture_output=True, timeout=10)
        self._made.clear()

    def __enter__(self) -> Self:
        self.create()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.destroy()
