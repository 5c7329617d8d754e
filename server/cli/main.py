"""The ``takan`` command: serve, verify, export, keys, reindex, and manage users."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from server.cli.cluster.parser import add_cluster_parser
from server.cli.export import add_export_parser, run_export
from server.cli.keys import add_key_parser, run_key
from server.cli.listen import (
    WILDCARD_HOSTS,
    ListenError,
    bind_listeners,
    bound_port,
    local_addresses,
    network_urls,
    url_of,
)
from server.cli.reindex import add_reindex_parser, run_reindex
from server.cli.users import DEFAULT_DATA, add_user_parser, create_demo_users, run_user
from server.cli.verify import add_verify_parser, run_verify
from server.consent_notice import DEFAULT_NOTICE, ConsentNotice, NoticeError
from server.ice_servers import parse_ice_server
from server.settings import DEFAULT_REPORT_TIMEZONE, PASSKEY_MODES, Settings, check_timezone
from server.store.backend import StoreUnavailable
from server.store.store import check_database_url

if TYPE_CHECKING:
    from recorder.minio_storage import S3Credentials

# aiohttp, aiortc and the MinIO client load only for the commands that use them, so that
# `takan verify` starts in a fraction of the time.


def _data_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="data directory")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="takan", description="Remote site inspection server")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="start the server")
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every address)"
    )
    serve.add_argument("--port", type=int, default=8080, help="port to listen on")
    _data_arg(serve)
    serve.add_argument(
        "--public-url",
        default="",
        metavar="URL",
        help="the base of every link the server makes (invite links, QR codes), e.g."
        " https://takan.example.org; default: this machine's LAN address on 0.0.0.0, else"
        " host:port",
    )
    serve.add_argument(
        "--ice-server",
        action="append",
        default=[],
        help="STUN/TURN URL, repeatable (stun:host:3478, turn:user:pass@host:3478)",
    )
    serve.add_argument("--invite-ttl", type=int, default=7200, help="invite validity, seconds")
    serve.add_argument(
        "--demo-users",
        action="store_true",
        help="on an empty database, create an inspector, an auditor and an admin and print"
        " their passwords once",
    )

    serve.add_argument(
        "--database",
        default="",
        metavar="URL",
        help="the metadata database (default: DATA/takan.sqlite3), or"
        " postgresql://user@host:port/db, which many takan serve processes share",
    )
    serve.add_argument(
        "--node",
        default="",
        metavar="NAME",
        help="run as one node of many sharing --database (and the archive): its name (a-z, 0-9,"
        " -); new inspections go to the least-loaded live node, a node that dies is replaced",
    )
    serve.add_argument(
        "--advertise-url",
        default="",
        metavar="URL",
        help="with --node: how clients reach this node itself, e.g. https://takan.example.org/n/n1"
        " behind the reverse proxy (docs/deploy.md), or http://10.0.0.5:8081",
    )
    serve.add_argument(
        "--storage",
        default="",
        metavar="URL",
        help="archive storage (default: DATA/archive on this disk), e.g. file:///srv/takan or"
        " minio://host:9000/bucket?retention=COMPLIANCE&days=3650 (credentials from"
        " TAKAN_S3_ACCESS_KEY and TAKAN_S3_SECRET_KEY, or ACCESS:SECRET@ in the URL)",
    )
    serve.add_argument("--segment-seconds", type=float, default=4.0, help="segment length")
    serve.add_argument(
        "--tsa",
        action="append",
        default=[],
        metavar="URL",
        help="RFC 3161 timestamp authority that stamps every checkpoint and manifest; repeatable",
    )
    serve.add_argument(
        "--tsa-cert",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help="the TSAs' root CA certificate (PEM) their replies must verify against; repeatable",
    )
    serve.add_argument(
        "--witness",
        action="append",
        default=[],
        metavar="URL",
        help="POST every signed checkpoint and receipt to this outside system (retried until"
        " it answers 2xx, queued in the spool); repeatable",
    )
    serve.add_argument(
        "--consent-notice",
        type=Path,
        metavar="FILE",
        help="the recording notice applicants read before consenting (JSON: version, agency,"
        " purpose, retention, contact; README, The recording notice); default: a generic one",
    )
    serve.add_argument(
        "--passkeys",
        choices=PASSKEY_MODES,
        default="optional",
        help="inspectors sign conclusions with their passkey (WebAuthn) beside the archive key:"
        " optional (those who registered one), required (no conclusion without one) or off;"
        " passkeys need the public URL to name a host, not an IP address (default: optional)",
    )
    serve.add_argument(
        "--trusted-proxy",
        action="append",
        default=[],
        metavar="CIDR",
        help="a reverse proxy (address or CIDR) whose X-Forwarded-For names the client, for rate"
        " limits and logs; repeatable (default: none, the header is ignored)",
    )
    serve.add_argument(
        "--report-timezone",
        default=DEFAULT_REPORT_TIMEZONE,
        metavar="ZONE",
        help="the IANA time zone reports print times in (default: Asia/Shanghai, 北京时间);"
        " their evidence tables keep the UTC beside each time",
    )
    add_verify_parser(commands)
    add_export_parser(commands)
    add_key_parser(commands)
    add_reindex_parser(commands)
    add_cluster_parser(commands)
    add_user_parser(commands)
    return parser


def _consent_notice(path: Path | None) -> ConsentNotice:
    if path is None:
        return DEFAULT_NOTICE
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"--consent-notice {path}: {exc.strerror}") from exc
    try:
        return ConsentNotice.parse(raw)
    except NoticeError as exc:
        raise ValueError(f"--consent-notice {path}: {exc}") from exc


def _report_timezone(name: str) -> str:
    try:
        check_timezone(name)
    except ValueError as exc:
        raise ValueError(f"--report-timezone: {exc}") from None
    return name


def s3_credentials_from_env() -> S3Credentials | None:
    """TAKAN_S3_ACCESS_KEY and TAKAN_S3_SECRET_KEY, if both are set (the only env read)."""
    access_key = os.environ.get("TAKAN_S3_ACCESS_KEY", "")
    secret_key = os.environ.get("TAKAN_S3_SECRET_KEY", "")
    if not access_key and not secret_key:
        return None
    from recorder.minio_storage import S3Credentials

    return S3Credentials(access_key, secret_key)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        credentials = s3_credentials_from_env()
    except ValueError as exc:
        print(f"takan: {exc} (TAKAN_S3_ACCESS_KEY, TAKAN_S3_SECRET_KEY)", file=sys.stderr)
        return 2
    if args.command == "verify":
        return run_verify(args, credentials=credentials)
    if args.command == "export":
        return run_export(args, credentials=credentials)
    if args.command == "key":
        return run_key(args)
    if args.command == "reindex":
        return run_reindex(args, credentials=credentials)
    if args.command == "user":
        return run_user(args)
    if args.command == "cluster":
        from server.cli.cluster.local import run_cluster

        return run_cluster(args)
    return serve(args, credentials)


def serve(args: argparse.Namespace, credentials: S3Credentials | None) -> int:
    """``takan serve``: check the options, take the port, then (and only then) open the data
    directory, make the demo users and serve."""
    try:
        notice = _consent_notice(args.consent_notice)
        settings = Settings(
            consent_notice=notice,
            data_dir=args.data,
            host=args.host,
            port=args.port,
            public_url=args.public_url,
            ice_servers=tuple(parse_ice_server(url) for url in args.ice_server),
            invite_ttl_s=args.invite_ttl,
            database=check_database_url(args.database),
            node=args.node,
            advertise_url=args.advertise_url,
            storage=args.storage,
            s3_credentials=credentials,
            segment_s=args.segment_seconds,
            tsa_urls=tuple(args.tsa),
            tsa_cert_files=tuple(args.tsa_cert),
            witnesses=tuple(args.witness),
            passkeys=args.passkeys,
            trusted_proxies=tuple(args.trusted_proxy),
            report_timezone=_report_timezone(args.report_timezone),
        )
        if settings.passkeys == "required":
            from server.security.passkeys import NoRelyingParty, relying_party

            party = relying_party(settings.base_url)
            if isinstance(party, NoRelyingParty):  # no conclusion could ever be signed
                raise ValueError(f"--passkeys required: {party.reason}")
        if settings.tsa_cert_files:
            from recorder.timestamps import load_tsa_trust

            load_tsa_trust(settings.tsa_cert_files)  # refuse a bad certificate before serving
        if settings.storage:
            from recorder.storage_url import open_storage

            open_storage(settings.storage, credentials)  # refuse a bad URL before serving
        listeners = bind_listeners(settings.host, settings.port)
    except (ValueError, ListenError) as exc:
        print(f"takan: {exc}", file=sys.stderr)
        return 2
    try:
        return _serve_on(listeners, settings, demo_users=args.demo_users)
    finally:
        for listener in listeners:
            listener.close()


def _serve_on(listeners: list[socket.socket], settings: Settings, *, demo_users: bool) -> int:
    port = bound_port(listeners)
    lan_urls = network_urls(settings.host, port, local_addresses())
    given = public_url = settings.public_url
    if not public_url and settings.host in WILDCARD_HOSTS and lan_urls:
        public_url = lan_urls[0]  # what a phone on the same network opens
    settings = dataclasses.replace(settings, port=port, public_url=public_url)
    from aiohttp import web

    from server.http.accesslog import RedactingAccessLogger
    from server.http.app import create_app

    try:
        if demo_users:
            create_demo_users(settings)
        app = create_app(settings)
    except StoreUnavailable as exc:
        print(f"takan: --database: {exc}", file=sys.stderr)
        return 2
    for line in serving_lines(settings, lan_urls, public_url_given=bool(given)):
        print(line)
    sys.stdout.flush()
    web.run_app(
        app,
        sock=listeners,
        access_log_class=RedactingAccessLogger,
        print=None,
    )
    return 0


def serving_lines(settings: Settings, lan_urls: list[str], *, public_url_given: bool) -> list[str]:
    """What ``takan serve`` says once it listens: where to sign in here, where a phone on the
    network reaches it, and what invite links and QR codes say."""
    here = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(  # noqa: S104
        settings.host, settings.host
    )
    local = url_of("http", here, settings.port)
    lines = [
        f"Takan serving on {local}  (data: {settings.data_dir.resolve()})",
        f"  sign in here:     {local}/login",
    ]
    if lan_urls:
        lines.append(f"  on the network:   {'  '.join(lan_urls)}")
    elif settings.host in WILDCARD_HOSTS:
        lines.append("  on the network:   this machine has no address besides loopback")
    elif not public_url_given:
        lines.append("  on the network:   not reachable; make run HOST=0.0.0.0 listens on all")
    base = settings.base_url
    lines.append(f"  invite links, QR: {base}  (the code page: {base}/j)")
    if not public_url_given:
        lines.append("                    another base: make run PUBLIC_URL=… (--public-url)")
    if base.startswith("http://") and lan_urls:
        lines.append(
            "  phones open http:// pages but need HTTPS for the camera: put a TLS proxy in"
            " front and give its https:// URL as PUBLIC_URL (README, Quick start)"
        )
    notice = settings.consent_notice
    if notice is DEFAULT_NOTICE:
        lines.append(
            f"  recording notice: the generic {notice.version}; name your agency, purpose,"
            " retention and contact with --consent-notice FILE (README)"
        )
    else:
        lines.append(f"  recording notice: version {notice.version}, sha256 {notice.sha256}")
    lines.append("Stop with Ctrl+C.")
    return lines


if __name__ == "__main__":
    sys.exit(main())
