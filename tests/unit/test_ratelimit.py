"""Failed-attempt limits (server.security.ratelimit): a sliding window per key, and guards
that put several of them on one kind of attempt."""

from __future__ import annotations

import pytest

from server.errors import RateLimited
from server.security.ratelimit import (
    AttemptGuard,
    AttemptLimit,
    AttemptLimiter,
    Failed,
    whole_seconds,
)


def test_address_may_try_until_it_reaches_the_limit() -> None:
    limiter = AttemptLimiter(limit=3, window_s=60)
    for second in range(2):
        limiter.record_failure("10.0.0.1", 100.0 + second)
    assert limiter.retry_after("10.0.0.1", 102.0) == 0.0


def test_address_at_the_limit_waits_until_its_oldest_failure_leaves_the_window() -> None:
    limiter = AttemptLimiter(limit=3, window_s=60)
    for at in (100.0, 110.0, 120.0):
        limiter.record_failure("10.0.0.1", at)
    assert limiter.retry_after("10.0.0.1", 121.0) == pytest.approx(39.0)
    assert limiter.retry_after("10.0.0.1", 159.5) == pytest.approx(0.5)
    assert limiter.retry_after("10.0.0.1", 160.0) == 0.0


def test_window_slides_one_failure_at_a_time() -> None:
    limiter = AttemptLimiter(limit=2, window_s=10)
    limiter.record_failure("a", 0.0)
    limiter.record_failure("a", 5.0)
    assert limiter.retry_after("a", 6.0) == pytest.approx(4.0)
    assert limiter.retry_after("a", 10.0) == 0.0  # the failure at 0 has left
    limiter.record_failure("a", 10.0)
    assert limiter.retry_after("a", 11.0) == pytest.approx(4.0)  # now 5 is the oldest


def test_addresses_are_limited_independently() -> None:
    limiter = AttemptLimiter(limit=1, window_s=60)
    limiter.record_failure("10.0.0.1", 0.0)
    assert limiter.retry_after("10.0.0.1", 1.0) > 0
    assert limiter.retry_after("10.0.0.2", 1.0) == 0.0


def test_unknown_address_may_try() -> None:
    assert AttemptLimiter(limit=1).retry_after("never-seen", 0.0) == 0.0


def test_idle_addresses_are_forgotten_when_the_table_is_full_but_active_ones_are_kept() -> None:
    limiter = AttemptLimiter(limit=1, window_s=10, max_keys=2)
    limiter.record_failure("idle", 0.0)
    limiter.record_failure("active", 95.0)
    limiter.record_failure("new", 100.0)  # table full: "idle" (last failure 100 s ago) goes
    assert limiter.retry_after("active", 100.0) > 0
    assert limiter.retry_after("new", 100.0) > 0
    assert limiter.retry_after("idle", 100.0) == 0.0
    assert set(limiter._failures) == {"active", "new"}


def test_attempts_left_count_down_and_come_back_as_failures_leave_the_window() -> None:
    limiter = AttemptLimiter(limit=3, window_s=60)
    assert limiter.attempts_left("a", 0.0) == 3
    limiter.record_failure("a", 0.0)
    limiter.record_failure("a", 10.0)
    assert limiter.attempts_left("a", 11.0) == 1
    assert limiter.attempts_left("a", 60.0) == 2  # the failure at 0 has left


# AttemptGuard: several limits on one kind of attempt


def _login_guard() -> AttemptGuard:
    return AttemptGuard(
        AttemptLimit("account", 2, "too many for this account"),
        AttemptLimit("address", 3, "too many from this address"),
    )


def test_a_failure_counts_under_every_limit_and_answers_the_fewest_attempts_left() -> None:
    guard = _login_guard()
    assert guard.fail({"account": "a|x", "address": "a"}, 0.0) == Failed(1, 0)
    assert guard.fail({"account": "a|y", "address": "a"}, 1.0) == Failed(1, 0)
    # x's account and the address have none left: wait until the oldest (at 0) leaves.
    assert guard.fail({"account": "a|x", "address": "a"}, 2.0) == Failed(0, 58)


def test_a_used_up_limit_refuses_with_its_own_reason_and_whole_seconds() -> None:
    guard = _login_guard()
    for at in (0.0, 0.5):
        guard.fail({"account": "a|x", "address": "a"}, at)
    with pytest.raises(RateLimited) as refused:
        guard.check({"account": "a|x", "address": "a"}, 10.2)
    assert refused.value.retry_after == 50  # 49.8 s rounded up
    assert refused.value.reason == "too many for this account, retry in 50 s"
    guard.check({"account": "a|y", "address": "a"}, 10.2)  # another account may try
    guard.fail({"account": "a|y", "address": "a"}, 11.0)
    with pytest.raises(RateLimited, match="from this address"):
        guard.check({"account": "a|z", "address": "a"}, 12.0)
    guard.check({"account": "b|z", "address": "b"}, 12.0)  # another address may try


def test_a_wait_is_never_told_as_zero_seconds() -> None:
    assert whole_seconds(0.01) == 1
    assert whole_seconds(59.0) == 59
    assert whole_seconds(59.2) == 60


def test_a_guard_needs_limits_of_distinct_scopes() -> None:
    with pytest.raises(ValueError, match="distinct"):
        AttemptGuard(AttemptLimit("a", 1, "x"), AttemptLimit("a", 2, "y"))
    with pytest.raises(ValueError, match="at least one"):
        AttemptLimit("a", 0, "x")
