"""Real S3 servers for the tests, on loopback: LocalStack 4.9.2 here, SeaweedFS in
``tests/seaweedfs_server.py``; both behind ``S3Server`` (start, stop, restart, a client, a
``MinioStorage`` of a bucket), so fixtures run the same tests against each.

LocalStack (S3 only) runs in its own venv: ``make localstack`` installs it into
``.localstack-venv`` (its pins never touch ours). The environment below keeps it off the network:
no TLS certificate download, no analytics, no DNS server, host mode (so its files stay in the
test's data dir, not in /var/lib/localstack), and the launcher skips its one DNS lookup (checked
with strace: only loopback connections remain).

LocalStack community keeps S3 in memory: a restarted server is empty (``PERSISTENCE=1`` is a
LocalStack Pro feature; its community build has no snapshot plugin). ``S3Server.dump()`` and
``restore()`` stand in for the disk a real MinIO (or SeaweedFS, ``keeps_data``) keeps across
restarts. Its ``If-None-Match: *`` is not atomic (two racing writers can both create a key) and
it checks no credentials: tests of those ask ``atomic_create`` and ``checks_credentials``.

``TcpGate`` is a plain TCP forwarder that can refuse connections for a while (what a client sees
while an S3 server is down, restarting, or unreachable) or change bytes in transit.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import selectors
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from minio import Minio

from recorder.minio_storage import MinioStorage
from recorder.storage import is_object_key
from server.cli.cluster.process import end_process, launch

REPO = Path(__file__).resolve().parent.parent
LOCALSTACK_VENV = REPO / ".localstack-venv"
LOCALSTACK_PYTHON = LOCALSTACK_VENV / "bin" / "python"
ACCESS_KEY = "test"
SECRET_KEY = "test"
REGION = "us-east-1"
START_TIMEOUT_S = 60.0
# localstack.runtime.main, but without the one DNS lookup no setting turns off: the S3 website
# handler resolves s3.localhost.localstack.cloud to choose its internal endpoint (4.9.2).
LAUNCHER = (
    "import localstack.utils.aws.aws_stack as stack; stack.CACHE_S3_HOSTNAME_DNS_STATUS = False; "
    "from localstack.runtime.main import main; main()"
)
STOP_TIMEOUT_S = 15.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def localstack_missing() -> str | None:
    """Why LocalStack cannot run here, or None if it is installed."""
    if not LOCALSTACK_PYTHON.exists():
        return (
            f"LocalStack (the tests' S3 server) is not installed in {LOCALSTACK_VENV}:"
            " run `make localstack` (`make test` does it)"
        )
    return None


def localstack_env(port: int, root: Path) -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL")
    env = {name: os.environ[name] for name in keep if name in os.environ}
    (root / "tmp").mkdir(parents=True, exist_ok=True)
    env.update(
        SERVICES="s3",
        GATEWAY_LISTEN=f"127.0.0.1:{port}",
        # Host mode, all files under root (in a container it would use /var/lib/localstack).
        OVERRIDE_IN_DOCKER="0",
        FILESYSTEM_ROOT=str(root),
        TMPDIR=str(root / "tmp"),
        # Nothing from the network at run time.
        SKIP_SSL_CERT_DOWNLOAD="1",
        DISABLE_EVENTS="1",
        DNS_ADDRESS="0",
        SKIP_INFRA_DOWNLOADS="1",
    )
    return env


@dataclass
class S3Server:
    """One S3 server process on loopback; ``stop()`` and ``start()`` keep its ports and data dir."""

    port: int
    root: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    name: ClassVar[str] = "s3"
    # What this server does like AWS S3 and MinIO, and what it does not:
    keeps_data: ClassVar[bool] = True  # objects and their retention survive a restart
    atomic_create: ClassVar[bool] = True  # of racing If-None-Match: * writers, one wins
    checks_credentials: ClassVar[bool] = True  # a wrong secret key is refused
    verbatim_keys: ClassVar[bool] = True  # stores ``a\\b`` and ``a//b`` under those names

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, bucket: str, port: int | None = None, days: int = 1) -> str:
        """The ``--storage`` URL of ``bucket`` (through ``port`` if given: a TcpGate)."""
        return (
            f"minio://{ACCESS_KEY}:{SECRET_KEY}@127.0.0.1:{port or self.port}/{bucket}"
            f"?secure=false&retention=GOVERNANCE&days={days}&region={REGION}"
        )

    def storage(self, bucket: str, days: int = 1) -> MinioStorage:
        return MinioStorage(
            self.endpoint, ACCESS_KEY, SECRET_KEY, bucket, secure=False, region=REGION,
            retention_days=days,
        )  # fmt: skip

    def client(self) -> Minio:
        return Minio(self.endpoint, ACCESS_KEY, SECRET_KEY, secure=False, region=REGION)

    @property
    def log(self) -> Path:
        return self.root / f"{self.name}.log"

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def _launch(
        self, command: list[str], env: dict[str, str], ready: Callable[[], bool], poll_s: float
    ) -> None:
        """Start ``command`` in its own session, logging to ``log``, and wait until ``ready``
        (ended, and the log's tail raised, if it exits or ``START_TIMEOUT_S`` passes)."""
        self.process = launch(
            command,
            name=f"{self.name} on {self.endpoint}",
            log=self.log,
            ready=ready,
            env=env,
            cwd=self.root,
            poll_s=poll_s,
            timeout_s=START_TIMEOUT_S,
        )
        self.starts += 1

    def _end_process(self, how: signal.Signals) -> None:
        """Signal the process's group with ``how`` and wait (SIGKILL after ``STOP_TIMEOUT_S``)."""
        process, self.process = self.process, None
        if process is not None:
            end_process(process, how, STOP_TIMEOUT_S)

    def discard(self) -> None:
        """End a server whose data nobody reads again (a test's or the session's own)."""
        self.stop()

    def restart(self) -> None:
        """Stop and start again: same ports, same data dir."""
        self.stop()
        self.start()

    def dump(self) -> dict[str, dict[str, bytes]]:
        """Every object of every bucket (latest versions): what a restart must give back."""
        client = self.client()
        contents: dict[str, dict[str, bytes]] = {}
        for bucket in client.list_buckets():
            objects: dict[str, bytes] = {}
            for obj in client.list_objects(bucket.name, recursive=True):
                assert obj.object_name is not None
                response = client.get_object(bucket.name, obj.object_name)
                try:
                    objects[obj.object_name] = response.read()
                finally:
                    response.close()
                    response.release_conn()
            contents[bucket.name] = objects
        return contents

    def restore(self, contents: dict[str, dict[str, bytes]]) -> None:
        """Put back what ``dump()`` returned, in buckets with object lock, through MinioStorage;
        keys no object can have (planted by tests with the plain client) with the plain client."""
        client = self.client()
        for bucket, objects in contents.items():
            storage = self.storage(bucket)
            storage.list("")  # creates the bucket, with object lock
            for key, data in objects.items():
                if is_object_key(key):
                    storage.put(key, data, hashlib.sha256(data).hexdigest())
                else:
                    client.put_object(bucket, key, io.BytesIO(data), len(data))


@dataclass
class LocalStackServer(S3Server):
    """One LocalStack process; ``stop()`` and ``start()`` keep its port and its data dir."""

    name: ClassVar[str] = "localstack"
    keeps_data: ClassVar[bool] = False
    atomic_create: ClassVar[bool] = False
    checks_credentials: ClassVar[bool] = False

    def healthy(self) -> bool:
        url = f"http://{self.endpoint}/_localstack/health"
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                body = response.read()
        except (urllib.error.URLError, OSError):
            return False
        return b'"s3": "running"' in body or b'"s3": "available"' in body

    def start(self) -> None:
        if self.process is not None:
            raise RuntimeError("LocalStack is already running")
        missing = localstack_missing()
        if missing:
            raise RuntimeError(missing)
        self.root.mkdir(parents=True, exist_ok=True)
        command = [str(LOCALSTACK_PYTHON), "-c", LAUNCHER]
        self._launch(command, localstack_env(self.port, self.root), self.healthy, 0.1)

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL); its port refuses connections afterwards."""
        self._end_process(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while self.healthy() and time.monotonic() < deadline:
            time.sleep(0.1)


class TcpGate:
    """Forwards 127.0.0.1:port to a target port; ``close()`` makes the port refuse connections
    (and cuts open ones), ``open()`` listens on the same port again."""

    def __init__(
        self, target_port: int, port: int | None = None, rewrite: tuple[bytes, bytes] = (b"", b"")
    ) -> None:
        """``rewrite``: (old, new) replaced in what clients send, to tamper with bodies in
        transit (both the same length)."""
        if len(rewrite[0]) != len(rewrite[1]):
            raise ValueError("rewrite must keep the length")
        self.target_port = target_port
        self.rewrite = rewrite
        self.port = port or free_port()
        self._listener: socket.socket | None = None
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def open(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        self._stopping.clear()
        self._thread = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stopping.set()
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        with self._lock:
            connections, self._connections = self._connections, set()
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def _accept(self, listener: socket.socket) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._connections |= {client, upstream}
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(a, selectors.EVENT_READ, b)
            selector.register(b, selectors.EVENT_READ, a)
            try:
                while a.fileno() != -1 and b.fileno() != -1:  # close() cuts both
                    for key, _ in selector.select(timeout=0.5):
                        source: socket.socket = key.fileobj  # type: ignore[assignment]
                        data = source.recv(1 << 16)
                        if not data:
                            return
                        if source is a and self.rewrite[0]:
                            data = data.replace(*self.rewrite)
                        key.data.sendall(data)
            except OSError:
                return
            finally:
                with self._lock:
                    self._connections -= {a, b}
                for conn in (a, b):
                    with contextlib.suppress(OSError):
                        conn.close()
