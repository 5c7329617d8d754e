"""Limits on failed attempts (sliding windows), for login and short-code entry.

One ``AttemptLimiter`` counts failures per key in one window. An ``AttemptGuard`` puts several
of them on one kind of attempt, each with its own key: sign-ins are limited per account and
address (one inspector's wrong passwords lock only that account, from that address) and,
looser, per address (so an address cannot try many accounts). An attempt waits while any of
its limits is used up; a failure counts towards every one of them.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from server.errors import RateLimited


class AttemptLimiter:
    """Allows ``limit`` failed attempts per ``window_s`` seconds per key."""

    def __init__(self, limit: int, window_s: float = 60.0, max_keys: int = 100_000) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError("a limit needs at least one attempt in a positive window")
        self._limit = limit
        self._window_s = window_s
        self._max_keys = max_keys
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float] | None:
        failures = self._failures.get(key)
        while failures and failures[0] <= now - self._window_s:
            failures.popleft()
        return failures

    def retry_after(self, key: str, now: float) -> float:
        """0 if ``key`` may try now, else the seconds until it may."""
        failures = self._recent(key, now)
        if not failures or len(failures) < self._limit:
            return 0.0
        return failures[-self._limit] + self._window_s - now

    def attempts_left(self, key: str, now: float) -> int:
        """How many more failures ``key`` may have before it must wait."""
        failures = self._recent(key, now)
        return max(0, self._limit - len(failures or ()))

    def record_failure(self, key: str, now: float) -> None:
        if key not in self._failures and len(self._failures) >= self._max_keys:
            self._forget_idle(now)
        self._failures.setdefault(key, deque()).append(now)

    def _forget_idle(self, now: float) -> None:
        idle = [k for k, v in self._failures.items() if not v or v[-1] <= now - self._window_s]
        for key in idle:
            del self._failures[key]


@dataclass(frozen=True, slots=True)
class AttemptLimit:
    """One limit of a guard: ``scope`` names what its key is made of, ``refusal`` is the
    reason a client reads when it is used up ("too many failed sign-ins from this address")."""

    scope: str
    limit: int
    refusal: str
    window_s: float = 60.0

    def __post_init__(self) -> None:
        if self.limit < 1 or self.window_s <= 0:
            raise ValueError(f"limit {self.scope!r}: at least one attempt in a positive window")


@dataclass(frozen=True, slots=True)
class Failed:
    """What a failed attempt leaves: the attempts left before a wait, and the wait (seconds,
    whole, 0 while attempts are left)."""

    attempts_left: int
    retry_after: int


def whole_seconds(wait: float) -> int:
    """A wait as a client is told it (``Retry-After``): whole seconds, rounded up, at least 1."""
    return max(1, math.ceil(wait - 1e-9))


class AttemptGuard:
    """Several limits on one kind of attempt; ``keys`` maps each limit's scope to its key."""

    def __init__(self, *limits: AttemptLimit, max_keys: int = 100_000) -> None:
        if not limits or len({limit.scope for limit in limits}) != len(limits):
            raise ValueError("a guard needs limits of distinct scopes")
        self._limits = tuple(
            (limit, AttemptLimiter(limit.limit, limit.window_s, max_keys)) for limit in limits
        )

    def check(self, keys: Mapping[str, str], now: float) -> None:
        """Raise ``RateLimited`` (with the longest wait) if any limit is used up."""
        waits = [
            (limiter.retry_after(keys[limit.scope], now), limit) for limit, limiter in self._limits
        ]
        wait, limit = max(waits, key=lambda item: item[0])
        if wait > 0:
            seconds = whole_seconds(wait)
            raise RateLimited(f"{limit.refusal}, retry in {seconds} s", seconds)

    def fail(self, keys: Mapping[str, str], now: float) -> Failed:
        """Count a failed attempt under every limit."""
        for limit, limiter in self._limits:
            limiter.record_failure(keys[limit.scope], now)
        left = min(limiter.attempts_left(keys[limit.scope], now) for limit, limiter in self._limits)
        if left > 0:
            return Failed(left, 0)
        wait = max(limiter.retry_after(keys[limit.scope], now) for limit, limiter in self._limits)
        return Failed(0, whole_seconds(wait))
