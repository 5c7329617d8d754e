"""Snapshots: the inspector's click becomes a PNG of the applicant's next full frame, chained.

The picture is stored as decoded (never changed afterwards) and chained with its SHA-256, the
server's UTC time, the media timestamp on the recording's timeline, the applicant's last
location fix and who took it. SQLite indexes it for pages and reports.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from typing import Any

from recorder import layout
from recorder.errors import ObjectNotFound
from server.clock import utc_iso
from server.errors import Conflict, NotFound
from server.inspection.evidence_access import owned_inspection, readable_inspection
from server.live.media.relay import CLOCK_RATES
from server.live.media.snapshot import SnapshotError, is_flowing, take_snapshot
from server.security.tokens import SessionToken
from server.services import Services
from server.store.backend import Row

logger = logging.getLogger(__name__)

VIDEO_TIME_BASE = f"1/{CLOCK_RATES['video']}"
NO_VIDEO = "no video is flowing"


@dataclass(frozen=True, slots=True)
class SnapshotRecord:
    snapshot_id: str
    inspection_id: str
    case_id: str
    key: str
    sha256: str
    size: int
    width: int
    height: int
    taken_at: str
    media_pts: int | None
    lat: str | None
    lon: str | None
    by: str
    chain_seq: int

    @property
    def url(self) -> str:
        return f"/api/snapshots/{self.snapshot_id}.png"

    def to_json(self) -> dict[str, Any]:
        return {
            "snapshot_id": self.snapshot_id,
            "inspection_id": self.inspection_id,
            "sha256": self.sha256,
            "size": self.size,
            "url": self.url,
            "width": self.width,
            "height": self.height,
            "taken_at": self.taken_at,
            "media_pts": self.media_pts,
            "time_base": VIDEO_TIME_BASE,
            "lat": self.lat,
            "lon": self.lon,
            "by": self.by,
            "chain_seq": self.chain_seq,
        }


def _record(row: Row) -> SnapshotRecord:
    return SnapshotRecord(**row)


async def latest_fix(services: Services, inspection_id: str) -> tuple[str | None, str | None]:
    """The applicant's last reported (lat, lon) as decimal strings, or (None, None)."""
    row = await services.store.evidence.latest_location(inspection_id)
    return (str(row["lat"]), str(row["lon"])) if row else (None, None)


async def take(services: Services, user: SessionToken, inspection_id: str) -> SnapshotRecord:
    inspection = await owned_inspection(services, user, inspection_id)
    if inspection.status != "active":
        raise Conflict(f"{NO_VIDEO}: the inspection has ended")
    live = services.live.get(inspection.inspection_id)
    if live is None or live.ended or not is_flowing(live.relay.applicant_video):
        raise Conflict(NO_VIDEO)
    try:
        keyframe, picture = await take_snapshot(live.relay.applicant_video, wall=services.clock.now)
    except SnapshotError as exc:
        raise Conflict(str(exc)) from exc
    current = await services.store.inspections.get(inspection.inspection_id)
    if current is None or current.status != "active":
        raise Conflict(f"{NO_VIDEO}: the inspection ended while the snapshot was taken")
    lat, lon = await latest_fix(services, inspection.inspection_id)
    snapshot_id = secrets.token_hex(16)
    key = layout.snapshot_key(inspection.case_id, inspection.inspection_id, snapshot_id)
    taken_at = utc_iso(keyframe.received_wall)
    time_base = f"{keyframe.time_base.numerator}/{keyframe.time_base.denominator}"
    entry = await services.archive.store_object(
        inspection.case_id,
        key,
        picture.png,
        "snapshot",
        {
            "snapshot_id": snapshot_id,
            "inspection_id": inspection.inspection_id,
            "width": picture.width,
            "height": picture.height,
            "media_pts": keyframe.pts,
            "time_base": time_base,
            "taken_at": taken_at,
            "lat": lat,
            "lon": lon,
            "by": user.username,
        },
    )
    await services.store.evidence.add_snapshot(
        {
            "snapshot_id": snapshot_id,
            "inspection_id": inspection.inspection_id,
            "object_key": key,
            "sha256": entry.body["sha256"],
            "size": entry.body["size"],
            "width": picture.width,
            "height": picture.height,
            "taken_at": taken_at,
            "media_pts": keyframe.pts,
            "lat": lat,
            "lon": lon,
            "taken_by": user.user_id,
            "chain_seq": entry.seq,
        }
    )
    logger.info(
        "snapshot taken",
        extra={
            "case_id": inspection.case_id,
            "inspection_id": inspection.inspection_id,
            "seq": entry.seq,
            "sha256": entry.body["sha256"],
        },
    )
    return SnapshotRecord(
        snapshot_id=snapshot_id,
        inspection_id=inspection.inspection_id,
        case_id=inspection.case_id,
        key=key,
        sha256=entry.body["sha256"],
        size=entry.body["size"],
        width=picture.width,
        height=picture.height,
        taken_at=taken_at,
        media_pts=keyframe.pts,
        lat=lat,
        lon=lon,
        by=user.username,
        chain_seq=entry.seq,
    )


async def snapshot_by_id(services: Services, snapshot_id: str) -> SnapshotRecord:
    """The snapshot (404 if unknown), whoever asks: callers check who may see it."""
    try:
        layout.check_object_id(snapshot_id, "snapshot_id")
    except ValueError:
        raise NotFound(f"snapshot {snapshot_id[:64]!r} does not exist") from None
    row = await services.store.evidence.snapshot(snapshot_id)
    if row is None:
        raise NotFound(f"snapshot '{snapshot_id}' does not exist")
    return _record(row)


async def visible_snapshot(
    services: Services, user: SessionToken, snapshot_id: str
) -> SnapshotRecord:
    """The snapshot, if ``user`` may read its inspection."""
    record = await snapshot_by_id(services, snapshot_id)
    await readable_inspection(services, user, record.inspection_id)
    return record


async def snapshots_of(services: Services, inspection_id: str) -> list[SnapshotRecord]:
    rows = await services.store.evidence.snapshots_of(inspection_id)
    return [_record(row) for row in rows]


async def png_bytes(services: Services, record: SnapshotRecord) -> bytes:
    try:
        return await services.archive.read_object(record.key)
    except ObjectNotFound as exc:
        raise NotFound(f"snapshot '{record.snapshot_id}' is not in the archive: {exc}") from exc
