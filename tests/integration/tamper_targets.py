"""Which object of a real case each tamper test changes, and the words verify uses for it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.integration.real_archive import RealArchive, RealCase
from tests.tamper import OBJECT_REASONS, Expect, where_of

# What each kind of object can be, in a case of the real archive.
KINDS = [
    "segment",
    "last_segment",
    "first_chain_entry",
    "chain_entry",
    "last_chain_entry",
    "checkpoint",
    "final_checkpoint",
    "manifest",
    "public_key",
    "snapshot",
    "annotation",
    "marked_up",
    "report_html",
    "report_pdf",
    "timestamp_token",
]
RECORDED = ["segment", "last_segment", "snapshot", "annotation", "marked_up", "report_html",
            "report_pdf", "timestamp_token"]  # fmt: skip
JSON_KINDS = ["first_chain_entry", "chain_entry", "last_chain_entry", "checkpoint",
              "final_checkpoint", "manifest", "annotation"]  # fmt: skip

# The words verify uses for a damaged object of each kind (docs/archive.md, "Verification").
CHAIN_REASONS = (
    "not JSON",
    "not UTF-8",
    "not in canonical JSON form",
    "malformed",
    "stored hash is not the hash of the entry",
    "content does not match the hash committed by",
)
DOCUMENT_REASONS = (
    "not JSON",
    "not UTF-8",
    "not in canonical JSON form",
    "not a valid signed",
    "signature does not verify",
    "names signing key",
)


def case_of(real: RealArchive) -> RealCase:
    return real.full


def target(case: RealCase, kind: str) -> str:
    """The key of one object of ``kind`` in the case."""
    chain = case.of_kind("chain")
    segments: list[str] = [e.body["key"] for e in case.entries if e.kind == "segment"]
    picks: dict[str, Callable[[], str]] = {
        "segment": lambda: segments[len(segments) // 2],
        "last_segment": lambda: segments[-1],
        "first_chain_entry": lambda: chain[0],
        "chain_entry": lambda: chain[len(chain) // 2],
        "last_chain_entry": lambda: chain[-1],
        "checkpoint": lambda: case.of_kind("checkpoint")[0],
        "final_checkpoint": lambda: case.of_kind("checkpoint")[-1],
        # over the first checkpoint: a token deep inside the signed chain
        "timestamp_token": lambda: case.token_of(case.of_kind("checkpoint")[0]),
    }
    if kind in picks:
        return picks[kind]()
    [only] = case.of_kind(kind)
    return only


def damaged(case: RealCase, kind: str, key: str) -> Expect:
    """Where and how verify names ``key`` of ``kind`` when its bytes are changed."""
    where = where_of(case.case_id, key)
    if "chain_entry" in kind:
        return Expect(where, *CHAIN_REASONS)
    if kind in ("checkpoint", "final_checkpoint", "manifest"):
        return Expect(where, *DOCUMENT_REASONS)
    if kind == "public_key":
        return Expect(where, "not a raw Ed25519 public key", "not the one its name says")
    return Expect(where, *OBJECT_REASONS)


def archive_of(data_dir: Path) -> Path:
    return data_dir / "archive"
