"""Failed-attempt limiter (server.ratelimit): a sliding window per client address."""

from __future__ import annotations

import pytest

from server.security.ratelimit import AttemptLimiter


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
