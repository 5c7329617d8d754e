"""The schema of both engines, and the migrations that bring a database up to it.

SQLite counts the migrations applied in ``PRAGMA user_version``; PostgreSQL in the one row of
``takan_schema``. PostgreSQL support arrived at schema version 7, so a new PostgreSQL database
is created at 7 from one script (``POSTGRES_BASELINE``); every later migration is written for
both engines, in ``LATER_MIGRATIONS``, so the two never drift (tests/unit/test_store_schema.py
compares their tables and columns).
"""

from __future__ import annotations

from dataclasses import dataclass

SQLITE_MIGRATIONS: tuple[str, ...] = (
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


POSTGRES_BASELINE_VERSION = 7
POSTGRES_BASELINE = """
CREATE TABLE users (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('inspector', 'auditor', 'admin')),
    password_hash TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE sessions (
    session_id TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id),
    expires_at BIGINT NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE cases (
    case_id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    address TEXT NOT NULL,
    applicant_name TEXT NOT NULL DEFAULT '',
    applicant_phone TEXT NOT NULL DEFAULT '',
    case_type TEXT NOT NULL DEFAULT '',
    site_lat DOUBLE PRECISION,
    site_lon DOUBLE PRECISION,
    created_by BIGINT NOT NULL REFERENCES users(id),
    created_at TEXT NOT NULL,
    case_number TEXT NOT NULL DEFAULT '',
    site_system TEXT CHECK (site_system IS NULL OR site_system IN ('wgs84', 'gcj02', 'bd09')),
    site_input_lat DOUBLE PRECISION,
    site_input_lon DOUBLE PRECISION
);
CREATE INDEX cases_created_at ON cases(created_at, case_id);
CREATE INDEX cases_applicant ON cases(lower(applicant_name));
CREATE INDEX cases_created_by ON cases(created_by, created_at);
CREATE UNIQUE INDEX cases_case_number ON cases(case_number);
CREATE TABLE inspections (
    inspection_id TEXT PRIMARY KEY,
    case_id TEXT NOT NULL REFERENCES cases(case_id),
    status TEXT NOT NULL CHECK (status IN ('active', 'ended')),
    created_by BIGINT NOT NULL REFERENCES users(id),
    created_at TEXT NOT NULL,
    ended_at TEXT,
    invite_expires_at BIGINT NOT NULL,
    short_code TEXT,
    consented_at TEXT,
    outcome TEXT CHECK (outcome IS NULL OR outcome IN ('pass', 'fail', 'correction')),
    concluded_at TEXT,
    conclusion_reason TEXT,
    scheduled_at TEXT,
    template_id TEXT,
    conclusion_seq BIGINT
);
CREATE INDEX inspections_case ON inspections(case_id);
CREATE UNIQUE INDEX inspections_active_code ON inspections(short_code) WHERE status = 'active';
CREATE INDEX inspections_created_by ON inspections(created_by, created_at);
CREATE INDEX inspections_outcome ON inspections(outcome, case_id);
CREATE TABLE participants (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    inspection_id TEXT NOT NULL REFERENCES inspections(inspection_id),
    participant_id TEXT NOT NULL,
    role TEXT NOT NULL,
    user_id BIGINT REFERENCES users(id),
    display_name TEXT NOT NULL,
    joined_at TEXT NOT NULL,
    left_at TEXT
);
CREATE INDEX participants_inspection ON participants(inspection_id);
CREATE TABLE checklist_templates (
    template_id TEXT PRIMARY KEY,
    case_type TEXT NOT NULL,
    name TEXT NOT NULL,
    items_json TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 1,
    updated_by BIGINT REFERENCES users(id),
    updated_at TEXT NOT NULL
);
CREATE INDEX checklist_templates_case_type ON checklist_templates(case_type);
CREATE TABLE checklist_marks (
    inspection_id TEXT NOT NULL REFERENCES inspections(inspection_id),
    item_id TEXT NOT NULL,
    done INTEGER NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    marked_by BIGINT REFERENCES users(id),
    marked_at TEXT NOT NULL,
    snapshot_ids TEXT NOT NULL DEFAULT '[]',
    verdict TEXT CHECK (verdict IS NULL OR verdict IN ('pass', 'fail', 'not_applicable')),
    PRIMARY KEY (inspection_id, item_id)
);
CREATE TABLE snapshots (
    snapshot_id TEXT PRIMARY KEY,
    inspection_id TEXT NOT NULL REFERENCES inspections(inspection_id),
    object_key TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size BIGINT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    taken_at TEXT NOT NULL,
    media_pts BIGINT,
    lat TEXT,
    lon TEXT,
    taken_by BIGINT REFERENCES users(id),
    chain_seq BIGINT NOT NULL
);
CREATE INDEX snapshots_inspection ON snapshots(inspection_id, taken_at);
CREATE TABLE annotations (
    annotation_id TEXT PRIMARY KEY,
    snapshot_id TEXT NOT NULL REFERENCES snapshots(snapshot_id),
    object_key TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    created_by BIGINT REFERENCES users(id),
    created_at TEXT NOT NULL
);
CREATE INDEX annotations_snapshot ON annotations(snapshot_id);
CREATE TABLE locations (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    inspection_id TEXT NOT NULL REFERENCES inspections(inspection_id),
    lat TEXT NOT NULL,
    lon TEXT NOT NULL,
    accuracy_m TEXT NOT NULL,
    fix_at TEXT NOT NULL,
    received_at TEXT NOT NULL,
    chain_seq BIGINT NOT NULL
);
CREATE INDEX locations_inspection ON locations(inspection_id, id);
CREATE TABLE challenges (
    challenge_id TEXT PRIMARY KEY,
    inspection_id TEXT NOT NULL REFERENCES inspections(inspection_id),
    kind TEXT NOT NULL CHECK (kind IN ('code', 'instruction')),
    prompt TEXT NOT NULL,
    issued_by BIGINT REFERENCES users(id),
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
CREATE TABLE case_inspectors (
    case_id TEXT NOT NULL REFERENCES cases(case_id),
    user_id BIGINT NOT NULL REFERENCES users(id),
    assigned_at TEXT NOT NULL,
    assigned_by BIGINT REFERENCES users(id),
    PRIMARY KEY (case_id, user_id)
);
CREATE INDEX case_inspectors_user ON case_inspectors(user_id, case_id);
CREATE TABLE passkeys (
    credential_id TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id),
    label TEXT NOT NULL,
    public_key_cose BYTEA NOT NULL,
    public_key_spki TEXT NOT NULL,
    rp_id TEXT NOT NULL,
    origin TEXT NOT NULL,
    sign_count BIGINT NOT NULL,
    registered_at TEXT NOT NULL,
    last_used_at TEXT
);
CREATE INDEX passkeys_user ON passkeys(user_id);
CREATE TABLE case_passkeys (
    case_id TEXT NOT NULL REFERENCES cases(case_id),
    credential_id TEXT NOT NULL REFERENCES passkeys(credential_id),
    seq BIGINT NOT NULL,
    PRIMARY KEY (case_id, credential_id)
);
"""


@dataclass(frozen=True, slots=True)
class Migration:
    """One step after the PostgreSQL baseline, spelled for each engine."""

    sqlite: str
    postgresql: str


LATER_MIGRATIONS: tuple[Migration, ...] = (
    # Issue 11: the nodes (takan serve --node) with their heartbeats, and which node holds
    # each inspection: a lease renewed by its owner, with an epoch that fences a stalled one.
    Migration(
        sqlite="""
        CREATE TABLE nodes (
            name TEXT PRIMARY KEY,
            advertise_url TEXT NOT NULL,
            started_at TEXT NOT NULL,
            heartbeat_ms INTEGER NOT NULL,
            draining INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE placements (
            inspection_id TEXT PRIMARY KEY REFERENCES inspections(inspection_id),
            node TEXT NOT NULL,
            epoch INTEGER NOT NULL,
            lease_until_ms INTEGER NOT NULL,
            placed_at TEXT NOT NULL
        );
        CREATE INDEX placements_node ON placements(node)
        """,
        postgresql="""
        CREATE TABLE nodes (
            name TEXT PRIMARY KEY,
            advertise_url TEXT NOT NULL,
            started_at TEXT NOT NULL,
            heartbeat_ms BIGINT NOT NULL,
            draining INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE placements (
            inspection_id TEXT PRIMARY KEY REFERENCES inspections(inspection_id),
            node TEXT NOT NULL,
            epoch BIGINT NOT NULL,
            lease_until_ms BIGINT NOT NULL,
            placed_at TEXT NOT NULL
        );
        CREATE INDEX placements_node ON placements(node)
        """,
    ),
    # Issue 11: how many are connected to each live inspection, as its node last said (the
    # dashboard of an inspector served by another node lists it live).
    Migration(
        sqlite="ALTER TABLE placements ADD COLUMN connected INTEGER NOT NULL DEFAULT 0",
        postgresql="ALTER TABLE placements ADD COLUMN connected INTEGER NOT NULL DEFAULT 0",
    ),
    # Issue 11: passkey challenges waiting for the browser's answer, which may reach another
    # node than the one that asked.
    Migration(
        sqlite="""
        CREATE TABLE passkey_challenges (
            token TEXT PRIMARY KEY,
            username TEXT NOT NULL,
            purpose TEXT NOT NULL,
            challenge BLOB NOT NULL,
            message BLOB NOT NULL,
            expires_ms INTEGER NOT NULL
        );
        CREATE INDEX passkey_challenges_user ON passkey_challenges(username, expires_ms)
        """,
        postgresql="""
        CREATE TABLE passkey_challenges (
            token TEXT PRIMARY KEY,
            username TEXT NOT NULL,
            purpose TEXT NOT NULL,
            challenge BYTEA NOT NULL,
            message BYTEA NOT NULL,
            expires_ms BIGINT NOT NULL
        );
        CREATE INDEX passkey_challenges_user ON passkey_challenges(username, expires_ms)
        """,
    ),
    # Issue 11: failed sign-ins and short codes, shared by every process on the database
    # (server/store/attempts.py; the key is a keyed hash, never the name or address typed).
    Migration(
        sqlite="""
        CREATE TABLE failed_attempts (
            id INTEGER PRIMARY KEY,
            scope TEXT NOT NULL,
            key_hash TEXT NOT NULL,
            at REAL NOT NULL
        );
        CREATE INDEX failed_attempts_window ON failed_attempts(scope, key_hash, at);
        CREATE INDEX failed_attempts_age ON failed_attempts(scope, at);
        """,
        postgresql="""
        CREATE TABLE failed_attempts (
            id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            scope TEXT NOT NULL,
            key_hash TEXT NOT NULL,
            at DOUBLE PRECISION NOT NULL
        );
        CREATE INDEX failed_attempts_window ON failed_attempts(scope, key_hash, at);
        CREATE INDEX failed_attempts_age ON failed_attempts(scope, at);
        """,
    ),
    # Issue 11: chains sequenced through the database (server/store/chain_log.py), so that
    # nodes on different machines append to one case in turn: the head each case has reached,
    # who holds it for the next append and until when, and every entry as it was chained.
    Migration(
        sqlite="""
        CREATE TABLE chain_heads (
            case_id TEXT PRIMARY KEY,
            seq INTEGER NOT NULL,
            hash TEXT NOT NULL,
            signed_seq INTEGER NOT NULL DEFAULT -1,
            holder TEXT,
            held_until_ms INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE chain_entries (
            case_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            data BLOB NOT NULL,
            mac TEXT NOT NULL,
            writer TEXT NOT NULL,
            PRIMARY KEY (case_id, seq)
        )
        """,
        postgresql="""
        CREATE TABLE chain_heads (
            case_id TEXT PRIMARY KEY,
            seq BIGINT NOT NULL,
            hash TEXT NOT NULL,
            signed_seq BIGINT NOT NULL DEFAULT -1,
            holder TEXT,
            held_until_ms BIGINT NOT NULL DEFAULT 0
        );
        CREATE TABLE chain_entries (
            case_id TEXT NOT NULL,
            seq BIGINT NOT NULL,
            data BYTEA NOT NULL,
            mac TEXT NOT NULL,
            writer TEXT NOT NULL,
            PRIMARY KEY (case_id, seq)
        )
        """,
    ),
)

SCHEMA_VERSION = len(SQLITE_MIGRATIONS) + len(LATER_MIGRATIONS)
assert len(SQLITE_MIGRATIONS) == POSTGRES_BASELINE_VERSION  # noqa: S101 - a module invariant


def statements(script: str) -> list[str]:
    """The statements of a script (none of ours has a ';' inside a literal)."""
    return [s.strip() for s in script.split(";") if s.strip()]
