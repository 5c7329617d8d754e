"""Users, their sessions and their passkeys."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

from server.store.backend import Row, Tx
from server.store.models import Passkey, User
from server.store.repository import Repository

_USER = "SELECT id, username, role, password_hash FROM users"


def add_user(tx: Tx, username: str, role: str, password_hash: str, now: str) -> User:
    row = tx.one(
        "INSERT INTO users (username, role, password_hash, created_at) VALUES (?, ?, ?, ?)"
        " RETURNING id",
        (username, role, password_hash, now),
    )
    if row is None:  # pragma: no cover - RETURNING always answers on INSERT
        raise RuntimeError("user was not inserted")
    return User(int(row["id"]), username, role, password_hash)


class Users(Repository):
    async def add(self, username: str, role: str, password_hash: str, now: str) -> User:
        return await self._db.write(lambda tx: add_user(tx, username, role, password_hash, now))

    async def by_name(self, username: str) -> User | None:
        row = await self._one(_USER + " WHERE username = ?", (username,))
        return User(**row) if row else None

    async def by_id(self, user_id: int) -> User | None:
        row = await self._one(_USER + " WHERE id = ?", (user_id,))
        return User(**row) if row else None

    async def count(self) -> int:
        row = await self._one("SELECT COUNT(*) AS n FROM users")
        return int(row["n"]) if row else 0

    async def unlock(self, user_id: int, role: str, password_hash: str) -> None:
        """Give an account (one ``takan reindex`` restored locked) its role and password."""
        await self._run(
            "UPDATE users SET role = ?, password_hash = ? WHERE id = ?",
            (role, password_hash, user_id),
        )

    async def change_password(self, user_id: int, password_hash: str, now: int) -> int:
        """Set a new password and end every live session of the user: how many there were."""

        def change(tx: Tx) -> int:
            tx.run("UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, user_id))
            return tx.run(
                "UPDATE sessions SET revoked = 1"
                " WHERE user_id = ? AND revoked = 0 AND expires_at > ?",
                (user_id, now),
            )

        return await self._db.write(change)

    async def assignable_inspectors(self) -> list[str]:
        """Every inspector account by name but the locked ones (a password hash that starts
        with '!', as those ``takan reindex`` restores, matches no password)."""
        rows = await self._all(
            "SELECT username FROM users WHERE role = 'inspector' AND password_hash NOT LIKE '!%'"
            " ORDER BY username"
        )
        return [row["username"] for row in rows]

    async def ids_or_locked(
        self, names: Iterable[str], role: str, locked_hash: str, now: str
    ) -> tuple[dict[str, int], list[str]]:
        """The ids of ``names``, adding each unknown one as a locked account with ``role``:
        (ids by name, the names added)."""
        wanted = sorted(set(names))

        def resolve(tx: Tx) -> tuple[dict[str, int], list[str]]:
            ids: dict[str, int] = {}
            added: list[str] = []
            for name in wanted:
                row = tx.one("SELECT id FROM users WHERE username = ?", (name,))
                if row is None:
                    ids[name] = add_user(tx, name, role, locked_hash, now).id
                    added.append(name)
                else:
                    ids[name] = int(row["id"])
            return ids, added

        return await self._db.write(resolve)

    # sessions

    async def add_session(self, session_id: str, user_id: int, expires_at: int) -> None:
        await self._run(
            "INSERT INTO sessions (session_id, user_id, expires_at) VALUES (?, ?, ?)",
            (session_id, user_id, expires_at),
        )

    async def session_is_live(self, session_id: str, now: int) -> bool:
        row = await self._one(
            "SELECT 1 AS live FROM sessions WHERE session_id = ? AND revoked = 0"
            " AND expires_at > ?",
            (session_id, now),
        )
        return row is not None

    async def revoke_session(self, session_id: str) -> None:
        await self._run("UPDATE sessions SET revoked = 1 WHERE session_id = ?", (session_id,))

    # passkeys

    async def add_passkey(self, passkey: Passkey) -> None:
        await self._run(
            "INSERT INTO passkeys (credential_id, user_id, label, public_key_cose,"
            " public_key_spki, rp_id, origin, sign_count, registered_at, last_used_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            dataclasses.astuple(passkey),
        )

    async def passkey(self, credential_id: str) -> Passkey | None:
        row = await self._one("SELECT * FROM passkeys WHERE credential_id = ?", (credential_id,))
        return _passkey(row) if row else None

    async def passkeys_of(self, user_id: int) -> list[Passkey]:
        rows = await self._all(
            "SELECT * FROM passkeys WHERE user_id = ? ORDER BY registered_at, credential_id",
            (user_id,),
        )
        return [_passkey(row) for row in rows]

    async def add_challenge(
        self,
        token: str,
        challenge: StoredChallenge,
        expires_ms: int,
        now_ms: int,
        keep_per_user: int,
    ) -> None:
        """A challenge waiting for its answer; the expired ones go, and the user's oldest
        beyond ``keep_per_user``."""

        def add(tx: Tx) -> None:
            tx.run("DELETE FROM passkey_challenges WHERE expires_ms <= ?", (now_ms,))
            kept = tx.all(
                "SELECT token FROM passkey_challenges WHERE username = ?"
                " ORDER BY expires_ms DESC, token",
                (challenge.username,),
            )
            for row in kept[keep_per_user - 1 :]:
                tx.run("DELETE FROM passkey_challenges WHERE token = ?", (row["token"],))
            tx.run(
                "INSERT INTO passkey_challenges (token, username, purpose, challenge, message,"
                " expires_ms) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    token,
                    challenge.username,
                    challenge.purpose,
                    challenge.challenge,
                    challenge.message,
                    expires_ms,
                ),
            )

        await self._db.write(add)

    async def take_challenge(self, token: str, now_ms: int) -> StoredChallenge | None:
        """The challenge, removed (each is answered once); None if unknown or expired."""
        row = await self._db.write(
            lambda tx: tx.one(
                "DELETE FROM passkey_challenges WHERE token = ? RETURNING username, purpose,"
                " challenge, message, expires_ms",
                (token,),
            )
        )
        if row is None or int(row["expires_ms"]) <= now_ms:
            return None
        return StoredChallenge(
            row["username"], row["purpose"], bytes(row["challenge"]), bytes(row["message"])
        )

    async def passkey_used(self, credential_id: str, sign_count: int, now: str) -> None:
        await self._run(
            "UPDATE passkeys SET sign_count = ?, last_used_at = ? WHERE credential_id = ?",
            (sign_count, now, credential_id),
        )


@dataclass(frozen=True, slots=True)
class StoredChallenge:
    username: str
    purpose: str
    challenge: bytes
    message: bytes


def _passkey(row: Row) -> Passkey:
    return Passkey(**{**row, "public_key_cose": bytes(row["public_key_cose"])})
