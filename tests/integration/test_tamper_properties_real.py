"""Random tampering of the real archive (recorded through the server) never verifies, and
verify names the changed object or entry, or the range docs/archive.md says holds it."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.integration.real_archive import RealArchive
from tests.tamper import failure
from tests.tamper_oracle import mutations, read_facts

pytestmark = pytest.mark.single_engine  # archives only: no database


def test_random_tampering_of_the_real_archive_is_named(real_archive: RealArchive) -> None:
    facts = {
        case.case_id: read_facts(real_archive.archive, case.case_id)
        for case in (real_archive.full, real_archive.plain)
    }

    @settings(max_examples=60, deadline=None)
    @given(case_id=st.sampled_from(sorted(facts)), pinned=st.booleans(), data=st.data())
    def run(case_id: str, pinned: bool, data: st.DataObject) -> None:
        mutation = data.draw(mutations(facts[case_id]), label="mutation")
        with tempfile.TemporaryDirectory() as scratch:
            root = Path(scratch) / "archive"
            shutil.copytree(real_archive.archive / "cases" / case_id, root / "cases" / case_id)
            allowed = mutation.apply(root)
            trusted = real_archive.fingerprint if pinned else None  # --key, or the first key
            found = failure(root, case_id, trusted=trusted)
            assert found is not None, f"{mutation!r}: verify passed"
            assert found.where in allowed, (
                f"{mutation!r}: named {found.where!r} ({found.reason}), allowed {sorted(allowed)}"
            )

    run()
