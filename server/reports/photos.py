# ruff: noqa: RUF001 - Chinese text uses full-width punctuation on purpose
"""The report's photos (pure): a 2 x 2 grid to a printed page, each photo captioned with its
number, its time (local and UTC) and its hash's first digits; then the evidence table holding
every photo's whole hash, object and chain entry."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass

from server.reports.markup import Html, cell, hash_line, section, stamp, table, text
from server.reports.times import ReportTimes

PHOTOS_PER_ROW = 2
PHOTOS_PER_PAGE = 4  # a 2 x 2 grid
HASH_PREFIX = 16


@dataclass(frozen=True, slots=True)
class MarkedUpCopy:
    """A snapshot with one annotation drawn on it: derived evidence (``annotation_rendered``)."""

    key: str
    sha256: str
    size: int
    renderer: str
    chain_seq: int
    thumbnail_jpeg: bytes


@dataclass(frozen=True, slots=True)
class AnnotationRef:
    annotation_id: str
    sha256: str
    texts: tuple[str, ...] = ()  # the text shapes' words, in drawing order
    marked_up: MarkedUpCopy | None = None


@dataclass(frozen=True, slots=True)
class SnapshotEvidence:
    snapshot_id: str
    key: str
    sha256: str
    size: int
    width: int
    height: int
    taken_at: str
    media_pts: int | None
    lat: str | None
    lon: str | None
    taken_by: str
    chain_seq: int
    thumbnail_jpeg: bytes
    annotations: tuple[AnnotationRef, ...]


@dataclass(frozen=True, slots=True)
class PhotoCell:
    """One picture of the grid with its caption."""

    jpeg: bytes
    alt: str
    caption: Html


def _original(index: int, shot: SnapshotEvidence, times: ReportTimes) -> PhotoCell:
    caption = Html(
        f"<div><b>照片 {index}</b>　原图</div>"
        f'<div>{text(times.local(shot.taken_at))}</div><div class="utc">'
        f"{text(times.utc(shot.taken_at))}</div>"
        f'<div>SHA-256 <span class="mono">{text(shot.sha256[:HASH_PREFIX])}…</span></div>'
    )
    return PhotoCell(shot.thumbnail_jpeg, f"照片 {index}", caption)


def _texts(annotation: AnnotationRef) -> str:
    return "；".join(annotation.texts) if annotation.texts else "（无文字）"


def _marked_up(index: int, number: int, annotation: AnnotationRef) -> PhotoCell | None:
    copy = annotation.marked_up
    if copy is None:
        return None
    caption = Html(
        f"<div><b>照片 {index}</b>　标注图 {number}（据原图与标注绘制）</div>"
        f'<div class="note">标注文字：{text(_texts(annotation))}</div>'
        f'<div>SHA-256 <span class="mono">{text(copy.sha256[:HASH_PREFIX])}…</span></div>'
    )
    return PhotoCell(copy.thumbnail_jpeg, f"照片 {index} 标注图 {number}", caption)


def photo_cells(
    snapshots: Sequence[SnapshotEvidence], times: ReportTimes
) -> list[PhotoCell | None]:
    """Each original followed by its marked-up copies; an original with copies starts a row
    (an empty cell before it when it would not), so its copy prints beside it."""
    cells: list[PhotoCell | None] = []
    for index, shot in enumerate(snapshots, start=1):
        copies = [_marked_up(index, n, a) for n, a in enumerate(shot.annotations, start=1)]
        present = [copy for copy in copies if copy is not None]
        if present and len(cells) % PHOTOS_PER_ROW:
            cells.append(None)
        cells += [_original(index, shot, times), *present]
    return cells


def _grid_cell(photo: PhotoCell | None) -> str:
    if photo is None:
        return '<td class="empty"></td>'
    image = base64.b64encode(photo.jpeg).decode("ascii")
    return (
        f'<td><img src="data:image/jpeg;base64,{image}" alt="{text(photo.alt)}">'
        f'<div class="caption">{photo.caption}</div></td>'
    )


def photo_sheets(cells: Sequence[PhotoCell | None]) -> list[Html]:
    """The cells in grids of ``PHOTOS_PER_PAGE``, each grid a printed page of its own."""
    sheets = []
    for start in range(0, len(cells), PHOTOS_PER_PAGE):
        page = list(cells[start : start + PHOTOS_PER_PAGE])
        rows = []
        for row_start in range(0, len(page), PHOTOS_PER_ROW):
            row: list[PhotoCell | None] = list(page[row_start : row_start + PHOTOS_PER_ROW])
            row += [None] * (PHOTOS_PER_ROW - len(row))
            rows.append("<tr>" + "".join(_grid_cell(photo) for photo in row) + "</tr>")
        sheets.append(Html(f'<table class="photos">{"".join(rows)}</table>'))
    return sheets


def _annotation_lines(index: int, number: int, annotation: AnnotationRef) -> str:
    lines = (
        f"<div>标注 {number}（{text(annotation.annotation_id)}）SHA-256："
        f"{hash_line(annotation.sha256)}</div>"
        f'<div class="note">标注文字：{text(_texts(annotation))}</div>'
    )
    copy = annotation.marked_up
    if copy is None:
        return lines + "<div>标注图：未生成（原图与标注仍为存证，见哈希链）</div>"
    return lines + (
        f"<div>照片 {index} 标注图 {number}（{text(copy.renderer)} 据原图与标注 {number} 绘制，"
        f"{copy.size} 字节，链序号 {copy.chain_seq}）SHA-256：{hash_line(copy.sha256)}</div>"
        f'<div>标注图对象：<span class="mono key">{text(copy.key)}</span></div>'
    )


def _evidence_rows(index: int, shot: SnapshotEvidence, times: ReportTimes) -> str:
    place = f"{shot.lat}, {shot.lon}" if shot.lat and shot.lon else "无定位"
    first = (
        f"照片 {index}",
        stamp(times, shot.taken_at),
        shot.taken_by,
        place,
        f"{shot.width}×{shot.height} PNG，{shot.size} 字节",
        shot.media_pts,
        shot.chain_seq,
    )
    notes = "".join(_annotation_lines(index, n, a) for n, a in enumerate(shot.annotations, 1))
    detail = (
        f"<div>照片 {index}（{text(shot.snapshot_id)}）原图 SHA-256：{hash_line(shot.sha256)}</div>"
        f'<div>对象：<span class="mono key">{text(shot.key)}</span></div>{notes}'
    )
    cells = "".join(f"<td>{cell(value)}</td>" for value in first)
    return (
        f'<tbody class="photo"><tr>{cells}</tr>'
        f'<tr><td colspan="{len(first)}" class="lines">{detail}</td></tr></tbody>'
    )


def _evidence_table(snapshots: Sequence[SnapshotEvidence], times: ReportTimes) -> Html:
    headers = (
        "照片",
        f"拍摄时间（{times.name}）",
        "拍摄人",
        "位置",
        "原图",
        "媒体时间戳",
        "链序号",
    )
    head = "".join(f"<th>{text(h)}</th>" for h in headers)
    body = "".join(_evidence_rows(i, s, times) for i, s in enumerate(snapshots, start=1))
    return Html(
        f'<h3>照片存证表</h3><table class="evidence"><thead><tr>{head}</tr></thead>{body}</table>'
    )


def snapshots_section(times: ReportTimes, snapshots: Sequence[SnapshotEvidence]) -> Html:
    title = "六、现场照片"
    if not snapshots:
        return section(title, table(("照片",), []))
    intro = Html(
        f'<p class="muted">共 {len(snapshots)} 张现场照片，每页四张。下图为缩略图；原图（PNG）'
        "保存在存证库中，其 SHA-256 已写入哈希链；标注另存，不改动原图，标注图是据原图与标注"
        "另行绘制的副本，其 SHA-256 同样写入哈希链。</p>"
    )
    sheets = photo_sheets(photo_cells(snapshots, times))
    first = Html(f'<div class="photo-sheet">{section(title, intro, sheets[0])}</div>')
    rest = [Html(f'<div class="photo-sheet">{sheet}</div>') for sheet in sheets[1:]]
    return Html(first + "".join(rest) + _evidence_table(snapshots, times))
