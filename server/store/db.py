"""Metadata in SQLite: users, sessions, cases, inspections, participants.

Queries are tiny and indexed, so they run on the event loop; the schema is created and migrated by
the app itself (``PRAGMA user_version`` counts the migrations applied).
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE users (
        id INTEGER PRIMARY KEY,
        username TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL CHECK (role IN ('inspector', 'auditor', 'admin')),
        password_hash TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE sessions (
        session_id TEXT PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id),
        expires_at INTEGER NOT NULL,
        revoked INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE cases (
        case_id TEXT PRIMARY KEY,
        title TEXT NOT NULL,
        address TEXT NOT NULL,
        applicant_name TEXT NOT NULL DEFAULT '',
        applicant_phone TEXT NOT NULL DEFAULT '',
        case_type TEXT NOT NULL DEFAULT '',
        site_lat REAL,
        site_lon REAL,
        created_by INTEGER NOT NULL REFERENCES users(id),
        created_at TEXT NOT NULL
    );
    CREATE TABLE inspections (
        inspection_id TEXT PRIMARY KEY,
        case_id TEXT NOT NULL REFERENCES cases(case_id),
        status TEXT NOT NULL CHECK (status IN ('active', 'ended')),
        created_by INTEGER NOT NULL REFERENCES users(id),
        created_at TEXT NOT NULL,
        ended_at TEXT,
        invite_expires_at INTEGER NOT NULL,
        short_code TEXT,
        consented_at TEXT
    );
    CREATE INDEX inspections_case ON inspections(case_id);
    CREATE UNIQUE INDEX inspections_active_code ON inspections(short_code)
        WHERE status = 'active';
    CREATE TABLE participants (
        id INTEGER PRIMARY KEY,
        inspection_id TEXT NOT NULL REFERENCES inspections(inspection_id),
        participant_id TEXT NOT NULL,
        role TEXT NOT NULL,
        user_id INTEGER REFERENCES users(id),
        display_name TEXT NOT NULL,
        joined_at TEXT NOT NULL,
        left_at TEXT
    );
    CREATE INDEX participants_inspection ON participants(inspection_id);
    """,
    # Auditor search (issue 5) and the inspection's own evidence (issue 6). The archive holds
    # the evidence; these tables index it so that pages and searches need no archive reads.
    """
    ALTER TABLE inspections ADD COLUMN outcome TEXT
        CHECK (outcome IS NULL OR outcome IN ('pass', 'fail', 'correction'));
    ALTER TABLE inspections ADD COLUMN concluded_at TEXT;
    ALTER TABLE inspections ADD COLUMN conclusion_reason TEXT;
    ALTER TABLE inspections ADD COLUMN scheduled_at TEXT;
    ALTER TABLE inspections ADD COLUMN template_id TEXT;
    CREATE INDEX cases_created_at ON cases(created_at, case_id);
    CREATE INDEX cases_applicant ON cases(applicant_name COLLATE NOCASE);
    CREATE INDEX cases_created_by ON cases(created_by, created_at);
    CREATE INDEX inspections_created_by ON inspections(created_by, created_at);
    CREATE INDEX inspections_outcome ON inspections(outcome, case_id);
    CREATE TABLE checklist_templates (
        template_id TEXT PRIMARY KEY,
        case_type TEXT NOT NULL,
        name TEXT NOT NULL,
        items_json TEXT NOT NULL,
        version INTEGER NOT NULL DEFAULT 1,
        updated_by INTEGER REFERENCES users(id),
        updated_at TEXT NOT NULL
    );
    CREATE INDEX checklist_templates_case_type ON checklist_templates(case_type);
    CREATE TABLE checklist_marks (
        inspection_id TEXT NOT NULL REFERENCES inspections(inspection_id),
        item_id TEXT NOT NULL,
        done INTEGER NOT NULL,
        note TEXT NOT NULL DEFAULT '',
        marked_by INTEGER REFERENCES users(id),
        marked_at TEXT NOT NULL,
        PRIMARY KEY (inspection_id, item_id)
    );
    CREATE TABLE snapshots (
        snapshot_id TEXT PRIMARY KEY,
        inspection_id TEXT NOT NULL REFERENCES inspections(inspection_id),
        object_key TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        size INTEGER NOT NULL,
        width INTEGER NOT NULL,
        height INTEGER NOT NULL,
        taken_at TEXT NOT NULL,
        media_pts INTEGER,
        lat TEXT,
        lon TEXT,
        taken_by INTEGER REFERENCES users(id),
        chain_seq INTEGER NOT NULL
    );
    CREATE INDEX snapshots_inspection ON snapshots(inspection_id, taken_at);
    CREATE TABLE annotations (
        annotation_id TEXT PRIMARY KEY,
        snapshot_id TEXT NOT NULL REFERENCES snapshots(snapshot_id),
        object_key TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        created_by INTEGER REFERENCES users(id),
        created_at TEXT NOT NULL
    );
    CREATE INDEX annotations_snapshot ON annotations(snapshot_id);
    CREATE TABLE locations (
        id INTEGER PRIMARY KEY,
        inspection_id TEXT NOT NULL REFERENCES inspections(inspection_id),
        lat TEXT NOT NULL,
        lon TEXT NOT NULL,
        accuracy_m TEXT NOT NULL,
        fix_at TEXT NOT NULL,
        received_at TEXT NOT NULL,
        chain_seq INTEGER NOT NULL
    );
    CREATE INDEX locations_inspection ON locations(inspection_id, id);
    CREATE TABLE challenges (
        challenge_id TEXT PRIMARY KEY,
        inspection_id TEXT NOT NULL REFERENCES inspections(inspection_id),
        kind TEXT NOT NULL CHECK (kind IN ('code', 'instruction')),
        prompt TEXT NOT NULL,
        issued_by INTEGER REFERENCES users(id),
        issued_at TEXT NOT NULL,
        shown_at TEXT,
        judged_at TEXT,
        judgement TEXT CHECK (judgement IS NULL OR judgement IN ('passed', 'failed')),
        note TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX challenges_inspection ON challenges(inspection_id, issued_at);
    CREATE TABLE reports (
        inspection_id TEXT NOT NULL REFERENCES inspections(inspection_id),
        version INTEGER NOT NULL,
        html_key TEXT NOT NULL,
        html_sha256 TEXT NOT NULL,
        pdf_key TEXT NOT NULL,
        pdf_sha256 TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (inspection_id, version)
    );
    """,
    # Issue 6: the photos a checklist item points at, and the chain entry of the conclusion in
    # force (a correction must name it).
    """
    ALTER TABLE checklist_marks ADD COLUMN snapshot_ids TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE inspections ADD COLUMN conclusion_seq INTEGER;
    """,
    # Issue 19: the case number as written (the case ID is the archive key derived from it), and
    # the site as entered in a Chinese map's coordinate system (site_lat/lon stay WGS-84).
    """
    ALTER TABLE cases ADD COLUMN case_number TEXT NOT NULL DEFAULT '';
    UPDATE cases SET case_number = case_id;
    CREATE UNIQUE INDEX cases_case_number ON cases(case_number);
    ALTER TABLE cases ADD COLUMN site_system TEXT
        CHECK (site_system IS NULL OR site_system IN ('wgs84', 'gcj02', 'bd09'));
    ALTER TABLE cases ADD COLUMN site_input_lat REAL;
    ALTER TABLE cases ADD COLUMN site_input_lon REAL;
    UPDATE cases SET site_system = 'wgs84', site_input_lat = site_lat, site_input_lon = site_lon
        WHERE site_lat IS NOT NULL AND site_lon IS NOT NULL;
    """,
    # Issue 19: a case's inspectors (two or more staff); before, its creator was the one.
    """
    CREATE TABLE case_inspectors (
        case_id TEXT NOT NULL REFERENCES cases(case_id),
        user_id INTEGER NOT NULL REFERENCES users(id),
        assigned_at TEXT NOT NULL,
        assigned_by INTEGER REFERENCES users(id),
        PRIMARY KEY (case_id, user_id)
    );
    CREATE INDEX case_inspectors_user ON case_inspectors(user_id, case_id);
    INSERT INTO case_inspectors (case_id, user_id, assigned_at, assigned_by)
        SELECT case_id, created_by, created_at, created_by FROM cases;
    """,
    # Issue 19: a checklist item's verdict (pass, fail, not_applicable); NULL for the older
    # "done" ticks, which stay readable.
    """
    ALTER TABLE checklist_marks ADD COLUMN verdict TEXT
        CHECK (verdict IS NULL OR verdict IN ('pass', 'fail', 'not_applicable'));
    """,
    # Issue 19: staff passkeys (WebAuthn) that sign conclusions, and which case chains have
    # enrolled each one (a passkey_enrolled entry precedes its first conclusion in a case).
    """
    CREATE TABLE passkeys (
        credential_id TEXT PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id),
        label TEXT NOT NULL,
        public_key_cose BLOB NOT NULL,
        public_key_spki TEXT NOT NULL,
        rp_id TEXT NOT NULL,
        origin TEXT NOT NULL,
        sign_count INTEGER NOT NULL,
        registered_at TEXT NOT NULL,
        last_used_at TEXT
    );
    CREATE INDEX passkeys_user ON passkeys(user_id);
    CREATE TABLE case_passkeys (
        case_id TEXT NOT NULL REFERENCES cases(case_id),
        credential_id TEXT NOT NULL REFERENCES passkeys(credential_id),
        seq INTEGER NOT NULL,
        PRIMARY KEY (case_id, credential_id)
    );
    """,
)


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    role: str
    password_hash: str


