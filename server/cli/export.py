"""``takan export``: write a case's evidence package from the archive storage, offline.

The export is itself evidence: it is chained in the case as ``exported`` (by ``cli``) and signed
with the server's key before the package is written, so the package holds its own export event.
Beside a running server it takes its turn like any writer: through the data directory's lock
and head ledger, or, for a server on PostgreSQL (which notes its database in its spool, or
``--database``), through the database (``server/store/chain_log.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from recorder import layout
from recorder.clock import utc_iso
from recorder.errors import ChainRefused, SigningKeyError, StorageError
from recorder.export import ExportError, PackageAssets, write_package
from recorder.storage import Storage
from server.cli.verify import DEFAULT_DATA, add_archive_options, open_archive
from server.settings import SIGNING_KEY_FILE, SPOOL_DIR
from server.store.backend import StoreUnavailable
from server.store.chain_log import recorded_chain_database
from server.store.store import check_database_url

if TYPE_CHECKING:
    from recorder.key_history import KeyHistory
    from recorder.minio_storage import S3Credentials
    from recorder.signing import Signer

DEFAULT_WEB = Path(__file__).resolve().parents[2] / "web"
SETTLE_TIMEOUT_S = 120.0


def add_export_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "export",
        help="write a case's evidence package (zip) for offline verification",
        description="Chain an 'exported' event, sign the chain head, and write every object of"
        " the case with an offline replay page, a README and the public key into one zip."
        " Safe beside a running server: it appends in turn.",
    )
    parser.add_argument("case_id", metavar="CASE_ID")
    add_archive_options(parser)
    parser.add_argument(
        "--signing-key",
        type=Path,
        help=f"the server's Ed25519 key file (default: DATA/{SIGNING_KEY_FILE})",
    )
    parser.add_argument(
        "--database",
        metavar="URL",
        help="the PostgreSQL database the server sequences its chains in (default: the one a"
        " server on DATA noted in its spool, if any)",
    )
    parser.add_argument("-o", "--output", type=Path, required=True, help="the zip to write")
    parser.add_argument("--web", type=Path, default=DEFAULT_WEB, help=argparse.SUPPRESS)
    return parser


class ExportRefused(Exception):
    """The case holds a tail Takan cannot account for: exporting would vouch for it."""


async def _chain_export(
    storage: Storage,
    spool: Path,
    signer: Signer,
    history: KeyHistory,
    case_id: str,
    ledger_dir: Path | None,
    database: str | None,
) -> list[str]:
    from recorder.archive import Archive
    from server.store.chain_log import DatabaseChain, writer_name
    from server.store.store import open_store

    store = open_store(database, spool) if database else None
    shared = DatabaseChain(store.db, writer_name("export")) if store else None
    archive = Archive(
        storage, spool, signer, key_history=history, ledger_dir=ledger_dir, shared_chain=shared
    )
    await archive.start()
    try:
        await archive.open_case(case_id)
        flag = archive.flag_of(case_id)
        if flag is not None:
            raise ExportRefused(
                f"refusing to export case {case_id}: {flag}. Run `takan verify {case_id}`."
            )
        await archive.append(case_id, "exported", {"by": "cli", "role": "cli"})
        async with asyncio.timeout(SETTLE_TIMEOUT_S):
            return await archive.settled_keys(case_id)
    finally:
        await archive.stop()
        if store is not None:
            store.close()


def _write(
    output: Path,
    storage: Storage,
    case_id: str,
    keys: list[str],
    assets: PackageAssets,
    signer: Signer,
) -> int:
    tmp = output.with_name(f".{output.name}.tmp")
    exported_at = utc_iso(time.time())
    try:
        with tmp.open("wb") as handle:
            summary = write_package(handle, storage, case_id, keys, assets, exported_at, signer)
        tmp.replace(output)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return summary.objects


def run_export(
    args: argparse.Namespace,
    out: TextIO = sys.stdout,
    credentials: S3Credentials | None = None,
) -> int:
    """Exit 0 with the package written, 1 if the case or storage fails, 2 on a usage error."""
    from recorder.key_files import load_signing_key

    data = args.data or DEFAULT_DATA
    try:
        case_id = layout.check_case_id(args.case_id)
        storage = open_archive(args, credentials)
        key_path = args.signing_key or data / SIGNING_KEY_FILE
        if not key_path.is_file():
            raise ValueError(f"no signing key at {key_path} (pass --signing-key)")
        signer, history = load_signing_key(key_path)
        # The server's record of what it wrote, when the archive is this data dir's own.
        ledger = data / SPOOL_DIR
        ledger_dir = ledger if args.storage is None and ledger.is_dir() else None
        assets = PackageAssets.from_web_dir(args.web)
        database = args.database or recorded_chain_database(ledger)
        if database:
            check_database_url(database)
    except (ValueError, SigningKeyError, ExportError) as exc:
        print(f"takan export: {exc}", file=sys.stderr)
        return 2
    try:
        if not storage.list(layout.case_prefix(case_id)):
            print(
                f"takan export: case {case_id} has no archive in {storage.describe()}",
                file=sys.stderr,
            )
            return 1
        with tempfile.TemporaryDirectory(prefix="takan-export-") as spool:
            keys = asyncio.run(
                _chain_export(storage, Path(spool), signer, history, case_id, ledger_dir, database)
            )
        objects = _write(args.output, storage, case_id, keys, assets, signer)
    except (StorageError, StoreUnavailable) as exc:
        print(f"takan export: {exc}", file=sys.stderr)
        return 1
    except (ChainRefused, ExportError, ExportRefused, OSError, TimeoutError) as exc:
        print(f"takan export: {exc or type(exc).__name__}", file=sys.stderr)
        return 1
    print(f"exported case {case_id}: {objects} objects to {args.output}", file=out)
    return 0
