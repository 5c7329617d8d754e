"""The tamper suite's writable copies of the real archive (``real_archive``: tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.real_archive import RealArchive, copy_data_dir


@pytest.fixture
def tampered(real_archive: RealArchive, tmp_path: Path) -> Path:
    """A writable copy of the real data directory, for one test to change."""
    return copy_data_dir(real_archive.data_dir, tmp_path / "data")
