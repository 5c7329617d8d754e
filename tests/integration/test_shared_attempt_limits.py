"""The limits on wrong passwords and codes are the database's, not a process's: two servers on
one database (as `takan serve` nodes behind nginx) count the same failures, a restart forgets
none of the last minute's, and the table keeps no more than a minute's failures however many
addresses try."""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

from server.settings import TOKEN_SECRET_FILE
from server.store.attempts import PRUNE_BATCH
from tests.conftest import LiveServer, current_database, running_server, user_password
from tests.integration.test_attempt_limits import enter_code, sign_in
from tests.integration.test_rest_api import assert_error


@contextlib.asynccontextmanager
async def two_servers(tmp_path: Path) -> AsyncIterator[tuple[LiveServer, LiveServer]]:
    """Two servers on the test's one database. On PostgreSQL each has a data dir of its own and
    both have the one token secret (as every node of a cluster must: it signs the sessions,
    and the attempt keys are hashed under it). SQLite's database is a file in the data dir, so
    two servers share it by sharing the data dir."""
    first_dir = tmp_path / "node1"
    async with running_server(first_dir) as first:
        second_dir = first_dir
        if current_database():
            second_dir = tmp_path / "node2"
            second_dir.mkdir(mode=0o700)
            shutil.copy2(first_dir / TOKEN_SECRET_FILE, second_dir / TOKEN_SECRET_FILE)
        async with running_server(second_dir) as second:
            yield first, second


async def test_wrong_passwords_spread_over_two_servers_lock_the_account_on_both(
    tmp_path: Path,
) -> None:
    async with two_servers(tmp_path) as (first, second):
        for left in range(9, 0, -1):  # turn about, as nginx would send them
            answer = await sign_in(first if left % 2 else second, "inspector1", "wrong")
            assert_error(answer.status, answer.body, 401, "unauthorized", attempts_left=left)
        last = await sign_in(second, "inspector1", "wrong")
        assert last.body["attempts_left"] == 0, last.body
        assert 59 <= last.body["retry_after"] <= 60, last.body
        for server in (first, second):
            locked = await sign_in(server, "inspector1", user_password("inspector1"))
            assert_error(locked.status, locked.body, 429, "rate_limited", "for this account")
            assert locked.headers["Retry-After"] == str(locked.body["retry_after"])
        # A colleague at the same address signs in on either.
        colleague = await sign_in(first, "inspector2", user_password("inspector2"))
        assert colleague.status == 200, colleague.body


async def test_wrong_codes_spread_over_two_servers_make_the_address_wait_on_both(
    tmp_path: Path,
) -> None:
    async with two_servers(tmp_path) as (first, second):
        for left in range(9, -1, -1):
            answer = await enter_code(first if left % 2 else second, "000000")
            assert answer.status == 404, answer.body
            assert answer.body["attempts_left"] == left, answer.body
        for server in (first, second):
            locked = await enter_code(server, "000000")
            assert_error(locked.status, locked.body, 429, "rate_limited", "wrong codes")


async def test_a_restarted_server_remembers_the_last_minutes_wrong_passwords(
    tmp_path: Path,
) -> None:
    async with running_server(tmp_path / "data") as server:
        for left in (9, 8, 7, 6):
            answer = await sign_in(server, "inspector1", "wrong")
            assert_error(answer.status, answer.body, 401, "unauthorized", attempts_left=left)
    async with running_server(tmp_path / "data") as restarted:
        answer = await sign_in(restarted, "inspector1", "wrong")
        assert_error(answer.status, answer.body, 401, "unauthorized", attempts_left=5)


class AdjustableClock:
    """The system clock, moved ahead at will (the server's clock: its windows pass at once)."""

    def __init__(self) -> None:
        self.ahead_s = 0.0

    def now(self) -> float:
        return time.time() + self.ahead_s


async def wrong_codes_from(server: LiveServer, addresses: list[str]) -> None:
    """A wrong code from each address, through a proxy at 127.0.0.1 that names it."""
    async with aiohttp.ClientSession() as http:
        for address in addresses:
            async with http.post(
                server.base_url + "/api/join/code",
                json={"code": "000000"},
                headers={"X-Forwarded-For": address},
            ) as response:
                body = await response.json()
                assert (response.status, body["attempts_left"]) == (404, 9), body


async def test_after_many_addresses_the_table_keeps_only_the_last_minutes_failures(
    tmp_path: Path,
) -> None:
    clock = AdjustableClock()
    many = [f"198.18.{n // 200}.{n % 200 + 1}" for n in range(15 * PRUNE_BATCH)]
    later = [f"198.19.0.{n + 1}" for n in range(20)]
    async with running_server(
        tmp_path / "data", clock=clock, trusted_proxies=("127.0.0.1/32",)
    ) as server:
        await wrong_codes_from(server, many)
        count = "SELECT COUNT(*) AS n FROM failed_attempts"
        assert (await server.rows(count))[0]["n"] == len(many)
        clock.ahead_s = 61.0  # the minute has passed
        await wrong_codes_from(server, later)
        rows = await server.rows("SELECT MIN(at) AS oldest, COUNT(*) AS n FROM failed_attempts")
        assert rows[0]["n"] == len(later), rows
        assert rows[0]["oldest"] > clock.now() - 60, rows
