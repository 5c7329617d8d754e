"""What an insider with write access can do to a copy of an archive, and where verify must say
it happened (docs/archive.md, "Verification": the place named and the words used).

Each mutation changes the archive under ``root`` (a writable copy) and returns an ``Expect``:
the exact ``where`` verify must name, and fragments one of which its reason must contain.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recorder import layout
from recorder.canonical import canonical_json, parse_json
from recorder.chain import ChainEntry, chain_where, next_entry
from recorder.conclusion import Conclusion
from recorder.errors import IntegrityError
from recorder.manifest import Manifest, sign_checkpoint
from recorder.signing import Signer
from recorder.storage import LocalStorage
from recorder.verify import verify_case

REPO = Path(__file__).resolve().parents[1]
OBJECT_REASONS = ("SHA-256 is", "size is")


@dataclass(frozen=True)
class Expect:
    where: str
    reasons: tuple[str, ...]

    def __init__(self, where: str, *reasons: str) -> None:
        object.__setattr__(self, "where", where)
        object.__setattr__(self, "reasons", reasons)


def where_of(case_id: str, key: str) -> str:
    """How verify names an object: a chain entry by its seq, anything else by its key."""
    seq = layout.parse_chain_entry_key(case_id, key)
    return key if seq is None else chain_where(seq)


def span(low: int, high: int) -> str:
    """How verify names the entries ``low`` to ``high``: a range, or the one entry."""
    return chain_where(high) if low == high else f"between chain entry {low} and {high}"


def range_from(anchor_seqs: list[int], seq: int) -> int:
    """The first entry a change that contradicts a voucher at ``seq`` may lie in: the one
    above the highest signed head below ``seq`` (which still holds), or entry 0."""
    return max((a + 1 for a in anchor_seqs if a < seq), default=0)


def placed(anchor_seqs: list[int], seq: int) -> tuple[int, int]:
    """Where a change at ``seq`` with every later hash recomputed is placed: from above the
    highest signed head below it (or 0) up to the first signed head at or above it."""
    high = min(a for a in anchor_seqs if a >= seq)
    return range_from(anchor_seqs, high), high


# reading and writing a copy


def writable(path: Path) -> Path:
    if path.exists():
        path.chmod(0o644)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def rewrite(root: Path, key: str, data: bytes) -> None:
    writable(root / key).write_bytes(data)


def read(root: Path, key: str) -> bytes:
    return (root / key).read_bytes()


def load_entry(root: Path, case_id: str, seq: int) -> ChainEntry:
    return ChainEntry.from_json(parse_json(read(root, layout.chain_entry_key(case_id, seq))))


def store_entry(root: Path, entry: ChainEntry) -> None:
    rewrite(root, layout.chain_entry_key(entry.case_id, entry.seq), canonical_json(entry.to_json()))


def put_object(root: Path, key: str, data: bytes) -> dict[str, Any]:
    """Write an object and return the reference a chain entry would give it."""
    rewrite(root, key, data)
    return {"key": key, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def move(root: Path, source: str, target: str) -> None:
    data = read(root, source)
    (root / source).unlink()
    rewrite(root, target, data)


def flip(root: Path, key: str, offset: int, bit: int) -> None:
    data = bytearray(read(root, key))
    data[offset % len(data)] ^= 1 << bit
    rewrite(root, key, bytes(data))


def truncate(root: Path, key: str, keep: int) -> None:
    rewrite(root, key, read(root, key)[:keep])


def swap(root: Path, a: str, b: str) -> None:
    data_a, data_b = read(root, a), read(root, b)
    rewrite(root, a, data_b)
    rewrite(root, b, data_a)


def rewrite_chain_from(root: Path, case_id: str, entries: list[ChainEntry], seq: int) -> int:
    """Store ``entries`` (old content, any seqs) as the chain from ``seq`` on, each linked to the
    one before and its hash recomputed, as an insider without the key can; the last seq."""
    head = load_entry(root, case_id, seq - 1) if seq else None
    for old in entries:
        head = next_entry(head, case_id, old.kind, old.at, old.clock, old.body)
        store_entry(root, head)
    assert head is not None
    return head.seq


def forged_tail(root: Path, case_id: str, bodies: list[tuple[str, dict[str, Any]]]) -> list[int]:
    """Append correctly hashed and linked entries after the stored head; their seqs."""
    last = len(LocalStorage(root).list(layout.chain_prefix(case_id))) - 1
    head = load_entry(root, case_id, last)
    seqs = []
    for kind, body in bodies:
        head = next_entry(head, case_id, kind, head.at, head.clock, body)
        store_entry(root, head)
        seqs.append(head.seq)
    return seqs


# non-canonical spellings of the same JSON value


def spaced(data: bytes) -> bytes:
    return json.dumps(parse_json(data), ensure_ascii=False, sort_keys=True).encode()


def reordered(data: bytes) -> bytes:
    value = parse_json(data)

    def reverse(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: reverse(v[k]) for k in sorted(v, reverse=True)}
        if isinstance(v, list):
            return [reverse(x) for x in v]
        return v

    return json.dumps(reverse(value), ensure_ascii=False, separators=(",", ":")).encode()


def escaped(data: bytes) -> bytes:
    """Non-ASCII as \\uXXXX where there is any (json's ensure_ascii); else the first member
    name's first letter as \\u00XX: the same value, spelled another way."""
    ascii_only = json.dumps(
        parse_json(data), ensure_ascii=True, sort_keys=True, separators=(",", ":")
    ).encode()
    if ascii_only != data:
        return ascii_only
    return b'{"\\u%04x' % data[2] + data[3:]


def newline(data: bytes) -> bytes:
    return data + b"\n"


SPELLINGS = {"spaced": spaced, "reordered": reordered, "escaped": escaped, "newline": newline}


# what verify says


def failure(
    root: Path, case_id: str, *, allow_unsigned_tail: bool = False, trusted: str | None = None
) -> IntegrityError | None:
    try:
        verify_case(
            LocalStorage(root),
            case_id,
            require_signed_tail=not allow_unsigned_tail,
            trusted_keys=None if trusted is None else {trusted},
        )
    except IntegrityError as exc:
        return exc
    return None


def assert_named(
    root: Path, case_id: str, expect: Expect, *, allow_unsigned_tail: bool = False,
    trusted: str | None = None,
) -> IntegrityError:  # fmt: skip
    found = failure(root, case_id, allow_unsigned_tail=allow_unsigned_tail, trusted=trusted)
    assert found is not None, f"verify passed; expected {expect.where}"
    assert found.where == expect.where, (
        f"named {found.where!r} ({found.reason}), expected {expect.where!r}"
    )
    assert any(fragment in found.reason for fragment in expect.reasons), (
        f"{found.where}: reason {found.reason!r} has none of {expect.reasons}"
    )
    return found


def takan_verify(data_dir: Path, case_id: str, *options: str) -> tuple[int, str]:
    """``takan verify CASE_ID --data DIR`` as a user runs it: exit code and output."""
    done = subprocess.run(
        [sys.executable, "-m", "server.cli", "verify", case_id, "--data", str(data_dir), *options],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


# objects an insider makes


def other_signer() -> Signer:
    return Signer.generate()


def drop_key(root: Path, case_id: str, signer: Signer) -> str:
    """Store another key's public key in the case, as a forger must for its signatures."""
    key = layout.public_key_key(case_id, signer.fingerprint)
    put_object(root, key, signer.public_key_bytes)
    return key


def forged_checkpoint(root: Path, case_id: str, signer: Signer, entry: ChainEntry) -> str:
    key = layout.checkpoint_key(case_id, entry.seq)
    signed = sign_checkpoint(signer, case_id, entry.seq, entry.hash, entry.at)
    rewrite(root, key, canonical_json(signed))
    return key


def forged_manifest(
    root: Path, case_id: str, signer: Signer, inspection_id: str, head: ChainEntry
) -> str:
    manifest = Manifest.build(
        case_id=case_id,
        inspection_id=inspection_id,
        segments=[],
        chain_head_seq=head.seq,
        chain_head=head.hash,
        created_at=head.at,
        signer=signer,
    )
    key = layout.manifest_key(case_id, inspection_id)
    rewrite(root, key, canonical_json(manifest.signed_json()))
    return key


def forged_conclusion(signer: Signer, inspection_id: str, at: str) -> dict[str, Any]:
    conclusion = Conclusion(inspection_id, "pass", "伪造的结论", "inspector1", at, None)
    return conclusion.signed_body(signer)


def with_body(entry: ChainEntry, **changes: Any) -> ChainEntry:
    return dataclasses.replace(entry, body={**entry.body, **changes})
