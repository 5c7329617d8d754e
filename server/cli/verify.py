"""``takan verify``: check a case's archive, or an export zip, and say plainly whether it is intact.

Exit 0 with a one-screen summary when every hash, link, signature and Merkle root checks out;
exit 1 with ``FAILED: <where>: <reason>`` naming the exact object, chain entry or package member
otherwise; exit 2 on a usage error. An export is checked against its signed package index first,
then the case the index names (``recorder.package_verify``).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from recorder.errors import IntegrityError, StorageError
from recorder.layout import check_case_id
from recorder.package_index import INDEX_NAME
from recorder.package_verify import verify_package
from recorder.storage import LocalStorage, Storage
from recorder.storage_url import open_storage
from recorder.timestamps import TsaTrust, load_tsa_trust
from recorder.verify import DEFAULT_WORKERS, VerifyReport, verify_case
from recorder.zip_storage import ZipStorage
from server.cli.verify_receipts import (
    add_receipt_option,
    check_receipts,
    format_receipts,
    load_receipts,
)
from server.settings import ARCHIVE_DIR

if TYPE_CHECKING:
    from recorder.minio_storage import S3Credentials

DEFAULT_DATA = Path("data")


def add_verify_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "verify",
        help="verify a case's evidence or an export zip",
        description="Recompute every hash, walk the hash chain, check every signature and"
        " Merkle root, sequence continuity and time order. Exit 0 when intact, 1 naming the"
        " first object or chain entry that is not.",
    )
    parser.add_argument("target", metavar="CASE_ID|EXPORT.zip")
    add_archive_options(parser)
    parser.add_argument("--case", help="with an export: the case the package must be of")
    parser.add_argument(
        "--key",
        action="append",
        dest="trusted_keys",
        metavar="FINGERPRINT",
        help="accept only signatures by this key (sha256:…, from GET /api/keys); repeatable",
    )
    parser.add_argument(
        "--allow-unsigned-tail",
        action="store_true",
        help="accept chain entries after the last signed checkpoint (a recording cut short)",
    )
    parser.add_argument(
        "--tsa-cert",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help="check timestamp tokens against this TSA root CA certificate (PEM; may also hold"
        " intermediates and the TSA's own certificate); repeatable",
    )
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS, help="parallel reads")
    add_receipt_option(parser)
    return parser


def add_archive_options(parser: argparse.ArgumentParser) -> None:
    """``--data DIR`` or ``--storage URL``: where the archive is (for ``open_archive``)."""
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--data",
        type=Path,
        help=f"data directory; the archive is DIR/{ARCHIVE_DIR} (default: data)",
    )
    source.add_argument(
        "--storage",
        metavar="URL",
        help="archive storage, e.g. file:///srv/takan or minio://host:9000/bucket (credentials"
        " from TAKAN_S3_ACCESS_KEY and TAKAN_S3_SECRET_KEY)",
    )


def open_archive(args: argparse.Namespace, credentials: S3Credentials | None) -> Storage:
    """The storage ``add_archive_options`` named; ValueError for a bad ``--storage`` URL."""
    if args.storage is not None:
        return open_storage(args.storage, credentials)
    return LocalStorage((args.data or DEFAULT_DATA) / ARCHIVE_DIR)


def _is_export(args: argparse.Namespace) -> bool:
    if args.data is not None or args.storage is not None:
        return False
    return bool(Path(args.target).is_file() or args.target.endswith(".zip"))


def _open(
    args: argparse.Namespace, stack: contextlib.ExitStack, credentials: S3Credentials | None
) -> tuple[Storage, str | None]:
    """The storage, and the case to verify (None for an export: its index names it)."""
    if _is_export(args):
        return stack.enter_context(ZipStorage(Path(args.target))), None
    return open_archive(args, credentials), check_case_id(args.target)


def _check(
    storage: Storage, case_id: str | None, args: argparse.Namespace, tsa_trust: TsaTrust | None
) -> tuple[VerifyReport, str]:
    """The report, and the summary's package line (empty for an archive)."""
    signed_tail = not args.allow_unsigned_tail
    if case_id is not None:
        report = verify_case(
            storage,
            case_id,
            require_signed_tail=signed_tail,
            trusted_keys=args.trusted_keys,
            workers=args.workers,
            tsa_trust=tsa_trust,
        )
        return report, ""
    package = verify_package(
        storage,
        case_id=check_case_id(args.case) if args.case is not None else None,
        require_signed_tail=signed_tail,
        trusted_keys=args.trusted_keys,
        workers=args.workers,
        tsa_trust=tsa_trust,
    )
    index = package.index
    line = (
        f"  package      {len(index.members) + 1} members, each as {INDEX_NAME} lists it,"
        f" signed by {index.key_fingerprint} at {index.exported_at}\n"
    )
    return package.case, line


