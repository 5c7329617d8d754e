"""Build a small but complete case archive with the real recorder API, for verification tests.

Segment bytes are random stand-ins (the integration tests use real WebM). The archive holds
everything verification knows about: chain entries of several kinds, segments on every track,
a gap, a stored snapshot, periodic checkpoints, a manifest per inspection that is itself
recorded in the chain, a final checkpoint and the public key, recorded by the first entry.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from recorder import layout
from recorder.canonical import canonical_json
from recorder.chain import ChainEntry, next_entry
from recorder.manifest import Manifest, SegmentRecord, sign_checkpoint
from recorder.signing import Signer
from recorder.storage import Storage

CLOCK = "server-system-clock"
START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def put(storage: Storage, key: str, data: bytes) -> None:
    storage.put(key, data, hashlib.sha256(data).hexdigest())


@dataclass
class CaseBuilder:
    storage: Storage
    signer: Signer
    case_id: str = "case-1"
    checkpoint_every: int = 5
    seed: int = 1
    entries: list[ChainEntry] = field(default_factory=list)
    checkpoint_seqs: list[int] = field(default_factory=list)
    manifest_heads: dict[str, int] = field(default_factory=dict)
    now: datetime = START

    def __post_init__(self) -> None:
        self.random = random.Random(self.seed)
        key = layout.public_key_key(self.case_id, self.signer.fingerprint)
        public = self.signer.public_key_bytes
        put(self.storage, key, public)
        self.append(
            "signing_key",
            {
                "fingerprint": self.signer.fingerprint,
                "key": key,
                "sha256": hashlib.sha256(public).hexdigest(),
                "size": len(public),
            },
        )

    @property
    def head(self) -> ChainEntry | None:
        return self.entries[-1] if self.entries else None

    def tick(self, seconds: float = 1.0) -> str:
        self.now += timedelta(seconds=seconds)
        return iso(self.now)

    def append(self, kind: str, body: dict[str, Any]) -> ChainEntry:
        entry = next_entry(self.head, self.case_id, kind, self.tick(), CLOCK, body)
        put(
            self.storage,
            layout.chain_entry_key(self.case_id, entry.seq),
            canonical_json(entry.to_json()),
        )
        self.entries.append(entry)
        if (entry.seq + 1) % self.checkpoint_every == 0:
            self.checkpoint()
        return entry

    def checkpoint(self) -> None:
        head = self.head
        if head is None or (self.checkpoint_seqs and self.checkpoint_seqs[-1] == head.seq):
            return
        signed = sign_checkpoint(self.signer, self.case_id, head.seq, head.hash, self.tick(0.001))
        put(self.storage, layout.checkpoint_key(self.case_id, head.seq), canonical_json(signed))
        self.checkpoint_seqs.append(head.seq)

    def segment(self, inspection_id: str, track: str, seq: int, start: datetime) -> SegmentRecord:
        data = self.random.randbytes(self.random.randint(300, 3000))
        key = layout.segment_key(self.case_id, inspection_id, track, seq)
        put(self.storage, key, data)
        return SegmentRecord(
            inspection_id=inspection_id,
            track=track,
            seq=seq,
            key=key,
            sha256=hashlib.sha256(data).hexdigest(),
            size=len(data),
            codec="vp8" if track.endswith("video") else "opus",
            first_pts=seq * 360_000,
            last_pts=seq * 360_000 + 357_000,
            time_base="1/90000",
            start_utc=iso(start),
            end_utc=iso(start + timedelta(seconds=4)),
            frames=120,
            partial=False,
        )

    def inspection(self, inspection_id: str, segments_per_track: int = 3) -> Manifest:
        for kind in ("invited", "joined", "consented"):
            self.append(kind, {"inspection_id": inspection_id, "by": "inspector1"})
        records = []
        for seq in range(segments_per_track):
            start = self.now
            for track in layout.TRACKS:
                record = self.segment(inspection_id, track, seq, start)
                self.append("segment", record.to_json())
                records.append(record)
            if seq == 0:
                self.append(
                    "chat",
                    {"inspection_id": inspection_id, "from": "applicant", "text": "你好, «ok»\n"},
                )
                snapshot = self.random.randbytes(500)
                snapshot_key = f"cases/{self.case_id}/inspections/{inspection_id}/snapshots/0.jpg"
                put(self.storage, snapshot_key, snapshot)
                self.append(
                    "snapshot",
                    {
                        "inspection_id": inspection_id,
                        "key": snapshot_key,
                        "sha256": hashlib.sha256(snapshot).hexdigest(),
                        "size": len(snapshot),
                        "lat": "31.2304",
                        "lon": "121.4737",
                    },
                )
            if seq == 1:
                self.append(
                    "gap",
                    {"inspection_id": inspection_id, "track": "applicant-video", "ms": 800},
                )
        self.append("ended", {"inspection_id": inspection_id, "reason": "done"})
        head = self.head
        assert head is not None
        manifest = Manifest.build(
            case_id=self.case_id,
            inspection_id=inspection_id,
            segments=records,
            chain_head_seq=head.seq,
            chain_head=head.hash,
            created_at=self.tick(0.001),
            signer=self.signer,
        )
        key = layout.manifest_key(self.case_id, inspection_id)
        data = canonical_json(manifest.signed_json())
        put(self.storage, key, data)
        self.manifest_heads[key] = head.seq
        self.append(
            "manifest",
            {
                "inspection_id": inspection_id,
                "key": key,
                "sha256": hashlib.sha256(data).hexdigest(),
                "size": len(data),
            },
        )
        return manifest


INSPECTIONS = ("0" * 31 + "1", "ab" * 16)


def build_case(storage: Storage, signer: Signer, case_id: str = "case-1") -> CaseBuilder:
    """A case with two finished inspections, ending with a signed checkpoint."""
    builder = CaseBuilder(storage, signer, case_id)
    builder.append("created", {"title": "Warehouse 7", "address": "1 Quay Rd"})
    for inspection_id in INSPECTIONS:
        builder.inspection(inspection_id)
    builder.checkpoint()
    return builder
