"""The ``takan`` command: serve, verify, export, keys, reindex, and manage users."""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from server.cli.export import add_export_parser, run_export
from server.cli.keys import add_key_parser, run_key
from server.cli.reindex import add_reindex_parser, run_reindex
from server.cli.verify import add_verify_parser, run_verify
from server.clock import utc_iso
from server.inspection.reindex import LOCKED_PASSWORD
from server.security.passwords import hash_password
from server.settings import Settings

if TYPE_CHECKING:
    from recorder.minio_storage import S3Credentials

# aiohttp, aiortc and the MinIO client load only for the commands that use them, so that
# `takan verify` starts in a fraction of the time.

DEFAULT_DATA = Path("data")
DEMO_USERS = (("inspector", "inspector"), ("auditor", "auditor"), ("admin", "admin"))


def _data_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="data directory")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="takan", description="Remote site inspection server")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="start the server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    _data_arg(serve)
    serve.add_argument("--public-url", default="", help="URL applicants reach (default: host:port)")
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
    add_verify_parser(commands)
    add_export_parser(commands)
    add_key_parser(commands)
    add_reindex_parser(commands)

    user = commands.add_parser("user", help="manage users")
    user_commands = user.add_subparsers(dest="user_command", required=True)
    add = user_commands.add_parser("add", help="add a user; the password is read from stdin")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=("inspector", "auditor", "admin"))
    _data_arg(add)
    return parser


def _add_user(settings: Settings, name: str, role: str, password: str) -> None:
    from server.http.app import open_services

    services = open_services(settings)
    try:
        existing = services.db.user_by_name(name)
        if existing is not None and existing.password_hash == LOCKED_PASSWORD:
            services.db.unlock_user(existing.id, role, hash_password(password))  # reindexed
            return
        if existing is not None:
            raise SystemExit(f"takan: user {name!r} already exists")
        services.db.add_user(name, role, hash_password(password), utc_iso(services.clock.now()))
    finally:
        services.db.close()


def _create_demo_users(settings: Settings) -> None:
    from server.http.app import open_services

    services = open_services(settings)
    try:
        if services.db.count_users():
            return
        print("Demo users (passwords shown once):")
        for name, role in DEMO_USERS:
            password = secrets.token_urlsafe(9)
            services.db.add_user(name, role, hash_password(password), utc_iso(services.clock.now()))
            print(f"  {role:<10} {name:<10} {password}")
    finally:
        services.db.close()


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
        password = sys.stdin.readline().rstrip("\n")
        if len(password) < 8:
            print(
                "takan: the password (read from stdin) must be at least 8 characters",
                file=sys.stderr,
            )
            return 2
        name = args.name
        if not (1 <= len(name) <= 64) or not name.isprintable():
            print("takan: user names are 1-64 printable characters", file=sys.stderr)
            return 2
        _add_user(Settings(data_dir=args.data), name, args.role, password)
        print(f"added {args.role} {name}")
        return 0
    try:
        settings = Settings(
            data_dir=args.data,
            host=args.host,
            port=args.port,
            public_url=args.public_url,
            ice_servers=tuple(args.ice_server),
            invite_ttl_s=args.invite_ttl,
            storage=args.storage,
            s3_credentials=credentials,
            segment_s=args.segment_seconds,
            tsa_urls=tuple(args.tsa),
            tsa_cert_files=tuple(args.tsa_cert),
            witnesses=tuple(args.witness),
        )
        if settings.tsa_cert_files:
            from recorder.timestamps import load_tsa_trust

            load_tsa_trust(settings.tsa_cert_files)  # refuse a bad certificate before serving
        if settings.storage:
            from recorder.storage_url import open_storage

            open_storage(settings.storage, credentials)  # refuse a bad URL before serving
    except ValueError as exc:
        print(f"takan: {exc}", file=sys.stderr)
        return 2
    if args.demo_users:
        _create_demo_users(settings)
    from aiohttp import web

    from server.http.accesslog import RedactingAccessLogger
    from server.http.app import create_app

    print(f"Takan serving on {settings.base_url}  (data: {settings.data_dir.resolve()})")
    web.run_app(
        create_app(settings),
        host=args.host,
        port=args.port,
        access_log_class=RedactingAccessLogger,
        print=None,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