@dataclass(frozen=True, slots=True)
class Passkey:
    """A staff user's registered WebAuthn credential (``credential_id`` is base64url)."""

    credential_id: str
    user_id: int
    label: str
    public_key_cose: bytes
    public_key_spki: str
    rp_id: str
    origin: str
    sign_count: int
    registered_at: str
    last_used_at: str | None


@dataclass(frozen=True, slots=True)
class Case:
    case_id: str
    title: str
    address: str
    applicant_name: str
    applicant_phone: str
    case_type: str
    site_lat: float | None
    site_lon: float | None
    created_by: int
    created_at: str
    case_number: str = ""  # as written; "" (rows before issue 19): the case ID
    site_system: str | None = None  # what site_input_* are in: wgs84, gcj02 or bd09
    site_input_lat: float | None = None  # the site as entered; site_lat/lon are WGS-84
    site_input_lon: float | None = None

    @property
    def number(self) -> str:
        """The case number people read (the case ID is the archive's key)."""
        return self.case_number or self.case_id

    def to_json(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "case_number": self.number,
            "title": self.title,
            "address": self.address,
            "applicant_name": self.applicant_name,
            "applicant_phone": self.applicant_phone,
            "case_type": self.case_type,
            "site_lat": self.site_lat,
            "site_lon": self.site_lon,
            "site_system": self.site_system,
            "site_input_lat": self.site_input_lat,
            "site_input_lon": self.site_input_lon,
            "created_at": self.created_at,
        }


