"""``takan reindex``: rebuild the database from the archive, so a lost or edited database loses
nothing that is evidence.

Every case of the archive that verifies (``recorder.verify.verify_case``) is written into the
database from its chain: the case, its inspections, participants, checklist marks, snapshots,
annotations, location fixes, challenges, conclusions and reports. A case that fails is named with
its ``FAILED`` line and skipped (exit 1 at the end). Users, passwords and sessions are not in the
archive; the output says so. Do not run it while a server uses the same database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import psycopg

from recorder import layout
from recorder.chain import ChainEntry
from recorder.errors import IntegrityError, SigningKeyError, StorageError
from recorder.key_files import HISTORY_FILE, history_path, read_history
from recorder.storage import Storage
from recorder.verify import DEFAULT_WORKERS, verify_case
from server.cli.verify import DEFAULT_DATA, open_archive
from server.clock import utc_iso
from server.inspection.chain_record import CaseRecord
from server.inspection.reindex import Accounts, IndexedCase, ReindexError, index_case
from server.settings import ARCHIVE_DIR, SIGNING_KEY_FILE
from server.store.store import POSTGRES_SCHEMES, Store, open_sqlite, open_store

if TYPE_CHECKING:
    from recorder.minio_storage import S3Credentials

DATABASE_FILE = "takan.sqlite3"
NOT_RESTORED = (
    "not in the archive, so not restored: user passwords and sessions, checklist templates"
    " (the database's are kept), the 6-digit codes of inspections still open"
)


def add_reindex_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "reindex",
        help="rebuild the database from the archive's chains",
        description="Verify every case of the archive and write what its chain says into the"
        " database: cases, inspections, participants, checklist marks, snapshots, conclusions"
        " and reports. A case that fails verification is named and skipped (exit 1). Users and"
        " passwords are not in the archive. Do not run it while a server uses the database.",
    )
    parser.add_argument(
        "--data",
        type=Path,
        help=f"data directory: the database DIR/{DATABASE_FILE}, the archive DIR/{ARCHIVE_DIR}"
        " unless --storage names it (default: data)",
    )
    parser.add_argument(
        "--database",
        metavar="URL",
        help="the database to rebuild, if not the data directory's: the server's"
        " postgresql://user@host:port/db, or sqlite:///absolute/path.sqlite3 or a file path",
    )
    parser.add_argument(
        "--storage",
        metavar="URL",
        help="archive storage, e.g. file:///srv/takan or minio://host:9000/bucket (credentials"
        " from TAKAN_S3_ACCESS_KEY and TAKAN_S3_SECRET_KEY)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="rebuild a database that already holds cases: its evidential rows are replaced,"
        " its users kept",
    )
    parser.add_argument(
        "--allow-unsigned-tail",
        action="store_true",
        help="also index cases whose last entries no signature covers yet (a crash)",
    )
    parser.add_argument(
        "--key",
        action="append",
        dest="trusted_keys",
        metavar="FINGERPRINT",
        help="accept only signatures by this key (sha256:…) and its rotations; repeatable"
        f" (default: the key history in the data directory, DIR/{HISTORY_FILE})",
    )
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS, help="parallel reads")
    return parser


def trusted_keys(args: argparse.Namespace) -> tuple[str, ...] | None:
    """``--key``s, else the data directory's key history (the server's trust root), else None:
    then each case's first chained key is trusted, as ``takan verify`` does."""
    if args.trusted_keys:
        return tuple(args.trusted_keys)
    if args.database is not None and args.data is None:
        return None
    path = history_path(Path(args.data or DEFAULT_DATA) / SIGNING_KEY_FILE)
    return read_history(path).fingerprints if path.is_file() else None


def database_target(args: argparse.Namespace) -> str | Path:
    """The PostgreSQL URL or the SQLite file ``--database`` or ``--data`` names; ValueError for
    another kind."""
    url: str | None = args.database
    if url is None:
        return Path(args.data or DEFAULT_DATA) / DATABASE_FILE
    if url.startswith(POSTGRES_SCHEMES):
        return url
    if url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite://"))
    if "://" in url or url.startswith("sqlite:"):
        raise ValueError(f"--database {url!r}: give postgresql://…, sqlite:///path or a file path")
    return Path(url)


def _open(target: str | Path) -> Store:
    if isinstance(target, Path):
        target.parent.mkdir(parents=True, exist_ok=True)
        return open_sqlite(target)
    return open_store(target, Path())


def _describe(target: str | Path) -> str:
    return str(target) if isinstance(target, Path) else "the PostgreSQL database"