def run_verify(
    args: argparse.Namespace,
    out: TextIO = sys.stdout,
    credentials: S3Credentials | None = None,
) -> int:
    """``credentials``: for a minio:// ``--storage`` URL that carries none."""
    try:
        tsa_trust = load_tsa_trust(args.tsa_cert)
    except ValueError as exc:
        print(f"takan verify: --tsa-cert {exc}", file=sys.stderr)
        return 2
    with contextlib.ExitStack() as stack:
        try:
            receipts = load_receipts(args.receipts)
            if args.case is not None:
                check_case_id(args.case)
            storage, case_id = _open(args, stack, credentials)
        except ValueError as exc:
            print(f"takan verify: {exc}", file=sys.stderr)
            return 2
        except StorageError as exc:
            print(f"FAILED: {args.target}: {exc}", file=out)
            return 1
        except IntegrityError as exc:
            print(f"FAILED: {exc.where}: {exc.reason}", file=out)
            return 1
        try:
            report, package_line = _check(storage, case_id, args, tsa_trust)
            check_receipts(
                storage,
                report.case_id,
                receipts,
                {u.fingerprint: u.retired_at for u in report.signers},
            )
        except IntegrityError as exc:
            print(f"FAILED: {exc.where}: {exc.reason}", file=out)
            print(_format_missing(exc.missing, of_archive=case_id is not None), end="", file=out)
            return 1
        except StorageError as exc:
            print(f"FAILED: {storage.describe()}: {exc}", file=out)
            return 1
    out.write(format_report(report) + package_line + format_receipts(receipts))
    return 0


def _format_missing(missing: tuple[tuple[str, int], ...], *, of_archive: bool) -> str:
    """Every recorded object the target lacks; of an archive (not an export), a node's spool
    may still hold them (a node that was down uploads them when it starts again)."""
    if not missing:
        return ""
    lines = [f"  {len(missing)} recorded objects are not in the archive (yet):"]
    lines += [f"    {key} (chain entry {seq})" for key, seq in missing]
    if of_archive:
        lines.append("  a node's spool uploads what it holds once the archive is reachable from it")
    return "\n".join(lines) + "\n"


def _size(count: int) -> str:
    value = float(count)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{count} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{count} bytes"  # pragma: no cover


def _duration(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d} ({seconds:.1f} s)"


def format_signers(report: VerifyReport) -> list[str]:
    """Every key the case records, which one signed what, and how far each is trusted."""
    lines = [f"  keys         {len(report.signers)} recorded by the chain:"]
    for use in report.signers:
        how = f"rotated from {use.rotated_from}" if use.rotated_from else "the case's first key"
        retired = f", retired by chain entry {use.retired_at}" if use.retired_at is not None else ""
        lines.append(f"    {use.fingerprint}  (chain entry {use.recorded_by}: {how}{retired})")
        lines.append(
            f"      signed {use.checkpoints} checkpoints, {use.manifests} manifests,"
            f" {use.conclusions} conclusions"
        )
    signing = [u for u in report.signers if u.checkpoints or u.manifests or u.conclusions]
    if len(signing) > 1:
        lines.append(
            f"  WARNING      {len(signing)} keys sign this case; each hand-over is a key_rotated"
            " entry signed by the key before it (listed above)"
        )
    if not report.pinned:
        lines.append(
            "  trust        the case's first key, unpinned: compare it with GET /api/keys or"
            " pass --key FINGERPRINT"
        )
    return lines


