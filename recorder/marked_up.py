"""Marked-up copies: a snapshot with an annotation drawn on it, derived evidence beside the
untouched original (docs/archive.md, *Marked-up copies*). Pure: the rule a verifier applies to
what the chain says about them; their bytes are checked like every recorded object's.

web/js/case-verify.js (``checkMarkedUp``) applies the same rule with the same words.
"""

from __future__ import annotations

from typing import Any

from recorder import layout
from recorder.chain import ChainEntry, chain_where
from recorder.errors import IntegrityError

MARKED_UP_KIND = "annotation_rendered"


def _text(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    return value if isinstance(value, str) else None


def _earlier(
    entries: list[ChainEntry], body: dict[str, Any], name: str, before: int
) -> ChainEntry | None:
    """The entry that ``body[name]`` (a seq) names, if it is an earlier one."""
    seq = body.get(name)
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq < before:
        return None
    return entries[seq] if seq < len(entries) else None


def check_marked_up(case_id: str, entries: list[ChainEntry]) -> None:
    """Each ``annotation_rendered`` entry records its copy under the marked-up key of its
    inspection and annotation, and names an earlier ``snapshot`` entry recording its original
    (key, SHA-256, snapshot) and an earlier ``annotation`` entry of that snapshot (key,
    SHA-256, annotation); no entry of another kind records a marked-up key. IntegrityError
    at the first entry that does not."""
    for entry in entries:
        body, where = entry.body, chain_where(entry.seq)
        key = _text(body, "key")
        parsed = layout.parse_marked_up_key(case_id, key) if key is not None else None
        if entry.kind != MARKED_UP_KIND:
            if parsed is not None:
                raise IntegrityError(where, f"records the marked-up copy {key} as {entry.kind}")
            continue
        inspection_id, annotation_id = _text(body, "inspection_id"), _text(body, "annotation_id")
        if parsed is None or parsed[:2] != (inspection_id, annotation_id):
            raise IntegrityError(
                where, f"a marked-up copy's key must name its inspection and annotation: {key}"
            )
        snapshot_id = _text(body, "snapshot_id")
        original_key, original_sha256 = _text(body, "original_key"), _text(body, "original_sha256")
        original = _earlier(entries, body, "original_seq", entry.seq)
        if not (
            original is not None
            and None not in (snapshot_id, original_key, original_sha256)
            and original.kind == "snapshot"
            and original.body.get("key") == original_key
            and original.body.get("sha256") == original_sha256
            and original.body.get("snapshot_id") == snapshot_id
        ):
            raise IntegrityError(
                where,
                f"renders the original {original_key}, which no earlier snapshot entry records",
            )
        annotation_key = _text(body, "annotation_key")
        annotation_sha256 = _text(body, "annotation_sha256")
        annotation = _earlier(entries, body, "annotation_seq", entry.seq)
        if not (
            annotation is not None
            and None not in (annotation_key, annotation_sha256)
            and annotation.kind == "annotation"
            and annotation.body.get("key") == annotation_key
            and annotation.body.get("sha256") == annotation_sha256
            and annotation.body.get("annotation_id") == annotation_id
            and annotation.body.get("snapshot_id") == snapshot_id
        ):
            raise IntegrityError(
                where,
                f"renders the annotation {annotation_key}, which no earlier annotation entry of"
                " that snapshot records",
            )
