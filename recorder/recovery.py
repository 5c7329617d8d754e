"""Crash recovery: what a stopped process left on its disk, chained with how it was recovered.

A store commits when its chain entry is durable (``recorder.archive``); what a crash can leave:

- a segment the recorder was still writing, in ``spool/recording/{case}/{inspection}/``: its
  readable packets are remuxed into a finalized file and chained as a partial segment;
- a segment or object whose entry was committed but which was not yet moved into the spool: it
  is moved now (its entry already records its hash);
- a staged object whose entry was never written (the request that made it failed), or a file
  whose hash is not the one its entry records: moved to ``spool/quarantine/``, never deleted.

Each of these is a ``recovered`` chain entry naming the file by hash and saying ``how``: nothing
is dropped silently. A process that finds a segment it cannot close while it records salvages it
the same way (``salvage_segment``).
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recorder import layout
from recorder.errors import StorageError
from recorder.manifest import SegmentRecord
from recorder.recording import FinishedSegment
from recorder.segments import remux_partial
from recorder.storage import file_digest, move_durably

if TYPE_CHECKING:
    from recorder.archive import Archive

logger = logging.getLogger(__name__)

# track-000003.webm as the recorder writes it; .recovered.webm as a remux of it
_SEGMENT_FILE = re.compile(
    r"(?P<track>applicant-video|applicant-audio|inspector-audio)-(?P<seq>[0-9]{6})"
    r"(?P<derived>\.recovered)?\.webm"
)


async def salvage_segment(
    archive: Archive,
    case_id: str,
    inspection_id: str,
    track: str,
    seq: int,
    path: Path,
    walls: tuple[float, float] | None = None,
) -> SegmentRecord | None:
    """Remux the readable packets of an unfinished segment file into a finalized one, chain it
    as partial with a ``recovered`` event (or quarantine the file when nothing is readable).

    ``walls``: the segment's start and end (UTC seconds) when known; else the file's mtime."""
    original_sha256, original_size = await archive.run_blocking(file_digest, path)
    body: dict[str, Any] = {
        "inspection_id": inspection_id,
        "track": track,
        "seq": seq,
        "original_size": original_size,
        "original_sha256": original_sha256,
    }
    remuxed = path.with_name(path.name.removesuffix(".webm") + ".recovered.webm")
    result = await archive.run_blocking(remux_partial, path, remuxed)
    if result is None:
        await _quarantine(archive, case_id, f"{inspection_id}/{path.name}", path)
        await archive.append(
            case_id, "recovered", {**body, "readable": False, "how": "quarantined"}
        )
        return None
    if walls is None:
        modified = (await archive.run_blocking(path.stat)).st_mtime
        walls = (modified, modified)
    finished = FinishedSegment(track, seq, result, walls[0], walls[1], partial=True)
    record = await archive.store_segment(case_id, inspection_id, finished)
    await archive.run_blocking(path.unlink)
    await archive.append(
        case_id,
        "recovered",
        {**body, "readable": True, "frames": result.frames, "how": "remuxed"},
    )
    return record


async def recover(archive: Archive) -> list[SegmentRecord]:
    """Recover what a crash left (see the module's docstring), then sign a checkpoint of every
    case this touched or whose chain entries were still spooled, so a crash before the periodic
    checkpoint leaves a signed chain, not an unsigned tail. Returns the partial segments."""
    touched = {
        key.split("/")[1]
        for key in await archive.run_blocking(archive.spooled_keys)
        if key.startswith("cases/") and "/chain/" in key
    }
    touched |= await _recover_staged(archive)
    recovered: list[SegmentRecord] = []
    groups: dict[tuple[str, str, str, int], list[Path]] = defaultdict(list)

    def segment_files() -> list[Path]:
        return sorted(archive.recording_dir.glob("*/*/*.webm"))

    for path in await archive.run_blocking(segment_files):
        match = _SEGMENT_FILE.fullmatch(path.name)
        if match is None:
            continue
        case_id, inspection_id = path.parent.parent.name, path.parent.name
        groups[(case_id, inspection_id, match["track"], int(match["seq"]))].append(path)
    for (case_id, inspection_id, track, seq), paths in sorted(groups.items()):
        touched.add(case_id)
        key = layout.segment_key(case_id, inspection_id, track, seq)
        recorded = await archive.recorded_sha256(case_id, key)
        if recorded is not None:
            for path in paths:  # committed before the crash: move the one its entry names
                await _settle_committed(archive, case_id, key, path, recorded)
            continue
        originals = [p for p in paths if not p.name.endswith(".recovered.webm")]
        for path in paths:
            if originals and path not in originals:
                await archive.run_blocking(path.unlink)  # an uncommitted remux, made again below
        record = await salvage_segment(archive, case_id, inspection_id, track, seq, paths[0])
        if record is not None:
            recovered.append(record)
    for case_id in sorted(touched):
        try:
            await archive.checkpoint(case_id)
        except StorageError as exc:  # the periodic checkpoint signs it once storage is back
            logger.warning(
                "no checkpoint after recovery", extra={"case_id": case_id, "error": str(exc)}
            )
    return recovered


async def _recover_staged(archive: Archive) -> set[str]:
    root = archive.staging_dir

    def staged_files() -> list[Path]:
        return [p for p in sorted(root.rglob("*")) if p.is_file() and not p.name.endswith(".tmp")]

    staged = await archive.run_blocking(staged_files)
    cases: set[str] = set()
    for path in staged:
        key = path.relative_to(root).as_posix()
        parts = key.split("/")
        if len(parts) < 3 or parts[0] != "cases":
            continue
        case_id = parts[1]
        cases.add(case_id)
        recorded = await archive.recorded_sha256(case_id, key)
        await _settle_committed(archive, case_id, key, path, recorded)
    return cases


async def _settle_committed(
    archive: Archive, case_id: str, key: str, path: Path, recorded: str | None
) -> None:
    """Move a staged file into the spool if its entry records its hash, else quarantine it."""
    sha256, size = await archive.run_blocking(file_digest, path)
    body: dict[str, Any] = {"object": key, "original_sha256": sha256, "original_size": size}
    if recorded == sha256:
        await archive.move_committed(key, path)
        await archive.append(case_id, "recovered", {**body, "how": "moved"})
        return
    await _quarantine(archive, case_id, key, path)
    await archive.append(case_id, "recovered", {**body, "how": "quarantined"})


async def _quarantine(archive: Archive, case_id: str, name: str, path: Path) -> None:
    target = archive.spool_root / "quarantine" / case_id / name
    await archive.run_blocking(move_durably, path, target)
    logger.error(
        "quarantined a file no chain entry records",
        extra={"case_id": case_id, "path": str(target)},
    )
