"""Random tampering of random archives never verifies, and verify names the changed object or
entry, or the range docs/archive.md says holds it."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recorder.signing import Signer
from recorder.storage import LocalStorage
from tests.tamper import failure
from tests.tamper_oracle import mutations, read_facts
from tests.unit.evidence_fixture import INSPECTIONS, CaseBuilder

CASE = "case-7"


def build(root: Path, seed: int, checkpoint_every: int, inspections: int, per_track: int) -> str:
    """A random case; the fingerprint of the key that signs it."""
    signer = Signer.generate()
    builder = CaseBuilder(
        LocalStorage(root), signer, CASE, checkpoint_every=checkpoint_every, seed=seed
    )
    builder.append("created", {"title": "随机", "address": "1 Quay Rd"})
    for inspection_id in INSPECTIONS[:inspections]:
        builder.inspection(inspection_id, segments_per_track=per_track)
    builder.checkpoint()
    return signer.fingerprint


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32),
    checkpoint_every=st.integers(2, 12),
    inspections=st.integers(1, 2),
    per_track=st.integers(1, 3),
    pinned=st.booleans(),
    data=st.data(),
)
def test_random_tampering_of_random_archives_is_named(
    seed: int,
    checkpoint_every: int,
    inspections: int,
    per_track: int,
    pinned: bool,
    data: st.DataObject,
) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        pristine = Path(scratch) / "pristine"
        fingerprint = build(pristine, seed, checkpoint_every, inspections, per_track)
        assert failure(pristine, CASE) is None
        facts = read_facts(pristine, CASE)
        mutation = data.draw(mutations(facts), label="mutation")
        root = Path(scratch) / "copy"
        shutil.copytree(pristine, root)
        allowed = mutation.apply(root)
        found = failure(root, CASE, trusted=fingerprint if pinned else None)
        assert found is not None, f"{mutation!r}: verify passed"
        assert found.where in allowed, (
            f"{mutation!r}: named {found.where!r} ({found.reason}), allowed {sorted(allowed)}"
        )
