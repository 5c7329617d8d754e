"""The real archive the tamper suite breaks copies of: built once per session, never written."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.integration.real_archive import RealArchive, build_real_archive, copy_data_dir
from tests.tsa_server import TsaCerts


@pytest.fixture(scope="session")
def real_archive(tmp_path_factory: pytest.TempPathFactory, tsa_certs: TsaCerts) -> RealArchive:
    """Two cases recorded through the real server (see tests/integration/real_archive.py)."""
    data_dir = tmp_path_factory.mktemp("pristine") / "data"
    return asyncio.run(build_real_archive(data_dir, tsa_certs))


@pytest.fixture
def tampered(real_archive: RealArchive, tmp_path: Path) -> Path:
    """A writable copy of the real data directory, for one test to change."""
    return copy_data_dir(real_archive.data_dir, tmp_path / "data")
