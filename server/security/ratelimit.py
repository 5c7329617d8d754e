"""Limits on failed attempts (sliding windows), for login and short-code entry.

An ``AttemptGuard`` puts several limits on one kind of attempt, each with its own key: sign-ins
are limited per account and address (one inspector's wrong passwords lock only that account,
from that address) and, looser, per address (so an address cannot try many accounts). An
attempt waits while any of its limits is used up; a failure counts towards every one of them.

The failures are rows of the database (``server/store/attempts.py``), so every process on one
database counts the same ones and a restart forgets none; a check is one read transaction over
every limit of the guard, a failure one write transaction (its rows, a few expired ones pruned,
the limits read again). The keys are stored as keyed hashes (HMAC-SHA256 under a key derived
from the token secret, which every node shares): why, in ``server/store/attempts.py``.

A check and its failure are two transactions with the sign-in between, so attempts in flight at
once (on one node or on several) may all pass the check before any is counted, as they could in
one process; a limit may then hold more failures than it allows, and its wait runs until fewer
than its limit are left in the window.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from server.errors import RateLimited
from server.store.attempts import Attempts, Window

# What the token secret is hashed with to make the attempt keys' key: a key of its own, so
# that no attempt key is ever a MAC a token could be made of.
KEY_SECRET_LABEL = b"takan failed-attempt keys v1"


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


def key_secret(token_secret: bytes) -> bytes:
    """The key the attempt keys are hashed under, derived from the token secret."""
    return hmac.new(token_secret, KEY_SECRET_LABEL, hashlib.sha256).digest()


def hashed_key(secret: bytes, scope: str, key: str) -> str:
    """What the database keeps of ``key`` under ``scope``: its HMAC-SHA256 under ``secret``
    (``key_secret``), hex. Equal for equal keys on every node, and nothing a reader without
    the secret can turn back into a name or an address."""
    message = json.dumps([scope, key]).encode("ascii")
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def limit_state(newest: Sequence[float], limit: AttemptLimit, now: float) -> tuple[int, float]:
    """(attempts left, seconds to wait) under ``limit`` whose failures in the window, newest
    first, are ``newest`` (at most ``limit.limit`` of them are needed): none left, the wait
    lasts until the ``limit.limit``-th newest leaves the window."""
    if len(newest) < limit.limit:
        return limit.limit - len(newest), 0.0
    return 0, newest[limit.limit - 1] + limit.window_s - now


class AttemptGuard:
    """Several limits on one kind of attempt (``name``: "login", "code"), counted in
    ``attempts``; ``keys`` maps each limit's scope to its key."""

    def __init__(self, name: str, *limits: AttemptLimit, attempts: Attempts, secret: bytes) -> None:
        if not name:
            raise ValueError("a guard needs a name")
        if not limits or len({limit.scope for limit in limits}) != len(limits):
            raise ValueError("a guard needs limits of distinct scopes")
        self._name = name
        self._limits = limits
        self._attempts = attempts
        self._secret = key_secret(secret)

    def _windows(self, keys: Mapping[str, str], now: float) -> list[Window]:
        windows = []
        for limit in self._limits:
            scope = f"{self._name}.{limit.scope}"
            key = hashed_key(self._secret, scope, keys[limit.scope])
            windows.append(Window(scope, key, now - limit.window_s, limit.limit))
        return windows

    def _states(self, recent: Sequence[Sequence[float]], now: float) -> list[tuple[int, float]]:
        return [
            limit_state(newest, limit, now)
            for newest, limit in zip(recent, self._limits, strict=True)
        ]

    async def check(self, keys: Mapping[str, str], now: float) -> None:
        """Raise ``RateLimited`` (with the longest wait) if any limit is used up."""
        states = self._states(await self._attempts.recent(self._windows(keys, now)), now)
        wait, limit = max(
            ((wait, limit) for (_, wait), limit in zip(states, self._limits, strict=True)),
            key=lambda item: item[0],
        )
        if wait > 0:
            seconds = whole_seconds(wait)
            raise RateLimited(f"{limit.refusal}, retry in {seconds} s", seconds)

    async def fail(self, keys: Mapping[str, str], now: float) -> Failed:
        """Count a failed attempt under every limit."""
        states = self._states(await self._attempts.fail(self._windows(keys, now), now), now)
        left = min(left for left, _ in states)
        if left > 0:
            return Failed(left, 0)
        return Failed(0, whole_seconds(max(wait for _, wait in states)))
