"""``takan user add`` and ``takan user passwd``, and the demo users of ``takan serve``.

Passwords are read from stdin (one line) or, on a terminal, asked twice without echo; they are
checked by ``security.passwords.password_problem`` before anything is written. A new password
signs every session of that user out. Nothing audits user administration in the archive (users
are not evidence): each change is logged (``username``, ``role``, ``by``).
"""

from __future__ import annotations

import argparse
import asyncio
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
from server.store.store import SQLITE_FILE, Store, StoreUrlError, open_store

logger = logging.getLogger(__name__)

DEFAULT_DATA = Path("data")
DATABASE_FILE = SQLITE_FILE
ROLES = ("inspector", "auditor", "admin")
DEMO_USERS = (("inspector", "inspector"), ("auditor", "auditor"), ("admin", "admin"))
DATABASE_HELP = "the server's --database (default: the data directory's SQLite file)"


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
    add.add_argument("--database", default="", help=DATABASE_HELP)
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
    passwd.add_argument("--database", default="", help=DATABASE_HELP)


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


def _open_store(args: argparse.Namespace) -> Store:
    """The database the server uses: ``--database``, else the data dir's SQLite file."""
    if not args.database:
        path = args.data / DATABASE_FILE
        if not path.is_file():
            raise UserError(f"no database at {path} (is --data right? takan serve makes it)")
    try:
        return open_store(args.database, args.data)
    except StoreUrlError as exc:
        raise UserError(str(exc), 2) from exc


async def add_user(args: argparse.Namespace) -> str:
    """``takan user add``: a new user, or a password and role for an account ``takan reindex``
    restored locked."""
    _check_name(args.name)
    password = _checked_password(args.name, _read_password(args.name, args.password_stdin))
    store = _open_store(args)
    try:
        existing = await store.users.by_name(args.name)
        if existing is not None and existing.password_hash != LOCKED_PASSWORD:
            raise UserError(
                f"user {args.name!r} already exists; set a new password with:"
                f" {program()} user passwd {args.name}{_data_option(args.data)}"
            )
        if existing is not None:
            await store.users.unlock(existing.id, args.role, hash_password(password))  # reindexed
        else:
            now = utc_iso(SystemClock().now())
            await store.users.add(args.name, args.role, hash_password(password), now)
    finally:
        store.close()
    logger.info(
        "user added",
        extra={"username": args.name, "role": args.role, "by": _operator()},
    )
    return f"added {args.role} {args.name}"


async def change_password(args: argparse.Namespace) -> str:
    """``takan user passwd``: a new password for an existing user; their sessions end."""
    _check_name(args.name)
    if not args.password_stdin and not sys.stdin.isatty():
        raise UserError("no terminal to ask the password on: pipe it with --password-stdin", 2)
    store = _open_store(args)
    try:
        user = await store.users.by_name(args.name)
        if user is None:
            raise UserError(
                f"no user {args.name!r} in {store.db.describe()}; add one with:"
                f" {program()} user add {args.name} --role ROLE{_data_option(args.data)}"
            )
        password = _checked_password(args.name, _read_password(args.name, args.password_stdin))
        ended = await store.users.change_password(
            user.id, hash_password(password), int(SystemClock().now())
        )
    finally:
        store.close()
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


async def _demo_users(store: Store) -> list[str] | None:
    """Make the demo users on an empty database (None), else the demo names that exist."""
    if not await store.users.count():
        print("Demo users (passwords shown once):")
        for name, role in DEMO_USERS:
            password = secrets.token_urlsafe(9)
            await store.users.add(name, role, hash_password(password), utc_iso(SystemClock().now()))
            print(f"  {role:<10} {name:<10} {password}")
        return None
    return [name for name, _ in DEMO_USERS if await store.users.by_name(name) is not None]


def _operator() -> str:
    """Who ran the command, as the system knows them (for the log)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return f"uid {os.getuid()}"


def run_user(args: argparse.Namespace) -> int:
    try:
        command = add_user if args.user_command == "add" else change_password
        done = asyncio.run(command(args))
    except UserError as exc:
        print(f"takan: {exc}", file=sys.stderr)
        return exc.code
    print(done)
    return 0


def create_demo_users(settings: Settings) -> None:
    """On an empty database, an inspector, an auditor and an admin, their passwords printed
    once; otherwise say which exist and how to give one a new password."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = open_store(settings.database, settings.data_dir)
    try:
        existing = asyncio.run(_demo_users(store))
    finally:
        store.close()
    if existing is None:
        return
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