def format_report(report: VerifyReport) -> str:
    """The one-screen summary of an intact case."""
    lines = [
        f"OK: case {report.case_id} is intact",
        f"  storage      {report.storage}",
        f"  chain        {report.chain_entries} entries, {report.checkpoints} signed checkpoints,"
        f" {report.manifests} manifests",
        f"  inspections  {report.inspections}",
        f"  segments     {report.segments}, {_size(report.bytes)}, {_duration(report.duration_s)}",
        f"  time (UTC)   {report.first_utc} to {report.last_utc}",
        f"  signer key   {report.key_fingerprint or 'none: the chain is not signed'}",
    ]
    lines.extend(format_signers(report))
    lines.append(f"  gaps         {report.gaps}")
    losses = report.node_losses
    lines.append(f"  node losses  {len(losses)}" + (":" if losses else ""))
    for loss in losses:
        recorded = ", ".join(f"{t} #{s}" for t, s in loss.last_segments.items()) or "none"
        how = "shut down" if loss.how == "released" else "its lease lapsed"
        lines.append(
            f"    chain entry {loss.seq}: node {loss.node} lost inspection"
            f" {loss.inspection_id[:8]} ({how}; epoch {loss.lost_epoch} → {loss.epoch}, taken"
            f" over by {loss.taken_by}); the last segments it chained: {recorded}"
        )
    partial = report.partial_segments
    lines.append(f"  partial      {len(partial)}" + (":" if partial else ""))
    lines.extend(f"    {key}" for key in partial[:10])
    if len(partial) > 10:
        lines.append(f"    … and {len(partial) - 10} more")
    lines.append(f"  conclusions  {report.conclusions} (signatures checked)")
    for signed in report.inspector_signatures:
        verified = "user verified" if signed.user_verified else "user present, not verified"
        lines.append(
            f"    chain entry {signed.seq}: signed by {signed.username}'s passkey"
            f" {signed.fingerprint} ({verified}), countersigned by the archive key"
        )
    lines.append(f"  snapshots    {len(report.snapshots)}" + (":" if report.snapshots else ""))
    for s in report.snapshots[:50]:
        lines.append(f"    #{s.seq} {s.snapshot_id or '-'} taken {s.taken_at or s.at}")
        lines.append(f"      {s.key or '(no stored object)'}")
        lines.append(f"      sha256 {s.sha256 or '-'}")
    if len(report.snapshots) > 50:
        lines.append(f"    … and {len(report.snapshots) - 50} more")
    lines.extend(_timestamp_lines(report))
    return "\n".join(lines) + "\n"


def _timestamp_lines(report: VerifyReport) -> list[str]:
    stamps = report.timestamps
    unchecked = [t for t in stamps if not t.checked]
    head = f"  timestamps   {len(stamps)}"
    if stamps:
        head += (
            f" ({len(stamps) - len(unchecked)} checked against --tsa-cert,"
            f" {len(unchecked)} not checked)"
            if unchecked
            else " (all checked against --tsa-cert)"
        )
    if report.unsigned_timestamps:
        head += f"; {report.unsigned_timestamps} after the last signature (each checked alone)"
    lines = [head + (":" if stamps else "")]
    for t in stamps[:50]:
        line = f"    {t.stamps} at {t.gen_time} by {t.signer}"
        if not t.checked:
            line += f"  NOT CHECKED: no --tsa-cert for its issuer {t.signer_issuer}"
        lines.append(line)
    if len(stamps) > 50:
        lines.append(f"    … and {len(stamps) - 50} more")
    if report.timestamp_failures:
        lines.append(
            f"  TSA outages  {report.timestamp_failures} (timestamp_failed entries in the chain)"
        )
    return lines
