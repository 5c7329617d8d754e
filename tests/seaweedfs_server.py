"""SeaweedFS as the tests' second S3 server: the local cluster's launcher
(server/cli/cluster/seaweedfs.py, where what it takes to behave is written down) behind the
tests' ``S3Server`` (tests/s3server.py), with the tests' credentials.

Unlike LocalStack it keeps its objects, their versions and their retention across a restart, its
``If-None-Match: *`` is atomic and it checks credentials (docs/minio.md, Tests), so the tests
that depend on those run against it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from server.cli.cluster.seaweedfs import SeaweedFs, weed_missing
from tests.s3server import ACCESS_KEY, REGION, SECRET_KEY, S3Server

__all__ = ["SeaweedServer", "weed_missing"]


@dataclass
class SeaweedServer(S3Server):
    """One ``weed server`` process; ``port`` is its S3 port, ``ports`` the others by role."""

    name: ClassVar[str] = "seaweedfs"
    # Its filer keeps objects as paths: it stores ``a\\b`` as ``a/b`` and ``a//b`` as ``a/b``.
    verbatim_keys: ClassVar[bool] = False
    ports: dict[str, int] = field(default_factory=dict)
    weed: SeaweedFs = field(init=False)

    def __post_init__(self) -> None:
        self.weed = SeaweedFs(self.root, self.port, ACCESS_KEY, SECRET_KEY, REGION, self.ports)
        self.ports = self.weed.ports

    def start(self) -> None:
        self.weed.start()
        self.process = self.weed.process
        self.starts += 1

    def stop(self) -> None:
        """SIGTERM and wait (SIGKILL after 30 s); its ports refuse afterwards."""
        self.weed.stop()
        self.process = None

    def discard(self) -> None:
        self.crash()  # its graceful stop takes ~15 s, for data nobody reads again

    def crash(self) -> None:
        """SIGKILL: the machine losing power, as far as the store can tell."""
        self.weed.crash()
        self.process = None

    def crash_restart(self) -> None:
        self.crash()
        self.start()
