"""A local TURN server for the tests: Debian's coturn (``turnserver``) on loopback, long-term
credentials, relaying between loopback peers (which production must never allow).

``LocalTurn.start`` returns once the server answers a STUN binding request on its port; its
log (``log``) shows the allocations each user made.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from aioice import stun

from tests.s3server import free_port


def turnserver_missing() -> str | None:
    if shutil.which("turnserver") is None:
        return "coturn's turnserver is not installed (make system-deps installs it)"
    return None


def _answers_stun(port: int) -> bool:
    request = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.settimeout(0.2)
        probe.sendto(bytes(request), ("127.0.0.1", port))
        try:
            answer = stun.parse_message(probe.recv(2048))
        except (OSError, ValueError):
            return False
    return (
        answer.message_class == stun.Class.RESPONSE
        and answer.transaction_id == request.transaction_id
    )


@dataclass
class LocalTurn:
    root: Path
    user: str = "takan"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    port: int = field(default_factory=free_port)
    _process: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> str:
        path = self.root / "turn.log"
        return path.read_text(errors="replace") if path.exists() else ""

    @property
    def url(self) -> str:
        """As ``--ice-server`` takes it: the credentials inside the URL."""
        return f"turn:{self.user}:{self.password}@127.0.0.1:{self.port}?transport=udp"

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        relay_ports = free_port()  # a start for coturn's relay range, likely free
        low = max(20000, min(relay_ports, 60000))
        command = [
            "turnserver", "-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1",
            f"--listening-port={self.port}", "--lt-cred-mech", "--realm=takan.test",
            f"--user={self.user}:{self.password}", "--allow-loopback-peers", "--no-tls",
            "--no-dtls", "--no-cli", f"--min-port={low}", f"--max-port={low + 200}",
            f"--userdb={self.root / 'turndb'}", f"--pidfile={self.root / 'turn.pid'}",
            "--log-file=stdout", "--simple-log", "--verbose",
        ]  # fmt: skip
        log = (self.root / "turn.log").open("wb")
        self._process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, cwd=self.root, env=dict(os.environ)
        )
        log.close()
        deadline = time.monotonic() + 15
        while not _answers_stun(self.port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"turnserver did not start:\n{self.log[-2000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
