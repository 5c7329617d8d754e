"""What an insider who can write to the archive directory plants there is named, never followed,
never waited on: ``takan verify`` (in process and as a command) and the server's evidence
endpoints see only regular files reached through real directories."""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from recorder import layout
from recorder.canonical import parse_json
from recorder.signing import Signer
from recorder.storage import LocalStorage
from server.cli.verify import add_verify_parser, run_verify
from tests.conftest import LiveServer
from tests.integration.evidence_helpers import chain
from tests.integration.recorded_case import record_inspection, takan
from tests.unit.evidence_fixture import INSPECTIONS, build_case

CASE = "case-1"
REPO = Path(__file__).resolve().parents[2]
# Guards against a hang, not timings: each command answers in a second or two when it works.
COMMAND_TIMEOUT_S = 120.0


def recorded_by(storage: LocalStorage, case_id: str, key: str) -> tuple[int, int]:
    """(seq, size) of the chain entry that records ``key``."""
    for entry_key in storage.list(layout.chain_prefix(case_id)):
        entry = parse_json(storage.get(entry_key))
        if entry["body"].get("key") == key:
            return entry["seq"], entry["body"]["size"]
    raise AssertionError(f"no chain entry records {key}")


def verify_in_process(data: Path) -> tuple[int, str]:
    """``takan verify CASE --data DATA`` in this process, on a daemon thread: a read that
    blocked would fail the test, not hang the run."""
    parser = argparse.ArgumentParser(prog="takan")
    add_verify_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["verify", CASE, "--data", str(data)])
    out = io.StringIO()
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(run_verify(args, out)), daemon=True)
    thread.start()
    thread.join(COMMAND_TIMEOUT_S)
    assert not thread.is_alive(), f"takan verify hung; it said: {out.getvalue()}"
    return codes[0], out.getvalue()


def verify_command(data: Path) -> tuple[int, str]:
    """``python -m server.cli verify CASE --data DATA`` as a subprocess, with a timeout."""
    done = subprocess.run(
        [sys.executable, "-m", "server.cli", "verify", CASE, "--data", str(data)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A data directory whose archive holds a complete, intact case."""
    build_case(LocalStorage(tmp_path / "archive"), Signer.generate(), CASE)
    return tmp_path


def segment(inspection: int, track: str, seq: int) -> str:
    return layout.segment_key(CASE, INSPECTIONS[inspection], track, seq)


def huge_sparse_file(path: Path) -> None:
    with path.open("wb") as huge:
        huge.truncate(1 << 40)  # a terabyte of zeros that takes no disk


def replaced_by(make: Callable[[Path], object]) -> Callable[[Path], None]:
    def replace(path: Path) -> None:
        path.unlink()
        make(path)

    return replace


@pytest.mark.parametrize(
    ("plant", "failure"),
    [
        (replaced_by(os.mkfifo), "missing (recorded by chain entry {seq})"),
        (
            replaced_by(lambda path: path.symlink_to("/dev/zero")),
            "missing (recorded by chain entry {seq})",
        ),
        (
            replaced_by(huge_sparse_file),
            "size is more than {size} bytes; chain entry {seq} recorded {size}",
        ),
    ],
    ids=["fifo", "symlink-to-dev-zero", "huge-file"],
)
def test_a_planted_segment_fails_verify_quickly_naming_it(
    data: Path, plant: Callable[[Path], None], failure: str
) -> None:
    key = segment(0, "applicant-video", 1)
    seq, size = recorded_by(LocalStorage(data / "archive"), CASE, key)
    plant(data / "archive" / key)
    expected = f"FAILED: {key}: {failure.format(seq=seq, size=size)}"
    for verify in (verify_in_process, verify_command):
        code, out = verify(data)
        assert (code, out.splitlines()[0]) == (1, expected), out


def test_segments_behind_a_symlinked_directory_fail_verify_naming_the_first(data: Path) -> None:
    archive = data / "archive"
    track_dir = archive / segment(1, "inspector-audio", 0).rsplit("/", 1)[0]
    shutil.move(track_dir, data / "elsewhere")
    track_dir.symlink_to(data / "elsewhere", target_is_directory=True)
    first = segment(1, "inspector-audio", 0)
    seq, _ = recorded_by(LocalStorage(archive), CASE, first)
    for verify in (verify_in_process, verify_command):
        code, out = verify(data)
        assert (code, out.splitlines()[0]) == (
            1,
            f"FAILED: {first}: missing (recorded by chain entry {seq})",
        ), out


def test_a_dot_file_beside_the_objects_is_no_object_of_the_case(data: Path) -> None:
    planted = data / "archive" / f"cases/{CASE}/.notes"
    planted.write_bytes(b"not evidence")
    code, out = verify_in_process(data)
    assert code == 0, out
    with pytest.raises(Exception, match="has a segment starting with a dot"):
        LocalStorage(data / "archive").get(f"cases/{CASE}/.notes")


# the server: what its evidence endpoints serve


async def test_a_symlinked_segment_or_directory_is_not_served_and_integrity_names_it(
    live_server: LiveServer, tmp_path: Path
) -> None:
    recorded = await record_inspection(live_server)
    case_id, inspection_id = recorded["case_id"], recorded["inspection_id"]
    archive = live_server.data_dir / "archive"
    entries = await chain(live_server, case_id)
    segments = [e for e in entries if e.kind == "segment"]
    objects = f"/api/cases/{case_id}/objects"

    async def refused(key: str, reason: str) -> None:
        relative = key.removeprefix(f"cases/{case_id}/")
        status, body = await live_server.request("GET", f"{objects}/{relative}", "auditor1")
        assert (status, body) == (
            404,
            {"error": "not_found", "reason": f"object {relative!r} is not stored: {reason}"},
        )
        status, listing = await live_server.request("GET", objects, "auditor1")
        assert status == 200, listing
        assert relative not in listing["objects"]

    async def integrity_names(key: str, seq: int) -> None:
        status, integrity = await live_server.request(
            "GET", f"/api/cases/{case_id}/integrity", "auditor1"
        )
        assert status == 200, integrity
        assert (integrity["state"], integrity["where"], integrity["reason"]) == (
            "broken",
            key,
            f"missing (recorded by chain entry {seq})",
        )
        assert integrity["inspections"][inspection_id] == "broken"
        await live_server.services.archive.checkpoint(case_id)  # signs the "verified" entry
        await live_server.services.archive.drain()
        code, out, err = await takan("verify", case_id, "--data", str(live_server.data_dir))
        assert (code, out.splitlines()[0]) == (
            1,
            f"FAILED: {key}: missing (recorded by chain entry {seq})",
        ), err

    # A segment replaced by a symlink to a copy of itself, outside the archive.
    victim = segments[0]
    path = archive / victim.body["key"]
    shutil.copy(path, tmp_path / "copy.webm")
    path.unlink()
    path.symlink_to(tmp_path / "copy.webm")
    await refused(victim.body["key"], "it is a symlink")
    await integrity_names(victim.body["key"], victim.seq)
    path.unlink()
    shutil.copy(tmp_path / "copy.webm", path)

    # A track's directory replaced by a symlink to a copy of it.
    audio = [e for e in segments if e.body["track"] == "applicant-audio"]
    track_dir = path.parent.parent / "applicant-audio"
    shutil.move(track_dir, tmp_path / "audio")
    track_dir.symlink_to(tmp_path / "audio", target_is_directory=True)
    shown = track_dir.relative_to(archive).as_posix()
    await refused(audio[-1].body["key"], f"{shown} is a symlink")
    await integrity_names(audio[0].body["key"], audio[0].seq)
