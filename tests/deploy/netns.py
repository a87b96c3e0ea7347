"""A private network of Linux network namespaces for one test run: one namespace per machine,
each with one veth into a bridge that lives in its own hub namespace, addresses from a /24 of
10.0.0.0/8 picked per run, and names unique per run. `teardown()` removes everything, and is
safe to call after a partial setup."""

from __future__ import annotations

import secrets
import subprocess
from dataclasses import dataclass, field


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@dataclass
class Network:
    run: str = field(default_factory=lambda: secrets.token_hex(3))
    hosts: dict[str, str] = field(default_factory=dict)  # name -> address
    _namespaces: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        b = int(self.run[:2], 16)
        c = int(self.run[2:4], 16)
        self.prefix = f"10.{200 + b % 50}.{c}"
        self.hub = self._add_namespace("hub")
        _ip("-n", self.hub, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.hub, "link", "set", "br0", "up")

    def ns(self, name: str) -> str:
        return f"pgws-{self.run}-{name}"

    def _add_namespace(self, name: str) -> str:
        full = self.ns(name)
        _ip("netns", "add", full)
        self._namespaces.append(full)
        _ip("-n", full, "link", "set", "lo", "up")
        return full

    def add_host(self, name: str) -> str:
        """A new namespace plugged into the bridge; returns its address."""
        index = len(self.hosts) + 10
        full = self._add_namespace(name)
        outer, inner = f"v{self.run}{index:02d}", f"p{self.run}{index:02d}"
        _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
        _ip("link", "set", outer, "netns", self.hub)
        _ip("link", "set", inner, "netns", full)
        _ip("-n", self.hub, "link", "set", outer, "master", "br0", "up")
        _ip("-n", full, "link", "set", inner, "name", "eth0")
        address = f"{self.prefix}.{index}"
        _ip("-n", full, "addr", "add", f"{address}/24", "dev", "eth0")
        _ip("-n", full, "link", "set", "eth0", "up")
        self.hosts[name] = address
        return address

    def exec_argv(self, name: str, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.ns(name), *argv]

    def teardown(self) -> None:
        for full in reversed(self._namespaces):
            subprocess.run(["ip", "netns", "del", full], capture_output=True, timeout=30)
        self._namespaces.clear()
