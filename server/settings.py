"""Settings: built once by the CLI (or a test) and passed down; nothing reads the environment."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from recorder.minio_storage import S3Credentials


# Where things live under the data directory (the CLI tools that read an archive use them too).
ARCHIVE_DIR = "archive"
SPOOL_DIR = "spool"
SIGNING_KEY_FILE = "signing.key"
RECEIPTS_DIR = "receipts"
WITNESS_SPOOL_DIR = "witness"  # under SPOOL_DIR


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = ""
    ice_servers: tuple[str, ...] = ()
    invite_ttl_s: int = 2 * 3600
    session_ttl_s: int = 12 * 3600
    login_attempts_per_minute: int = 10
    code_attempts_per_minute: int = 10
    web_dir: Path = field(default_factory=lambda: Path(__file__).resolve().parent.parent / "web")
    # The floor for the bandwidth aiortc reports to publishers (REMB), in bit/s; see
    # server/live/media/passthrough.py for why it exists.
    remb_floor_bps: int = 1_500_000
    start_bitrate_kbps: int = 2500
    # Where the archive goes: "" = DATA/archive on the local disk, or file:///path, minio://...
    storage: str = ""
    # For a minio:// storage URL without ACCESS:SECRET@ (the CLI reads them from the environment).
    s3_credentials: S3Credentials | None = None
    segment_s: float = 4.0
    checkpoint_interval_s: float = 30.0
    # RFC 3161 timestamp authorities that stamp every checkpoint and manifest, and the
    # certificates (PEM) their replies must verify against (none: replies are parsed only).
    tsa_urls: tuple[str, ...] = ()
    tsa_cert_files: tuple[Path, ...] = ()
    tsa_retry_max_s: float = 60.0
    # Outside systems that get every signed checkpoint and receipt (POST, see docs/archive.md).
    witnesses: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port out of range: {self.port}")
        if self.invite_ttl_s <= 0 or self.session_ttl_s <= 0:
            raise ValueError("token lifetimes must be positive")
        if not 0.5 <= self.segment_s <= 60:
            raise ValueError(f"segment length must be 0.5-60 s, not {self.segment_s}")
        for url in self.tsa_urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"TSA URL must start with http:// or https://: {url}")
        if len(set(self.tsa_urls)) != len(self.tsa_urls):
            raise ValueError("a TSA URL is given twice")
        if self.tsa_cert_files and not self.tsa_urls:
            raise ValueError("--tsa-cert needs --tsa")
        if self.tsa_retry_max_s <= 0:
            raise ValueError("the TSA retry delay must be positive")
        for url in self.ice_servers:
            if not url.startswith(("stun:", "turn:", "turns:")):
                raise ValueError(f"ICE server URL must start with stun:, turn: or turns:: {url}")
        for url in self.witnesses:
            if not url.startswith(("http://", "https://")) or len(url) > 2000:
                raise ValueError(f"witness URL must be http:// or https://: {url}")
        if len(set(self.witnesses)) != len(self.witnesses):
            raise ValueError("a witness URL is given twice")

    @property
    def base_url(self) -> str:
        """The URL applicants and inspectors are sent to."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host  # noqa: S104
        return f"http://{host}:{self.port}"
