"""Settings: built once by the CLI (or a test) and passed down; nothing reads the environment."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from recorder.key_files import HISTORY_FILE
from server.consent_notice import DEFAULT_NOTICE, ConsentNotice
from server.ice_servers import IceServerSpec

if TYPE_CHECKING:
    from recorder.minio_storage import S3Credentials


# Where things live under the data directory (the CLI tools that read an archive use them too).
ARCHIVE_DIR = "archive"
SPOOL_DIR = "spool"
SIGNING_KEY_FILE = "signing.key"
TOKEN_SECRET_FILE = "token-secret.key"  # noqa: S105 (a file name, not a secret)
# What every node of a cluster must have alike in its data directory (docs/deploy.md).
SHARED_SECRET_FILES = (TOKEN_SECRET_FILE, SIGNING_KEY_FILE, HISTORY_FILE)
RECEIPTS_DIR = "receipts"
WITNESS_SPOOL_DIR = "witness"  # under SPOOL_DIR
PASSKEY_MODES = ("optional", "required", "off")
NODE_NAME = re.compile(r"[a-z0-9-]{1,32}")  # it is put into nginx's configuration as it is
ADVERTISED_PATH = re.compile(r"(/[A-Za-z0-9._-]+)*/?")
DEFAULT_REPORT_TIMEZONE = "Asia/Shanghai"  # 北京时间, what official documents print


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = ""
    ice_servers: tuple[IceServerSpec, ...] = ()  # parsed by server.ice_servers
    invite_ttl_s: int = 2 * 3600
    session_ttl_s: int = 12 * 3600
    # Failed sign-ins: per account from one address, and (looser) per address whatever the
    # account, so that one inspector's wrong passwords never lock a colleague out.
    login_attempts_per_minute: int = 10
    login_attempts_per_address_per_minute: int = 30
    # Wrong short codes per address (a wrong code names no inspection: the address is the key).
    code_attempts_per_minute: int = 10
    web_dir: Path = field(default_factory=lambda: Path(__file__).resolve().parent.parent / "web")
    # The floor for the bandwidth aiortc reports to publishers (REMB), in bit/s; see
    # server/live/media/passthrough.py for why it exists.
    remb_floor_bps: int = 1_500_000
    start_bitrate_kbps: int = 2500
    # One node of many (--node NAME, --advertise-url URL: how the others and the clients reach
    # this process itself); "" = a single process, which holds every inspection.
    node: str = ""
    advertise_url: str = ""
    # How long a node's hold on an inspection outlives its last heartbeat (a beat every tenth).
    node_lease_s: float = 10.0
    # The metadata database: "" = DATA/takan.sqlite3, or postgresql://user@host:port/db (many
    # processes share one; server/store/).
    database: str = ""
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
    # What the applicant reads before consenting (--consent-notice FILE; server/consent_notice.py).
    consent_notice: ConsentNotice = DEFAULT_NOTICE
    # Conclusions signed by the inspector's passkey (WebAuthn) beside the archive key:
    # "optional" (who has one signs with it), "required" (no conclusion without one) or "off".
    passkeys: str = "optional"
    # Reverse proxies whose X-Forwarded-For names the client (--trusted-proxy CIDR, repeatable);
    # none: the peer address is the client, and the header is ignored.
    trusted_proxies: tuple[str, ...] = ()
    # The IANA time zone reports print times in (--report-timezone); their evidence tables keep
    # the UTC beside each time.
    report_timezone: str = DEFAULT_REPORT_TIMEZONE

    def __post_init__(self) -> None:
        check_timezone(self.report_timezone)
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port out of range: {self.port}")
        if self.public_url:
            check_public_url(self.public_url)
        check_node(self.node, self.advertise_url)
        if (
            min(
                self.login_attempts_per_minute,
                self.login_attempts_per_address_per_minute,
                self.code_attempts_per_minute,
            )
            < 1
        ):
            raise ValueError("attempt limits must allow at least one attempt")
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
        for url in self.witnesses:
            if not url.startswith(("http://", "https://")) or len(url) > 2000:
                raise ValueError(f"witness URL must be http:// or https://: {url}")
        if len(set(self.witnesses)) != len(self.witnesses):
            raise ValueError("a witness URL is given twice")
        if self.passkeys not in PASSKEY_MODES:
            raise ValueError(f"--passkeys must be one of {', '.join(PASSKEY_MODES)}")
        for cidr in self.trusted_proxies:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError as exc:
                raise ValueError(
                    f"--trusted-proxy {cidr!r} is not an address or CIDR: {exc}"
                ) from None

    @property
    def base_url(self) -> str:
        """The URL applicants and inspectors are sent to: every link the server makes (invite
        links and their QR codes, the short-code page, receipts, reports) starts with it."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host  # noqa: S104
        return f"http://{host}:{self.port}"


def check_node(name: str, advertise_url: str) -> None:
    """ValueError unless both are given, a node name and an http(s) URL of this node (it may
    have a path, such as the /n/NAME prefix a reverse proxy routes to it)."""
    if not name and not advertise_url:
        return
    if not NODE_NAME.fullmatch(name):
        raise ValueError(f"--node {name[:40]!r}: 1-32 of a-z, 0-9 and -, e.g. n1")
    where = f"--advertise-url {advertise_url[:200]!r}"
    parts = urlsplit(advertise_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{where}: an http:// or https:// URL of this node is required")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{where}: must not hold a user name or password")
    if parts.query or parts.fragment or not ADVERTISED_PATH.fullmatch(parts.path):
        raise ValueError(f"{where}: only scheme, host, port and a plain path such as /n/{name}")


def check_public_url(url: str) -> str:
    """``url`` as a public base URL (http or https, a host, an optional port, no path beyond
    ``/``, no query, fragment or credentials), without its trailing ``/``; or ValueError."""
    where = f"public URL {url!r}"
    if len(url) > 2000 or not url.isascii() or not url.isprintable() or " " in url:
        raise ValueError(f"{where}: must be a plain ASCII URL such as https://takan.example.org")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not url.startswith(f"{parts.scheme}://"):
        raise ValueError(f"{where}: must start with http:// or https://")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{where}: must not hold a user name or password")
    if not parts.hostname:
        raise ValueError(f"{where}: names no host")
    try:
        port = parts.port  # urlsplit checks the port only when asked
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    if port == 0:
        raise ValueError(f"{where}: port 0 is no port a browser can open")
    if parts.path not in ("", "/") or parts.query or parts.fragment or url.endswith(("?", "#")):
        raise ValueError(
            f"{where}: must be only scheme, host and port (links add their own paths),"
            f" e.g. {parts.scheme}://{parts.netloc}"
        )
    return url.rstrip("/")


def check_timezone(name: str) -> ZoneInfo:
    """The IANA time zone ``name`` (``Asia/Shanghai``, ``UTC``), or ValueError saying why not.
    The zone data comes from the system or, where it has none, the ``tzdata`` package."""
    where = f"time zone {name!r}"
    if not name or len(name) > 64 or not name.isascii() or not name.isprintable():
        raise ValueError(f"{where}: must be an IANA time zone name such as Asia/Shanghai")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{where}: not a known IANA time zone (e.g. Asia/Shanghai, Asia/Urumqi, UTC)"
        ) from None
