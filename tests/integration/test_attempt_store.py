"""Failed-attempt guards on a real database (each engine): a failure counts under every limit of
its guard, a used-up limit refuses with its reason and wait, the window slides, processes on one
database count the same failures, the table keeps keyed hashes only and never grows past its
window's failures."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.errors import RateLimited
from server.security.ratelimit import AttemptGuard, AttemptLimit, Failed
from server.store.attempts import PRUNE_BATCH
from server.store.store import Store, open_store
from tests.conftest import current_database

SECRET = b"a token secret every node shares"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(current_database(), tmp_path)
    yield opened
    opened.close()


def login_guard(store: Store) -> AttemptGuard:
    return AttemptGuard(
        "login",
        AttemptLimit("account", 2, "too many for this account"),
        AttemptLimit("address", 3, "too many from this address"),
        attempts=store.attempts,
        secret=SECRET,
    )


def code_guard(store: Store, limit: int = 10, window_s: float = 60.0) -> AttemptGuard:
    return AttemptGuard(
        "code",
        AttemptLimit("address", limit, "too many wrong codes", window_s),
        attempts=store.attempts,
        secret=SECRET,
    )


async def rows_by_scope(store: Store) -> dict[str, int]:
    rows = await store.db.read(
        lambda tx: tx.all("SELECT scope, COUNT(*) AS n FROM failed_attempts GROUP BY scope")
    )
    return {row["scope"]: int(row["n"]) for row in rows}


async def test_a_failure_counts_under_every_limit_and_answers_the_fewest_attempts_left(
    store: Store,
) -> None:
    guard = login_guard(store)
    assert await guard.fail({"account": "a|x", "address": "a"}, 0.0) == Failed(1, 0)
    assert await guard.fail({"account": "a|y", "address": "a"}, 1.0) == Failed(1, 0)
    # x's account and the address have none left: wait until the oldest (at 0) leaves.
    assert await guard.fail({"account": "a|x", "address": "a"}, 2.0) == Failed(0, 58)


async def test_a_used_up_limit_refuses_with_its_own_reason_and_whole_seconds(
    store: Store,
) -> None:
    guard = login_guard(store)
    for at in (0.0, 0.5):
        await guard.fail({"account": "a|x", "address": "a"}, at)
    with pytest.raises(RateLimited) as refused:
        await guard.check({"account": "a|x", "address": "a"}, 10.2)
    assert refused.value.retry_after == 50  # 49.8 s rounded up
    assert refused.value.reason == "too many for this account, retry in 50 s"
    await guard.check({"account": "a|y", "address": "a"}, 10.2)  # another account may try
    await guard.fail({"account": "a|y", "address": "a"}, 11.0)
    with pytest.raises(RateLimited, match="from this address"):
        await guard.check({"account": "a|z", "address": "a"}, 12.0)
    await guard.check({"account": "b|z", "address": "b"}, 12.0)  # another address may try


async def test_the_window_slides_one_failure_at_a_time(store: Store) -> None:
    guard = code_guard(store, limit=2, window_s=10.0)
    await guard.fail({"address": "a"}, 0.0)
    await guard.fail({"address": "a"}, 5.0)
    with pytest.raises(RateLimited) as refused:
        await guard.check({"address": "a"}, 6.0)
    assert refused.value.retry_after == 4
    await guard.check({"address": "a"}, 10.0)  # the failure at 0 has left
    assert await guard.fail({"address": "a"}, 10.0) == Failed(0, 5)  # now 5 is the oldest
    with pytest.raises(RateLimited) as refused:
        await guard.check({"address": "a"}, 11.0)
    assert refused.value.retry_after == 4


async def test_wrong_codes_do_not_count_towards_the_sign_ins_of_that_address(
    store: Store,
) -> None:
    codes, logins = code_guard(store, limit=1), login_guard(store)
    assert await codes.fail({"address": "a"}, 0.0) == Failed(0, 60)
    await logins.check({"account": "a|x", "address": "a"}, 1.0)
    assert await logins.fail({"account": "a|x", "address": "a"}, 1.0) == Failed(1, 0)


async def test_two_processes_on_one_database_count_the_same_failures(
    store: Store, tmp_path: Path
) -> None:
    other = open_store(current_database(), tmp_path)  # another connection, as a node has
    try:
        here, there = login_guard(store), login_guard(other)
        assert await here.fail({"account": "a|x", "address": "a"}, 0.0) == Failed(1, 0)
        assert await there.fail({"account": "a|x", "address": "a"}, 1.0) == Failed(0, 59)
        for guard in (here, there):
            with pytest.raises(RateLimited, match="for this account, retry in 59 s"):
                await guard.check({"account": "a|x", "address": "a"}, 1.0)
    finally:
        other.close()


async def test_the_table_keeps_a_hash_of_the_name_and_address_never_the_text(
    store: Store,
) -> None:
    await login_guard(store).fail(
        {"account": '["203.0.113.5", "inspector1"]', "address": "203.0.113.5"}, 7.5
    )
    rows = await store.db.read(lambda tx: tx.all("SELECT * FROM failed_attempts ORDER BY scope"))
    assert [(row["scope"], row["at"]) for row in rows] == [
        ("login.account", 7.5),
        ("login.address", 7.5),
    ]
    for row in rows:
        assert set(row) == {"id", "scope", "key_hash", "at"}
        assert re.fullmatch("[0-9a-f]{64}", row["key_hash"]), row  # SHA-256 in hex, no text
    assert rows[0]["key_hash"] != rows[1]["key_hash"]


async def test_each_failure_deletes_a_few_expired_rows_of_its_guard_and_keeps_the_window(
    store: Store,
) -> None:
    logins, codes = login_guard(store), code_guard(store)
    expired = 2 * PRUNE_BATCH + 5
    for n in range(expired):  # as from many addresses, each once
        await logins.fail({"account": f"x|{n}", "address": f"10.0.0.{n}"}, 0.0)
    await codes.fail({"address": "10.0.0.1"}, 0.0)
    await logins.fail({"account": "y|1", "address": "10.0.1.1"}, 50.0)  # in the window at 100
    assert await rows_by_scope(store) == {
        "login.account": expired + 1,
        "login.address": expired + 1,
        "code.address": 1,
    }
    # At 100 s the failures at 0 have left the window: each failure deletes a batch of them.
    await logins.fail({"account": "z|1", "address": "10.0.2.1"}, 100.0)
    left = expired - PRUNE_BATCH + 2
    assert await rows_by_scope(store) == {
        "login.account": left,
        "login.address": left,
        "code.address": 1,
    }
    for _ in range(2):
        await logins.fail({"account": "z|1", "address": "10.0.2.1"}, 100.0)
    # What is left: the failure at 50 and the three at 100; the code's row is the code
    # guard's to delete (its window may be another).
    assert await rows_by_scope(store) == {"login.account": 4, "login.address": 4, "code.address": 1}
    await codes.fail({"address": "10.0.0.2"}, 100.0)
    assert (await rows_by_scope(store))["code.address"] == 1


async def test_failures_at_once_from_two_processes_are_all_counted_and_the_expired_deleted(
    store: Store, tmp_path: Path
) -> None:
    other = open_store(current_database(), tmp_path)
    try:
        here, there = code_guard(store, limit=100), code_guard(other, limit=100)
        for n in range(3 * PRUNE_BATCH):
            await here.fail({"address": f"10.0.0.{n}"}, 0.0)
        # Each failure's transaction deletes expired rows the others may be deleting too.
        at_once = [
            guard.fail({"address": "10.0.9.9"}, 100.0) for _ in range(20) for guard in (here, there)
        ]
        lefts = [failed.attempts_left for failed in await asyncio.gather(*at_once)]
        # Each saw itself and what had committed before it read (on PostgreSQL, failures in
        # flight at once may see the same count); the next one sees them all.
        assert all(60 <= left <= 99 for left in lefts), lefts
        assert await there.fail({"address": "10.0.9.9"}, 100.0) == Failed(59, 0)
        assert await rows_by_scope(store) == {"code.address": 41}
    finally:
        other.close()


def test_a_guard_needs_a_name_and_limits_of_distinct_scopes(store: Store) -> None:
    with pytest.raises(ValueError, match="distinct"):
        AttemptGuard(
            "login",
            AttemptLimit("a", 1, "x"),
            AttemptLimit("a", 2, "y"),
            attempts=store.attempts,
            secret=SECRET,
        )
    with pytest.raises(ValueError, match="distinct"):
        AttemptGuard("login", attempts=store.attempts, secret=SECRET)
    with pytest.raises(ValueError, match="a name"):
        AttemptGuard("", AttemptLimit("a", 1, "x"), attempts=store.attempts, secret=SECRET)
