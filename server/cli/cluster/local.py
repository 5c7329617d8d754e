"""``takan cluster``: Takan as several nodes on this machine, behind one URL, until Ctrl-C.

A PostgreSQL cluster (``initdb``, its own directory), SeaweedFS (the archive: S3 with object
lock), ``--nodes`` nodes (``takan serve --node nK``, one data directory, one database) and nginx
in front (``/n/nK/…`` to each node, everything else to any). The demo users are made on the empty
database and their passwords printed once. Ctrl-C (or SIGTERM) stops everything it started, the
nodes first; the directory is removed unless ``--keep``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from server.cli.cluster.nginx import NginxProxy, Node
from server.cli.cluster.parser import MAX_NODES
from server.cli.cluster.postgres import PostgresCluster
from server.cli.cluster.process import ClusterError, end_process, free_port, launch
from server.cli.cluster.seaweedfs import SeaweedFs

BUCKET = "takan-archive"
NODE_START_TIMEOUT_S = 60.0
NODE_STOP_TIMEOUT_S = 30.0


@dataclass
class NodeProcess:
    name: str
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=1) as answer:
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError):
        return False


class LocalCluster:
    def __init__(self, root: Path, nodes: int, port: int) -> None:
        self.root = root
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.node_processes = [
            NodeProcess(f"n{k}", free_port(), root / "logs" / f"n{k}.log")
            for k in range(1, nodes + 1)
        ]
        self.postgres: PostgresCluster | None = None
        self.seaweed: SeaweedFs | None = None
        self.nginx: NginxProxy | None = None
        self.passwords: list[str] = []  # the demo users' lines, as takan serve printed them
        self._access_key = "takan-" + secrets.token_hex(4)
        self._secret_key = secrets.token_urlsafe(24)

    def start(self) -> None:
        (self.root / "logs").mkdir(parents=True, exist_ok=True)
        self.postgres = PostgresCluster.start(self.root / "postgres")
        self.seaweed = SeaweedFs(
            self.root / "seaweedfs", free_port(), self._access_key, self._secret_key
        )
        self.seaweed.start()
        self.nginx = NginxProxy.start(
            self.root / "nginx",
            [Node(n.name, "127.0.0.1", n.port) for n in self.node_processes],
            port=self.port,
        )
        for node in self.node_processes:  # one at a time: the first makes the keys and users
            self._start_node(node, demo_users=node is self.node_processes[0])

    def restart(self, name: str) -> None:
        """Start node ``name`` again (after it exited or was killed)."""
        [node] = [n for n in self.node_processes if n.name == name]
        if node.process is not None and node.process.poll() is None:
            raise ClusterError(f"node {name} is running")
        self._start_node(node, demo_users=False)

    def _start_node(self, node: NodeProcess, *, demo_users: bool) -> None:
        if self.postgres is None or self.seaweed is None:
            raise ClusterError("PostgreSQL and SeaweedFS start before the nodes")
        storage = (
            f"minio://{self.seaweed.endpoint}/{BUCKET}?secure=false&retention=GOVERNANCE"
            f"&days=1&region={self.seaweed.region}"
        )
        command = [
            sys.executable, "-m", "server.cli", "serve",
            "--host", "127.0.0.1", "--port", str(node.port),
            "--data", str(self.root / "data"),
            "--database", self.postgres.url(),
            "--storage", storage,
            "--node", node.name, "--advertise-url", f"{self.url}/n/{node.name}",
            "--public-url", self.url, "--trusted-proxy", "127.0.0.1/32",
            *(["--demo-users"] if demo_users else []),
        ]  # fmt: skip
        env = {
            **os.environ,
            "TAKAN_S3_ACCESS_KEY": self._access_key,
            "TAKAN_S3_SECRET_KEY": self._secret_key,
        }
        node.process = launch(
            command,
            name=f"node {node.name}",
            log=node.log,
            ready=lambda: _healthy(node.port),
            env=env,
            timeout_s=NODE_START_TIMEOUT_S,
        )
        if demo_users:
            text = node.log.read_text(errors="replace")
            self.passwords = [
                line.strip()
                for line in text.splitlines()
                if line.startswith("  ")
                and line.split()[:1] in (["inspector"], ["auditor"], ["admin"])
            ]

    def stop(self) -> None:
        """Everything started, in reverse: the nodes (SIGTERM: they hang up and close their
        recordings), nginx, SeaweedFS, PostgreSQL. Each is stopped even if another fails."""
        for node in reversed(self.node_processes):
            if node.process is not None:
                with contextlib.suppress(OSError):
                    end_process(node.process, signal.SIGTERM, NODE_STOP_TIMEOUT_S)
                node.process = None
        for part in (self.nginx, self.seaweed, self.postgres):
            if part is not None:
                with contextlib.suppress(ClusterError, OSError):
                    part.stop()

    def lines(self) -> list[str]:
        nodes = ", ".join(
            f"{n.name} (127.0.0.1:{n.port}, pid {n.process.pid if n.process else '-'})"
            for n in self.node_processes
        )
        return [
            f"Takan cluster on {self.url}  ({len(self.node_processes)} nodes: {nodes})",
            f"  sign in:    {self.url}/login",
            "  demo users (passwords shown once):",
            *(f"    {line}" for line in self.passwords),
            f"  PostgreSQL: {self.postgres.url() if self.postgres else '-'}",
            f"  archive:    SeaweedFS {self.seaweed.endpoint if self.seaweed else '-'},"
            f" bucket {BUCKET}",
            f"  logs:       {self.root / 'logs'} (each node), {self.root / 'nginx'}",
            "  Ctrl-C stops everything",
        ]


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    stopping = threading.Event()
    previous = {
        s: signal.signal(s, lambda *_: stopping.set()) for s in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield stopping
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_cluster(args: argparse.Namespace) -> int:
    if not 1 <= args.nodes <= MAX_NODES:
        print(f"takan cluster: --nodes must be 1 to {MAX_NODES}", file=sys.stderr)
        return 2
    made = args.dir is None
    root = Path(tempfile.mkdtemp(prefix="takan-cluster-")) if made else args.dir.resolve()
    root.chmod(0o755)  # PostgreSQL, started as root, runs as its own user and must enter it
    cluster = LocalCluster(root, args.nodes, args.port)
    with _stop_on_signals() as stopping:
        try:
            cluster.start()
        except (ClusterError, ValueError) as exc:
            cluster.stop()
            print(f"takan cluster: {exc}", file=sys.stderr)
            return 1
        try:
            print("\n".join(cluster.lines()), flush=True)
            while not stopping.wait(0.5):
                dead = [
                    n.name
                    for n in cluster.node_processes
                    if n.process and n.process.poll() is not None
                ]
                if dead:
                    print(f"takan cluster: node {', '.join(dead)} exited (see its log)", flush=True)
                    for node in cluster.node_processes:
                        if node.name in dead:
                            node.process = None
            print("stopping …", flush=True)
        finally:
            started = time.monotonic()
            cluster.stop()
            if made and not args.keep:
                shutil.rmtree(root, ignore_errors=True)
            print(f"stopped in {time.monotonic() - started:.1f} s", flush=True)
    return 0