@dataclass(frozen=True, slots=True)
class Inspection:
    inspection_id: str
    case_id: str
    status: str
    created_by: int
    created_at: str
    ended_at: str | None
    invite_expires_at: int
    short_code: str | None
    consented_at: str | None
    outcome: str | None = None
    concluded_at: str | None = None
    conclusion_reason: str | None = None
    scheduled_at: str | None = None
    template_id: str | None = None
    conclusion_seq: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "inspection_id": self.inspection_id,
            "case_id": self.case_id,
            "status": self.status,
            "created_at": self.created_at,
            "ended_at": self.ended_at,
            "consented_at": self.consented_at,
            "outcome": self.outcome,
            "concluded_at": self.concluded_at,
            "conclusion_reason": self.conclusion_reason,
            "scheduled_at": self.scheduled_at,
            "template_id": self.template_id,
        }


class Database:
    def __init__(self, path: Path) -> None:
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._migrate()

    def close(self) -> None:
        self._conn.close()

    def _migrate(self) -> None:
        version = int(self._conn.execute("PRAGMA user_version").fetchone()[0])
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            with self.transaction():
                for statement in filter(str.strip, script.split(";")):
                    self._conn.execute(statement)
                self._conn.execute(f"PRAGMA user_version = {number}")

    @property
    def conn(self) -> sqlite3.Connection:
        """For the feature modules that own their own queries (search, evidence, checklists)."""
        return self._conn

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """``BEGIN IMMEDIATE`` … ``COMMIT``, rolled back on any exception."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    # users and sessions

    def add_user(self, username: str, role: str, password_hash: str, now: str) -> User:
        cur = self._conn.execute(
            "INSERT INTO users (username, role, password_hash, created_at) VALUES (?, ?, ?, ?)",
            (username, role, password_hash, now),
        )
        if cur.lastrowid is None:  # pragma: no cover - sqlite always sets it on INSERT
            raise RuntimeError("user was not inserted")
        return User(cur.lastrowid, username, role, password_hash)

    def user_by_name(self, username: str) -> User | None:
        row = self._conn.execute(
            "SELECT id, username, role, password_hash FROM users WHERE username = ?", (username,)
        ).fetchone()
        return User(**dict(row)) if row else None

    def user_by_id(self, user_id: int) -> User | None:
        row = self._conn.execute(
            "SELECT id, username, role, password_hash FROM users WHERE id = ?", (user_id,)
        ).fetchone()
        return User(**dict(row)) if row else None

    # passkeys

    def add_passkey(self, passkey: Passkey) -> None:
        self._conn.execute(
            "INSERT INTO passkeys (credential_id, user_id, label, public_key_cose,"
            " public_key_spki, rp_id, origin, sign_count, registered_at, last_used_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            dataclasses.astuple(passkey),
        )

    def passkey(self, credential_id: str) -> Passkey | None:
        row = self._conn.execute(
            "SELECT * FROM passkeys WHERE credential_id = ?", (credential_id,)
        ).fetchone()
        return Passkey(**dict(row)) if row else None

    def passkeys_of(self, user_id: int) -> list[Passkey]:
        rows = self._conn.execute(
            "SELECT * FROM passkeys WHERE user_id = ? ORDER BY registered_at, credential_id",
            (user_id,),
        )
        return [Passkey(**dict(row)) for row in rows]

    def passkey_used(self, credential_id: str, sign_count: int, now: str) -> None:
        self._conn.execute(
            "UPDATE passkeys SET sign_count = ?, last_used_at = ? WHERE credential_id = ?",
            (sign_count, now, credential_id),
        )

    def case_passkey_seq(self, case_id: str, credential_id: str) -> int | None:
        """The chain seq of the ``passkey_enrolled`` entry of this credential in this case."""
        row = self._conn.execute(
            "SELECT seq FROM case_passkeys WHERE case_id = ? AND credential_id = ?",
            (case_id, credential_id),
        ).fetchone()
        return int(row[0]) if row else None

    def add_case_passkey(self, case_id: str, credential_id: str, seq: int) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO case_passkeys (case_id, credential_id, seq) VALUES (?, ?, ?)",
            (case_id, credential_id, seq),
        )

    def unlock_user(self, user_id: int, role: str, password_hash: str) -> None:
        """Give an account (one ``takan reindex`` restored locked) its role and password."""
        self._conn.execute(
            "UPDATE users SET role = ?, password_hash = ? WHERE id = ?",
            (role, password_hash, user_id),
        )

    def set_password(self, user_id: int, password_hash: str) -> None:
        self._conn.execute(
            "UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, user_id)
        )

    def revoke_user_sessions(self, user_id: int, now: int) -> int:
        """End every live session of the user (a new password): how many there were."""
        cur = self._conn.execute(
            "UPDATE sessions SET revoked = 1 WHERE user_id = ? AND revoked = 0 AND expires_at > ?",
            (user_id, now),
        )
        return cur.rowcount

    def count_users(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM users").fetchone()[0])

    def add_session(self, session_id: str, user_id: int, expires_at: int) -> None:
        self._conn.execute(
            "INSERT INTO sessions (session_id, user_id, expires_at) VALUES (?, ?, ?)",
            (session_id, user_id, expires_at),
        )

    def session_is_live(self, session_id: str, now: int) -> bool:
        row = self._conn.execute(
            "SELECT 1 FROM sessions WHERE session_id = ? AND revoked = 0 AND expires_at > ?",
            (session_id, now),
        ).fetchone()
        return row is not None

    def revoke_session(self, session_id: str) -> None:
        self._conn.execute("UPDATE sessions SET revoked = 1 WHERE session_id = ?", (session_id,))

    # cases

    def add_case(self, case: Case) -> None:
        self._conn.execute(
            "INSERT INTO cases (case_id, title, address, applicant_name, applicant_phone,"
            " case_type, site_lat, site_lon, created_by, created_at, case_number, site_system,"
            " site_input_lat, site_input_lon) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                case.case_id,
                case.title,
                case.address,
                case.applicant_name,
                case.applicant_phone,
                case.case_type,
                case.site_lat,
                case.site_lon,
                case.created_by,
                case.created_at,
                case.number,
                case.site_system,
                case.site_input_lat,
                case.site_input_lon,
            ),
        )

    def case(self, case_id: str) -> Case | None:
        row = self._conn.execute("SELECT * FROM cases WHERE case_id = ?", (case_id,)).fetchone()
        return Case(**dict(row)) if row else None

    def case_by_number(self, number: str) -> Case | None:
        row = self._conn.execute("SELECT * FROM cases WHERE case_number = ?", (number,)).fetchone()
        return Case(**dict(row)) if row else None

    def cases(self, created_by: int | None = None, limit: int = 200) -> list[Case]:
        if created_by is None:
            rows = self._conn.execute(
                "SELECT * FROM cases ORDER BY created_at DESC, case_id LIMIT ?", (limit,)
            )
        else:
            rows = self._conn.execute(
                "SELECT * FROM cases WHERE created_by = ? ORDER BY created_at DESC, case_id"
                " LIMIT ?",
                (created_by, limit),
            )
        return [Case(**dict(row)) for row in rows]

    # inspections

    def add_inspection(self, inspection: Inspection) -> None:
        self._conn.execute(
            "INSERT INTO inspections (inspection_id, case_id, status, created_by, created_at,"
            " ended_at, invite_expires_at, short_code, consented_at, scheduled_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                inspection.inspection_id,
                inspection.case_id,
                inspection.status,
                inspection.created_by,
                inspection.created_at,
                inspection.ended_at,
                inspection.invite_expires_at,
                inspection.short_code,
                inspection.consented_at,
                inspection.scheduled_at,
            ),
        )

    def inspection(self, inspection_id: str) -> Inspection | None:
        row = self._conn.execute(
            "SELECT * FROM inspections WHERE inspection_id = ?", (inspection_id,)
        ).fetchone()
        return Inspection(**dict(row)) if row else None

    def inspections_of_case(self, case_id: str) -> list[Inspection]:
        rows = self._conn.execute(
            "SELECT * FROM inspections WHERE case_id = ? ORDER BY created_at", (case_id,)
        )
        return [Inspection(**dict(row)) for row in rows]

    def active_inspection_by_code(self, code: str) -> Inspection | None:
        row = self._conn.execute(
            "SELECT * FROM inspections WHERE short_code = ? AND status = 'active'", (code,)
        ).fetchone()
        return Inspection(**dict(row)) if row else None

    def end_inspection(self, inspection_id: str, now: str) -> bool:
        cur = self._conn.execute(
            "UPDATE inspections SET status = 'ended', ended_at = ?"
            " WHERE inspection_id = ? AND status = 'active'",
            (now, inspection_id),
        )
        return cur.rowcount == 1

    def record_consent(self, inspection_id: str, now: str) -> None:
        self._conn.execute(
            "UPDATE inspections SET consented_at = ?"
            " WHERE inspection_id = ? AND consented_at IS NULL",
            (now, inspection_id),
        )

    # participants

    def add_participant(
        self,
        inspection_id: str,
        participant_id: str,
        role: str,
        user_id: int | None,
        display_name: str,
        now: str,
    ) -> None:
        self._conn.execute(
            "INSERT INTO participants (inspection_id, participant_id, role, user_id,"
            " display_name, joined_at) VALUES (?, ?, ?, ?, ?, ?)",
            (inspection_id, participant_id, role, user_id, display_name, now),
        )

    def participant_left(self, inspection_id: str, participant_id: str, now: str) -> None:
        self._conn.execute(
            "UPDATE participants SET left_at = ?"
            " WHERE inspection_id = ? AND participant_id = ? AND left_at IS NULL",
            (now, inspection_id, participant_id),
        )

    def participants(self, inspection_id: str) -> list[dict[str, Any]]:
        rows = self._conn.execute(
            "SELECT participant_id, role, display_name, joined_at, left_at FROM participants"
            " WHERE inspection_id = ? ORDER BY id",
            (inspection_id,),
        )
        return [dict(row) for row in rows]