def case_ids(storage: Storage) -> list[str]:
    """Every case with objects in the archive, in order."""
    found = {key.split("/", 2)[1] for key in storage.list("cases/") if key.count("/") >= 2}
    return sorted(case_id for case_id in found if layout.CASE_ID_PATTERN.fullmatch(case_id))


def read_chain(storage: Storage, case_id: str) -> list[ChainEntry]:
    keys = storage.list(layout.chain_prefix(case_id))
    return [ChainEntry.from_json(json.loads(storage.get(key))) for key in keys]


@dataclass(slots=True)
class Totals:
    cases: int = 0
    inspections: int = 0
    participants: int = 0
    snapshots: int = 0
    marks: int = 0
    reports: int = 0

    def add(self, indexed: IndexedCase) -> None:
        self.cases += 1
        self.inspections += indexed.inspections
        self.participants += indexed.participants
        self.snapshots += indexed.snapshots
        self.marks += indexed.marks
        self.reports += indexed.reports


async def _reindex_case(
    storage: Storage,
    store: Store,
    case_id: str,
    accounts: Accounts,
    args: argparse.Namespace,
    trusted: tuple[str, ...] | None,
) -> IndexedCase:
    verify_case(
        storage,
        case_id,
        require_signed_tail=not args.allow_unsigned_tail,
        trusted_keys=trusted,
        workers=args.workers,
    )
    record = CaseRecord.from_entries(case_id, read_chain(storage, case_id))
    return await index_case(store, record, accounts)


async def _reindex_all(
    store: Store,
    storage: Storage,
    cases: list[str],
    args: argparse.Namespace,
    trusted: tuple[str, ...] | None,
    out: TextIO,
) -> tuple[Totals, int, Accounts] | None:
    """(totals, cases failed, accounts), or None: the database holds cases, no ``--force``."""
    if await store.case_index.has_evidence():
        if not args.force:
            return None
        await store.case_index.clear()
    accounts = Accounts(store, utc_iso(time.time()))
    totals, failed = Totals(), 0
    for case_id in cases:
        try:
            totals.add(await _reindex_case(storage, store, case_id, accounts, args, trusted))
        except IntegrityError as exc:
            print(f"FAILED: case {case_id}: {exc.where}: {exc.reason} (skipped)", file=out)
            failed += 1
        except (StorageError, ReindexError, ValueError, sqlite3.Error, psycopg.Error) as exc:
            print(f"FAILED: case {case_id}: {exc} (skipped)", file=out)
            failed += 1
    return totals, failed, accounts


def run_reindex(
    args: argparse.Namespace,
    out: TextIO = sys.stdout,
    credentials: S3Credentials | None = None,
) -> int:
    """Exit 0 when every case is indexed, 1 if one failed (or the database is not empty and
    ``--force`` is missing), 2 on a usage error."""
    started = time.monotonic()
    try:
        target = database_target(args)
        storage = open_archive(args, credentials)
        trusted = trusted_keys(args)
    except (ValueError, SigningKeyError) as exc:
        print(f"takan reindex: {exc}", file=sys.stderr)
        return 2
    try:
        cases = case_ids(storage)
    except StorageError as exc:
        print(f"FAILED: {storage.describe()}: {exc}", file=out)
        return 1
    store = _open(target)
    path = _describe(target)
    try:
        outcome = asyncio.run(_reindex_all(store, storage, cases, args, trusted, out))
    finally:
        store.close()
    if outcome is None:
        print(
            f"takan reindex: the database {path} already holds cases; pass --force to"
            " replace its evidential rows by the archive's (users are kept)",
            file=sys.stderr,
        )
        return 1
    totals, failed, accounts = outcome
    seconds = time.monotonic() - started
    print(
        f"reindexed {totals.cases} of {len(cases)} cases from {storage.describe()} into {path}"
        f" in {seconds:.1f} s: {totals.inspections} inspections, {totals.participants}"
        f" participants, {totals.snapshots} snapshots, {totals.marks} checklist marks,"
        f" {totals.reports} reports",
        file=out,
    )
    if trusted is None:
        print("trusted: each case's first chained key (pass --key to name the server's)", file=out)
    else:
        print(f"trusted: {', '.join(trusted)} (and their chained rotations)", file=out)
    print(NOT_RESTORED, file=out)
    if accounts.restored:
        names = ", ".join(f"{name} ({role})" for name, role in sorted(accounts.restored.items()))
        print(
            f"locked accounts made for names the chains cite: {names}; give each a password"
            " with: takan user add NAME --role ROLE",
            file=out,
        )
    if failed:
        print(f"{failed} case(s) failed verification and were not indexed", file=out)
        return 1
    return 0
