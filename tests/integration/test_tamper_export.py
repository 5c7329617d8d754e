"""An export of the real archive, changed as an insider would after it left the server: every
member is held by the signed package index, and ``takan verify EXPORT.zip`` names the member
(docs/archive.md, "The package index")."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.real_archive import RealArchive, copy_data_dir
from tests.integration.tamper_targets import case_of, target
from tests.tamper import REPO

pytestmark = pytest.mark.single_engine  # archives only: no database

INDEX = "package-index.json"


def takan(*args: str) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", "server.cli", *args],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    return done.returncode, done.stdout + done.stderr


@pytest.fixture(scope="module")
def export(real_archive: RealArchive, tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("export")
    path = where / "case.zip"
    case = case_of(real_archive)
    # An export chains its own event: it runs on a copy, so the shared pristine archive stays so.
    data = copy_data_dir(real_archive.data_dir, where / "data")
    code, out = takan("export", case.case_id, "--data", str(data), "-o", str(path))
    assert code == 0, out
    return path


def rewritten(source: Path, target_path: Path, change: Callable[[str, bytes], bytes | None],
              extra: dict[str, bytes] | None = None) -> Path:  # fmt: skip
    """A copy of the zip with each member through ``change`` (None drops it), plus ``extra``."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target_path, "w") as new:
        for info in old.infolist():
            data = change(info.filename, old.read(info))
            if data is not None:
                new.writestr(info.filename, data)
        for name, data in (extra or {}).items():
            new.writestr(name, data)
    return target_path


def test_the_export_of_the_real_archive_verifies(export: Path) -> None:
    code, out = takan("verify", str(export))
    assert code == 0, out
    with zipfile.ZipFile(export) as package:
        assert package.namelist()[-1] == INDEX


@pytest.mark.parametrize(
    "kind", ["segment", "first_chain_entry", "checkpoint", "manifest", "timestamp_token",
             "report_pdf"],
)  # fmt: skip
@pytest.mark.parametrize("how", ["flipped", "dropped"])
def test_a_changed_or_dropped_member_is_named(
    real_archive: RealArchive, export: Path, tmp_path: Path, kind: str, how: str
) -> None:
    name = target(case_of(real_archive), kind)

    def change(member: str, data: bytes) -> bytes | None:
        if member != name:
            return data
        return None if how == "dropped" else data[:-1] + bytes([data[-1] ^ 1])

    code, out = takan("verify", str(rewritten(export, tmp_path / "x.zip", change)))
    assert code == 1
    words = "SHA-256 is" if how == "flipped" else "listed in the package index but absent"
    assert out.startswith(f"FAILED: {name}: {words}"), out


def test_an_added_member_is_named(real_archive: RealArchive, export: Path, tmp_path: Path) -> None:
    case = case_of(real_archive)
    name = f"cases/{case.case_id}/inspections/{case.inspection_id}/notes.txt"
    path = rewritten(export, tmp_path / "x.zip", lambda _, data: data, {name: b"planted"})
    code, out = takan("verify", str(path))
    assert code == 1
    assert out.startswith(f"FAILED: {name}: not listed in the package index"), out


def test_a_tampered_index_is_named(export: Path, tmp_path: Path) -> None:
    def change(member: str, data: bytes) -> bytes | None:
        return data.replace(b'"size":', b'"size":1', 1) if member == INDEX else data

    code, out = takan("verify", str(rewritten(export, tmp_path / "x.zip", change)))
    assert code == 1
    assert out.startswith(f"FAILED: {INDEX}: signature does not verify"), out
