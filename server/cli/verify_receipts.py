"""``takan verify --receipt FILE``: the archive must still hold what each receipt names.

A receipt (docs/archive.md, "Receipts") was handed out when an inspection ended. The archive is
verified first; then each receipt's signature (by a key the verified chain records and trusts),
its chain entry (that seq, that hash, recording the manifest), its manifest and its timestamp
token, by SHA-256.
Since the chain verified, an intact receipted entry vouches for every entry below it.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path

from recorder.receipt import MAX_RECEIPT_BYTES, SignedReceipt, check_receipt, parse_receipt
from recorder.storage import Storage


def add_receipt_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--receipt",
        action="append",
        dest="receipts",
        default=[],
        metavar="FILE",
        help="a receipt handed out when an inspection ended: fail unless the archive still"
        " holds its chain entry and manifest; repeatable",
    )


def receipt_where(path: str) -> str:
    return f"receipt {path}"


def load_receipts(paths: list[str]) -> list[tuple[str, SignedReceipt]]:
    """Each file's receipt; ValueError for a file that cannot be read (a usage error),
    IntegrityError naming the receipt for one that is not a signed receipt."""
    loaded = []
    for path in paths:
        try:
            with Path(path).open("rb") as handle:
                data = handle.read(MAX_RECEIPT_BYTES + 1)
        except OSError as exc:
            raise ValueError(f"cannot read receipt {path}: {exc.strerror}") from exc
        loaded.append((path, parse_receipt(data, receipt_where(path))))
    return loaded


def check_receipts(
    storage: Storage,
    case_id: str,
    receipts: list[tuple[str, SignedReceipt]],
    case_keys: Mapping[str, int | None],
) -> None:
    for path, signed in receipts:
        check_receipt(storage, case_id, signed, case_keys, receipt_where(path))


def format_receipts(receipts: list[tuple[str, SignedReceipt]]) -> str:
    if not receipts:
        return ""
    lines = [f"  receipts     {len(receipts)}, each still held:"]
    for path, signed in receipts:
        r = signed.receipt
        lines.append(
            f"    {path}: inspection {r.inspection_id}, chain entry {r.chain_head_seq},"
            f" issued {r.issued_at}" + (", with timestamp token" if r.timestamp else "")
        )
    return "\n".join(lines) + "\n"
