"""A private Redis Cluster for tests: three masters, each with a replica, on free ports.

Every node listens on 127.0.0.1, keeps nothing on disk but its cluster
configuration (in a temporary directory), and is killed when the context
ends. ``cluster-node-timeout`` is short so that a killed master's replica
takes over within a couple of seconds.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import skip_or_fail
from tests.private_redis import free_port

NODE_TIMEOUT_MS = 500
"""How long a node may be silent before the others count it as failing."""


def _node_port() -> int:
    """A free port whose cluster bus port (10000 above it) is free too."""
    while True:
        port = free_port()
        if port < 55536 and port_is_free(port + 10000):
            return port


def _ask(port: int, *command: str, timeout: float = 1.0) -> str:
    """One command through redis-cli; its output, or "" if the node does not answer."""
    try:
        done = subprocess.run(
            ["redis-cli", "-h", "127.0.0.1", "-p", str(port), *command],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return ""
    return done.stdout


class PrivateCluster:
    """Six ``redis-server`` processes in cluster mode: three masters and their replicas."""

    def __init__(self, directory: str, masters: int = 3, replicas: int = 1) -> None:
        self.directory = Path(directory)
        self.replicas = replicas
        self.ports = [_node_port() for _ in range(masters * (1 + replicas))]
        self.processes: dict[int, subprocess.Popen[bytes]] = {}
        self.frozen: set[int] = set()

    @property
    def url(self) -> str:
        """``redis+cluster://`` naming two of the nodes (the client finds the rest)."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports[:2])

    def _start_node(self, port: int) -> None:
        node_dir = self.directory / str(port)
        node_dir.mkdir(exist_ok=True)
        self.processes[port] = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                str(NODE_TIMEOUT_MS),
                "--dir",
                str(node_dir),
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "no",
                # A replica must have synced before its master fails, or it
                # will not take over: sync at once rather than after 5 s.
                "--repl-diskless-sync-delay",
                "0",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def start(self) -> None:
        """Start every node, make them one cluster, and wait until it serves every slot."""
        for port in self.ports:
            self._start_node(port)
        deadline = time.monotonic() + 10
        for port in self.ports:
            while "PONG" not in _ask(port, "ping"):
                if self.processes[port].poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the cluster node on port {port} did not start")
                time.sleep(0.02)
        created = subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *(f"127.0.0.1:{p}" for p in self.ports),
                "--cluster-replicas",
                str(self.replicas),
                "--cluster-yes",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if created.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {created.stdout[-2000:]}")
        self.wait_until_ok(self.ports)
        self.wait_until_synced()

    def wait_until_ok(self, ports: list[int], seconds: float = 20.0) -> None:
        """Wait until every node of ``ports`` says the cluster is ok and knows every node."""
        deadline = time.monotonic() + seconds
        for port in ports:
            while True:
                info = _ask(port, "cluster", "info")
                if "cluster_state:ok" in info and f"cluster_known_nodes:{len(self.ports)}" in info:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the cluster is not ok on port {port}: {info!r}")
                time.sleep(0.05)

    def wait_until_synced(self, seconds: float = 20.0) -> None:
        """Wait until every replica has its master's data (its link up)."""
        expected = len(self.ports) // (1 + self.replicas) * self.replicas
        deadline = time.monotonic() + seconds
        while True:
            infos = [_ask(port, "info", "replication") for port in self.processes]
            if sum("master_link_status:up" in info for info in infos) == expected:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the replicas did not sync: {infos!r}")
            time.sleep(0.05)

    def master_of(self, key: str) -> int:
        """The port of the running master that holds ``key``'s slot now (else ``LookupError``)."""
        alive = next(p for p in self.processes if p not in self.frozen)
        slot = int(_ask(alive, "cluster", "keyslot", key).strip())
        for line in _ask(alive, "cluster", "nodes").splitlines():
            fields = line.split()
            if len(fields) < 8 or "master" not in fields[2] or "fail" in fields[2]:
                continue
            port = int(fields[1].split("@")[0].rsplit(":", 1)[1])
            if port not in self.processes or port in self.frozen:
                continue  # stopped here, though the others may not have noticed yet
            for spec in fields[8:]:
                low, _, high = spec.partition("-")
                if low.isdigit() and int(low) <= slot <= int(high or low):
                    return port
        raise LookupError(f"no master holds slot {slot}")

    def kill(self, port: int) -> None:
        """Kill one node at once (SIGKILL): its data not replicated yet is lost."""
        self.frozen.discard(port)
        process = self.processes.pop(port)
        process.kill()
        process.wait(5)

    def freeze(self, port: int) -> None:
        """Stop one node (SIGSTOP): it keeps its connections open and never answers."""
        os.kill(self.processes[port].pid, signal.SIGSTOP)
        self.frozen.add(port)

    def stop(self) -> None:
        """Kill every node still running."""
        for port in list(self.processes):
            self.kill(port)


@contextlib.contextmanager
def private_cluster(replicas: int = 1) -> Iterator[PrivateCluster]:
    """A running private Redis Cluster, killed and removed afterwards; skips without Redis."""
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        skip_or_fail("redis-server or redis-cli is not on PATH")
    directory = tempfile.mkdtemp(prefix="sysevents-cluster-")
    cluster = PrivateCluster(directory, replicas=replicas)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(directory, ignore_errors=True)


def port_is_free(port: int) -> bool:
    """Whether nothing listens on ``port`` any more."""
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0
