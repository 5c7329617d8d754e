"""Failed-attempt limits (server.security.ratelimit), their pure parts: a limit's attempts left
and wait from its newest failures, the wait as a client is told it, and the keys the database
keeps. The guards themselves, on a real database: tests/integration/test_attempt_store.py."""

from __future__ import annotations

import re

import pytest

from server.security.ratelimit import (
    AttemptLimit,
    hashed_key,
    key_secret,
    limit_state,
    whole_seconds,
)

THREE_A_MINUTE = AttemptLimit("address", 3, "too many")
SECRET = bytes(range(32))


def wait_of(state: tuple[int, float]) -> float:
    """The wait of a limit that has no attempts left."""
    left, wait = state
    assert left == 0, state
    return wait


def test_an_address_under_its_limit_may_try_and_is_told_the_attempts_left() -> None:
    assert limit_state([], THREE_A_MINUTE, 100.0) == (3, 0.0)
    assert limit_state([101.0, 100.0], THREE_A_MINUTE, 102.0) == (1, 0.0)


def test_an_address_at_its_limit_waits_until_its_oldest_failure_leaves_the_window() -> None:
    newest = [120.0, 110.0, 100.0]
    assert wait_of(limit_state(newest, THREE_A_MINUTE, 121.0)) == pytest.approx(39.0)
    assert wait_of(limit_state(newest, THREE_A_MINUTE, 159.5)) == pytest.approx(0.5)


def test_past_its_limit_an_address_waits_for_the_limits_newest_failure_not_the_oldest() -> None:
    # Attempts in flight at once all pass the check: a limit of 2 may hold 3 failures, and
    # then waits until only one is left, i.e. until the second newest (at 20) leaves.
    two = AttemptLimit("address", 2, "too many")
    assert wait_of(limit_state([30.0, 20.0, 10.0], two, 31.0)) == pytest.approx(49.0)


def test_a_wait_is_never_told_as_zero_seconds() -> None:
    assert whole_seconds(0.01) == 1
    assert whole_seconds(59.0) == 59
    assert whole_seconds(59.2) == 60


def test_a_limit_needs_at_least_one_attempt_in_a_positive_window() -> None:
    with pytest.raises(ValueError, match="at least one"):
        AttemptLimit("a", 0, "x")
    with pytest.raises(ValueError, match="positive window"):
        AttemptLimit("a", 1, "x", window_s=0)


def test_the_database_keeps_a_keyed_hash_that_names_neither_account_nor_address() -> None:
    key = '["203.0.113.5", "inspector1"]'
    kept = hashed_key(key_secret(SECRET), "login.account", key)
    assert re.fullmatch("[0-9a-f]{64}", kept), kept  # SHA-256 in hex, and nothing else
    # The same on every node that shares the secret; another key, scope or secret: another.
    assert kept == hashed_key(key_secret(SECRET), "login.account", key)
    assert kept != hashed_key(key_secret(SECRET), "login.account", '["203.0.113.5", "x"]')
    assert kept != hashed_key(key_secret(SECRET), "login.address", key)
    assert kept != hashed_key(key_secret(bytes(32)), "login.account", key)


def test_the_attempt_keys_key_is_not_the_token_secret() -> None:
    assert key_secret(SECRET) != SECRET
    assert len(key_secret(SECRET)) == 32
