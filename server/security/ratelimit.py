"""Per-address limits on failed attempts (sliding window), for login and short-code entry."""

from __future__ import annotations

from collections import deque


class AttemptLimiter:
    """Allows ``limit`` failed attempts per ``window_s`` seconds per key (a client address)."""

    def __init__(self, limit: int, window_s: float = 60.0, max_keys: int = 100_000) -> None:
        self._limit = limit
        self._window_s = window_s
        self._max_keys = max_keys
        self._failures: dict[str, deque[float]] = {}

    def retry_after(self, key: str, now: float) -> float:
        """0 if ``key`` may try now, else the seconds until it may."""
        failures = self._failures.get(key)
        if not failures:
            return 0.0
        while failures and failures[0] <= now - self._window_s:
            failures.popleft()
        if len(failures) < self._limit:
            return 0.0
        return failures[0] + self._window_s - now

    def record_failure(self, key: str, now: float) -> None:
        if key not in self._failures and len(self._failures) >= self._max_keys:
            self._forget_idle(now)
        self._failures.setdefault(key, deque()).append(now)

    def _forget_idle(self, now: float) -> None:
        idle = [k for k, v in self._failures.items() if not v or v[-1] <= now - self._window_s]
        for key in idle:
            del self._failures[key]
