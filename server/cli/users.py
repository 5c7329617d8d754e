"""``takan user add`` and ``takan user passwd``, and the demo users of ``takan serve``.

Passwords are read from stdin (one line) or, on a terminal, asked twice without echo; they are
checked by ``security.passwords.password_problem`` before anything is written. A new password
signs every session of that user out. Nothing audits user administration in the archive (users
are not evidence): each change is logged (``username``, ``role``, ``by``).
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import secrets
import sys
from pathlib import Path

from server.clock import SystemClock, utc_iso
from server.inspection.reindex import LOCKED_PASSWORD
from server.security.passwords import hash_password, password_problem
from server.settings import Settings
from server.store.db import Database

logger = logging.getLogger(__name__)

DEFAULT_DATA = Path("data")
DATABASE_FILE = "takan.sqlite3"
ROLES = ("inspector", "auditor", "admin")
DEMO_USERS = (("inspector", "inspector"), ("auditor", "auditor"), ("admin", "admin"))


class UserError(Exception):
    """A refused user command: the message for the person, and the exit code."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def add_user_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    user = commands.add_parser("user", help="manage users")
    user_commands = user.add_subparsers(dest="user_command", required=True)
    add = user_commands.add_parser(
        "add", help="add a user; the password is read from stdin (asked twice on a terminal)"
    )
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    add.add_argument("--data", type=Path, default=DEFAULT_DATA, help="data directory")
    passwd = user_commands.add_parser(
        "passwd",
        help="set a user's password (asked twice on a terminal, or --password-stdin);"
        " signs the user's sessions out",
    )
    passwd.add_argument("name")
    passwd.add_argument(
        "--password-stdin", action="store_true", help="read the new password from stdin"
    )
    passwd.add_argument("--data", type=Path, default=DEFAULT_DATA, help="data directory")


def program() -> str:
    """How the person ran ``takan`` (``.venv/bin/takan`` after ``make run``), for hints they
    can paste."""
    invoked = sys.argv[0] if sys.argv else ""
    return invoked if Path(invoked).name == "takan" else "takan"


def _data_option(data_dir: Path) -> str:
    return "" if data_dir == DEFAULT_DATA else f" --data {data_dir}"


def _read_password(name: str, from_stdin: bool) -> str:
    if from_stdin or not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass(f"New password for {name}: ")
    again = getpass.getpass("Type it again: ")
    if first != again:
        raise UserError("the two passwords differ; nothing changed", 2)
    return first


def _checked_password(name: str, password: str) -> str:
    problem = password_problem(password, name)
    if problem:
        raise UserError(f"{problem}; nothing changed", 2)
    return password


def _check_name(name: str) -> None:
    if not (1 <= len(name) <= 64) or not name.isprintable() or name != name.strip():
        raise UserError("user names are 1-64 printable characters, no space at either end", 2)


def _open_database(data_dir: Path) -> Database:
    path = data_dir / DATABASE_FILE
    if not path.is_file():
        raise UserError(f"no database at {path} (is --data right? takan serve makes it)")
    return Database(path)


def add_user(args: argparse.Namespace) -> str:
    """``takan user add``: a new user, or a password and role for an account ``takan reindex``
    restored locked."""
    from server.http.app import open_services

    _check_name(args.name)
    password = _checked_password(args.name, _read_password(args.name, args.password_stdin))
    services = open_services(Settings(data_dir=args.data))
    try:
        db = services.db
        existing = db.user_by_name(args.name)
        if existing is not None and existing.password_hash != LOCKED_PASSWORD:
            raise UserError(
                f"user {args.name!r} already exists; set a new password with:"
                f" {program()} user passwd {args.name}{_data_option(args.data)}"
            )
        if existing is not None:
            db.unlock_user(existing.id, args.role, hash_password(password))  # reindexed
        else:
            db.add_user(args.name, args.role, hash_password(password), utc_iso(SystemClock().now()))
    finally:
        services.db.close()
    logger.info(
        "user added",
        extra={"username": args.name, "role": args.role, "by": _operator()},
    )
    return f"added {args.role} {args.name}"


def change_password(args: argparse.Namespace) -> str:
    """``takan user passwd``: a new password for an existing user; their sessions end."""
    _check_name(args.name)
    if not args.password_stdin and not sys.stdin.isatty():
        raise UserError("no terminal to ask the password on: pipe it with --password-stdin", 2)
    db = _open_database(args.data)
    try:
        user = db.user_by_name(args.name)
        if user is None:
            raise UserError(
                f"no user {args.name!r} in {args.data / DATABASE_FILE}; add one with:"
                f" {program()} user add {args.name} --role ROLE{_data_option(args.data)}"
            )
        password = _checked_password(args.name, _read_password(args.name, args.password_stdin))
        with db.transaction():
            db.set_password(user.id, hash_password(password))
            ended = db.revoke_user_sessions(user.id, int(SystemClock().now()))
    finally:
        db.close()
    logger.info(
        "password changed",
        extra={
            "username": user.username,
            "role": user.role,
            "by": _operator(),
            "sessions_ended": ended,
        },
    )
    sessions = "no session was open" if not ended else f"{ended} session(s) signed out"
    return f"password changed for {user.role} {user.username}; {sessions}"


def _operator() -> str:
    """Who ran the command, as the system knows them (for the log)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return f"uid {os.getuid()}"


def run_user(args: argparse.Namespace) -> int:
    try:
        done = add_user(args) if args.user_command == "add" else change_password(args)
    except UserError as exc:
        print(f"takan: {exc}", file=sys.stderr)
        return exc.code
    print(done)
    return 0


def create_demo_users(settings: Settings) -> None:
    """On an empty database, an inspector, an auditor and an admin, their passwords printed
    once; otherwise say which exist and how to give one a new password."""
    from server.http.app import open_services

    services = open_services(settings)
    try:
        db = services.db
        if not db.count_users():
            print("Demo users (passwords shown once):")
            for name, role in DEMO_USERS:
                password = secrets.token_urlsafe(9)
                db.add_user(name, role, hash_password(password), utc_iso(services.clock.now()))
                print(f"  {role:<10} {name:<10} {password}")
            return
        existing = [name for name, _ in DEMO_USERS if db.user_by_name(name) is not None]
    finally:
        services.db.close()
    hint = f"{program()} user passwd NAME{_data_option(settings.data_dir)}"
    if existing:
        print(
            f"Demo users exist already ({', '.join(existing)}); their passwords were shown when"
            f" they were made. A new password: {hint}"
        )
    else:
        print(
            f"No demo users: the database has users already. A new password for one of them: {hint}"
        )
