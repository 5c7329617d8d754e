"""``takan user passwd`` (and ``user add``) as an admin runs them: a new password for a user,
asked twice on a terminal or read with --password-stdin, weak ones refused, the user's sessions
signed out; against a real server sharing the data directory."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from server.security.passwords import check_password
from server.store.store import open_store
from tests.conftest import (
    LiveServer,
    add_users,
    current_database,
    database_options,
    user_password,
)
from tests.integration.recorded_case import REPO, takan
from tests.integration.test_reindex import takan_with_stdin

NEW_PASSWORD = "a-new-and-long-one"


async def sign_in(server: LiveServer, username: str, password: str) -> int:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{server.base_url}/api/login", json={"username": username, "password": password}
        ) as response,
    ):
        return response.status


async def me(server: LiveServer, token: str) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{server.base_url}/api/me", headers={"Authorization": f"Bearer {token}"}
        ) as response,
    ):
        return response.status, await response.text()


async def passwd(data: Path, name: str, password: str) -> tuple[int, str, str]:
    """``takan user passwd NAME --password-stdin`` with ``password`` piped in."""
    return await takan_with_stdin(
        password, "user", "passwd", name, "--password-stdin", "--data", str(data),
        *database_options(),
    )  # fmt: skip


async def test_a_new_password_from_stdin_signs_in_the_old_does_not_and_sessions_end(
    live_server: LiveServer,
) -> None:
    token = await live_server.token("inspector1")
    assert (await me(live_server, token))[0] == 200
    code, out, err = await passwd(live_server.data_dir, "inspector1", NEW_PASSWORD)
    assert code == 0, out + err
    assert out.strip() == "password changed for inspector inspector1; 1 session(s) signed out"
    assert "password changed" in err  # the log line, the trace of who changed what
    assert NEW_PASSWORD not in out + err
    status, body = await me(live_server, token)
    assert status == 401, body
    assert "revoked" in body
    assert await sign_in(live_server, "inspector1", user_password("inspector1")) == 401
    assert await sign_in(live_server, "inspector1", NEW_PASSWORD) == 200
    # Other users keep their sessions.
    assert (await me(live_server, await live_server.token("auditor1")))[0] == 200


async def test_an_unknown_user_is_refused_naming_how_to_add_one(live_server: LiveServer) -> None:
    code, out, err = await passwd(live_server.data_dir, "nobody", NEW_PASSWORD)
    assert code == 1, out + err
    where = live_server.services.store.db.describe()  # the file, or PostgreSQL at host:port/db
    assert f"takan: no user 'nobody' in {where}" in err
    assert f"user add nobody --role ROLE --data {live_server.data_dir}" in err


async def test_weak_or_empty_passwords_are_refused_and_nothing_changes(
    live_server: LiveServer,
) -> None:
    for weak, why in (
        ("", "the password is empty"),
        ("short", "at least 8 characters (it has 5)"),
        ("INSPECTOR1", "must not be the user name"),
        ("12345678", "one of the first anyone tries"),
    ):
        code, out, err = await passwd(live_server.data_dir, "inspector1", weak)
        assert code == 2, out + err
        assert why in err, err
        assert err.strip().endswith("; nothing changed"), err
    assert await sign_in(live_server, "inspector1", user_password("inspector1")) == 200


async def test_without_a_terminal_the_password_must_be_piped_with_password_stdin(
    live_server: LiveServer,
) -> None:
    code, out, err = await takan(
        "user", "passwd", "inspector1", "--data", str(live_server.data_dir), *database_options()
    )
    assert code == 2, out + err
    assert "no terminal to ask the password on: pipe it with --password-stdin" in err


async def test_a_data_directory_without_a_database_is_named(tmp_path: Path) -> None:
    code, out, err = await takan_with_stdin(
        NEW_PASSWORD, "user", "passwd", "inspector", "--password-stdin",
        "--data", str(tmp_path / "nowhere"),
    )  # fmt: skip
    assert code == 1, out + err
    assert f"no database at {tmp_path / 'nowhere' / 'takan.sqlite3'}" in err
    assert not (tmp_path / "nowhere").exists()


async def test_adding_a_user_who_exists_says_how_to_set_a_new_password(
    live_server: LiveServer,
) -> None:
    data = str(live_server.data_dir)
    code, out, err = await takan_with_stdin(
        NEW_PASSWORD, "user", "add", "inspector1", "--role", "inspector", "--data", data,
        *database_options(),
    )  # fmt: skip
    assert code == 1, out + err
    assert "user 'inspector1' already exists; set a new password with:" in err
    assert f"user passwd inspector1 --data {data}" in err
    code, out, err = await takan_with_stdin(
        "inspector", "user", "add", "newcomer", "--role", "inspector", "--data", data,
        *database_options(),
    )  # fmt: skip
    assert code == 2, out + err
    assert "the password is one of the first anyone tries; nothing changed" in err


# On a terminal: asked twice, never echoed


def _on_a_terminal(data: Path, name: str, answers: list[str]) -> tuple[int, str]:
    """``takan user passwd NAME`` with a pseudo-terminal as its controlling terminal; each
    prompt is answered with the next of ``answers``. Returns the exit code and the screen."""
    master, slave = pty.openpty()
    attach = (
        "import os, sys; fd = os.open(os.ttyname(0), os.O_RDWR);"  # the session's terminal
        " [os.dup2(fd, n) for n in (0, 1, 2)];"
        " os.execv(sys.executable, [sys.executable, '-m', 'server.cli', *sys.argv[1:]])"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", attach, "user", "passwd", name, "--data", str(data),
         *database_options()],
        cwd=REPO, stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    os.close(slave)
    screen, pending = b"", list(answers)
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # the terminal closed: the command has ended
                    break
                if not chunk:
                    break
                screen += chunk
                if pending and screen.endswith(b": "):  # a prompt, waiting
                    os.write(master, pending.pop(0).encode() + b"\n")
            elif process.poll() is not None:
                break
        else:
            raise AssertionError(f"takan user passwd did not end; the screen:\n{screen!r}")
        code = process.wait(timeout=30)
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
            process.wait()
    return code, screen.decode(errors="replace")


def _stored_password_is(data: Path, name: str, password: str) -> bool:
    store = open_store(current_database(), data)
    try:
        row = store.db.read_now(
            lambda tx: tx.one("SELECT password_hash FROM users WHERE username = ?", (name,))
        )
        assert row is not None
        return check_password(password, row["password_hash"])
    finally:
        store.close()


def test_on_a_terminal_the_password_is_asked_twice_without_echo(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    add_users(data)
    code, screen = _on_a_terminal(data, "auditor1", [NEW_PASSWORD, NEW_PASSWORD])
    assert code == 0, screen
    assert "New password for auditor1:" in screen
    assert "Type it again:" in screen
    assert NEW_PASSWORD not in screen  # not echoed
    assert "password changed for auditor auditor1" in screen
    assert _stored_password_is(data, "auditor1", NEW_PASSWORD)


def test_on_a_terminal_two_different_answers_change_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    add_users(data)
    code, screen = _on_a_terminal(data, "auditor1", [NEW_PASSWORD, NEW_PASSWORD + "x"])
    assert code == 2, screen
    assert "takan: the two passwords differ; nothing changed" in screen
    assert _stored_password_is(data, "auditor1", user_password("auditor1"))
