# ruff: noqa: RUF001 - Chinese text uses full-width punctuation on purpose
"""The inspection report: Chinese HTML and PDF made after the conclusion, stored, chained,
verified."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import cv2
import numpy as np
import pytest

from recorder import layout
from recorder.canonical import canonical_json
from recorder.chain import ChainEntry
from server.live import site_checks
from server.live.geo import LocationFix
from server.reports.gather import thumbnail_jpeg
from server.reports.html import ReportContent
from server.reports.publish import render_files
from tests.conftest import LiveServer
from tests.unit.test_report_html import content as report_content

HOSTILE_TITLE = '新建厂房 <script>alert("x")</script> & 踏勘'
HOSTILE_REASON = "现场与申报材料一致 <img src=x onerror=alert(1)>"
FINDING = "洗手池未配备消毒设施"
MARKS = [
    {"type": "arrow", "x1": 20, "y1": 200, "x2": 120, "y2": 120, "color": "#e53935"},
    {"type": "box", "x1": 10, "y1": 10, "x2": 90, "y2": 60, "color": "#fdd835"},
    {"type": "text", "x1": 10, "y1": 70, "x2": 300, "y2": 94, "text": FINDING, "color": "#e53935"},
]


async def run(*args: str, timeout: float = 60) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    async with asyncio.timeout(timeout):
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def fetch(
    server: LiveServer, path: str, username: str | None
) -> tuple[int, dict[str, str], bytes]:
    headers = {}
    if username is not None:
        headers["Authorization"] = f"Bearer {await server.token(username)}"
    async with (
        aiohttp.ClientSession() as http,
        http.get(server.base_url + path, headers=headers) as response,
    ):
        return response.status, dict(response.headers), await response.read()


async def wait_for_report(
    server: LiveServer, inspection_id: str, fmt: str, version: int, username: str = "inspector1"
) -> tuple[dict[str, str], bytes]:
    """Poll until the report of ``version`` is served (202 meanwhile); generous for a busy box."""
    deadline = time.monotonic() + 120
    while True:
        status, headers, body = await fetch(
            server, f"/api/inspections/{inspection_id}/report.{fmt}", username
        )
        if status == 200 and headers["X-Report-Version"] == str(version):
            return headers, body
        assert status in (200, 202), (status, body[:300])
        assert time.monotonic() < deadline, "the report was not generated within 120 s"
        await asyncio.sleep(0.3)


async def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    code, out, err = await run("pdftotext", "-layout", str(path), "-")
    assert code == 0, err
    return out


async def snapshot_when_video_flows(server: LiveServer, inspection_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        status, body = await server.request(
            "POST", f"/api/inspections/{inspection_id}/snapshots", "inspector1"
        )
        if status == 201:
            return dict(body)
        assert status == 409, body
        assert time.monotonic() < deadline, f"no video within 60 s: {body}"
        await asyncio.sleep(0.5)


def checklist_row(html: str, item_id: str) -> str:
    """The report's checklist table row of the item (found by its template text)."""
    texts = {
        "site_sign": "施工现场公示牌",
        "boundary": "场地四至边界",
        "structure": "主体结构与施工图一致",
        "fire_access": "消防通道畅通",
        "safety": "围挡、安全网",
    }
    [row] = [r for r in html.split("<tr>") if texts[item_id] in r and "</td>" in r]
    return row.split("</tr>")[0]


async def chained_entries(server: LiveServer, case_id: str) -> list[ChainEntry]:
    _, entries = await server.services.archive.chain_page(case_id, 0, 10_000)
    return entries


async def chained_reports(server: LiveServer, case_id: str) -> list[dict[str, Any]]:
    _, entries = await server.services.archive.chain_page(case_id, 0, 10_000)
    return [e.body for e in entries if e.kind == "report"]


async def add_site_checks(server: LiveServer, case_id: str, inspection_id: str) -> None:
    """Location fixes and a judged challenge, through the same functions signalling uses."""
    services = server.services
    now = services.clock.now()
    for i in range(3):
        fix = LocationFix(30.2741 + i * 0.0001, 120.1551, 8.0, now - 20 + i * 10)
        await site_checks.record_location(services, case_id, inspection_id, "applicant-1", fix)
    challenge = await site_checks.issue_challenge(
        services, case_id, inspection_id, "code", None, 1, "inspector1"
    )
    await site_checks.mark_shown(services, case_id, inspection_id, challenge.challenge_id)
    await site_checks.judge(
        services,
        case_id,
        inspection_id,
        challenge.challenge_id,
        "passed",
        "举牌清晰 <b>ok</b>",
        "inspector1",
    )


async def test_concluded_inspection_gets_a_chinese_pdf_and_html_report_that_verifies(
    live_server: LiveServer, tmp_path: Path
) -> None:
    case = await live_server.new_case(
        title=HOSTILE_TITLE, case_type="building", site_lat=30.2741, site_lon=120.1551
    )
    case_id = case["case_id"]
    status, invite = await live_server.request(
        "POST", f"/api/cases/{case_id}/inspections", "inspector1"
    )
    assert status == 201, invite
    inspection_id = invite["inspection_id"]
    publish = ("publish", invite["applicant_url"], "--source", "testsrc", "--seconds", "60")
    publisher = asyncio.create_task(run(sys.executable, "-m", "client", *publish, timeout=120))
    first = await snapshot_when_video_flows(live_server, inspection_id)
    second = await snapshot_when_video_flows(live_server, inspection_id)
    status, annotation = await live_server.request(
        "POST",
        f"/api/snapshots/{first['snapshot_id']}/annotations",
        "inspector1",
        json={"shapes": MARKS},
    )
    assert status == 201, annotation
    await add_site_checks(live_server, case_id, inspection_id)
    # Each item its verdict, note and the photos picked for it (photo 1 is the first snapshot).
    one, two = first["snapshot_id"], second["snapshot_id"]
    marks = {
        "site_sign": ("pass", "已核对 <u>门牌</u>", [one]),
        "boundary": ("pass", "四至与红线一致", [two]),
        "structure": ("pass", "主体结构无加建", [two, one]),
        "fire_access": ("not_applicable", "尚未施工至消防阶段", []),
        "safety": ("pass", "围挡完好", [one]),
    }
    for item_id, (verdict, note, photos) in marks.items():
        status, marked = await live_server.request(
            "POST",
            f"/api/inspections/{inspection_id}/checklist/{item_id}",
            "inspector1",
            json={"verdict": verdict, "note": note, "snapshot_ids": photos},
        )
        assert status == 200, marked

    status, before = await live_server.request(
        "GET", f"/api/inspections/{inspection_id}/report.pdf", "inspector1"
    )
    assert (status, before["error"]) == (409, "conflict"), before

    status, concluded = await live_server.request(
        "POST",
        f"/api/inspections/{inspection_id}/conclusion",
        "inspector1",
        json={"outcome": "pass", "reason": HOSTILE_REASON},
    )
    assert status == 201, concluded
    assert concluded["report_pdf_url"] == f"/api/inspections/{inspection_id}/report.pdf"
    code, _, err = await publisher
    assert code == 0, err

    pdf_headers, pdf = await wait_for_report(live_server, inspection_id, "pdf", 1)
    assert pdf.startswith(b"%PDF-")
    assert pdf_headers["Content-Type"] == "application/pdf"
    text = await pdf_text(pdf, tmp_path)
    assert case_id in text
    assert "远程踏勘报告" in text
    assert "踏勘结论：通过" in text.replace(" ", "")
    for shot in (first, second):
        assert shot["sha256"] in text, f"snapshot hash {shot['sha256']} not in the PDF text"
    assert annotation["sha256"] in text
    # The marked-up copy prints beside the original, with the annotation's text.
    [rendered] = [
        e for e in await chained_entries(live_server, case_id) if e.kind == "annotation_rendered"
    ]
    assert rendered.body["annotation_id"] == annotation["annotation_id"]
    assert rendered.body["original_sha256"] == first["sha256"]
    assert rendered.body["sha256"] in text
    assert FINDING in text.replace(" ", "")
    images = await images_per_page(pdf, tmp_path)
    assert list(images.values()) == [3], images  # on one page: two originals, one copy
    assert concluded["signature"] in text

    # An auditor reads the same report; the HTML shows user text as text, never as markup.
    html_headers, html_bytes = await wait_for_report(
        live_server, inspection_id, "html", 1, "auditor1"
    )
    html = html_bytes.decode("utf-8")
    for markup in ("<script>alert", "<img src=x", "<b>ok", "<u>门牌"):
        assert markup not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; 踏勘" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "default-src 'none'" in html_headers["Content-Security-Policy"]
    for shot in (first, second):
        assert shot["sha256"] in html
    # The checklist lists per item its verdict, note and picked photos, by photo number.
    rows = {item_id: checklist_row(html, item_id) for item_id in marks}
    for item_id, expected in (
        ("site_sign", ("符合", "已核对 &lt;u&gt;门牌&lt;/u&gt;", "1 / 1", "照片 1<")),
        ("boundary", ("符合", "四至与红线一致", "1 / 1", "照片 2<")),
        ("structure", ("符合", "主体结构无加建", "2 / 2", "照片 2、照片 1<")),
        ("fire_access", ("不适用", "尚未施工至消防阶段", "0 / 1")),
        ("safety", ("符合", "围挡完好", "1 / 1", "照片 1<")),
    ):
        for part in expected:
            assert part in rows[item_id], (item_id, part, rows[item_id])
    assert "不符合" not in "".join(rows.values())
    assert "已核查 5 项（符合 4 项、不适用 1 项）；未核查 0 项" in html
    assert "不适用" in text  # the PDF says the same (its narrow cells wrap the rest)

    assert html.count('<img src="data:image/jpeg;base64,') == 3
    assert 'alt="照片 1 标注图 1"' in html
    assert f"标注文字：{FINDING}" in html

    # The originals are as they were taken: the copy is a new object beside them.
    archive = live_server.services.archive
    for shot in (first, second):
        key = layout.snapshot_key(case_id, inspection_id, shot["snapshot_id"])
        assert hashlib.sha256(await archive.read_object(key)).hexdigest() == shot["sha256"]
    copy = await archive.read_object(rendered.body["key"])
    assert hashlib.sha256(copy).hexdigest() == rendered.body["sha256"]
    assert copy != await archive.read_object(rendered.body["original_key"])

    # Both files are chained with the hashes of the bytes served, and the case verifies.
    chained = {body["format"]: body for body in await chained_reports(live_server, case_id)}
    assert chained["pdf"]["sha256"] == hashlib.sha256(pdf).hexdigest()
    assert chained["html"]["sha256"] == hashlib.sha256(html_bytes).hexdigest()
    assert chained["pdf"]["key"] == (f"cases/{case_id}/inspections/{inspection_id}/reports/001.pdf")
    assert pdf_headers["X-Content-SHA256"] == chained["pdf"]["sha256"]
    # Times print as 北京时间, and the report's entries say which zone it printed.
    assert chained["pdf"]["timezone"] == chained["html"]["timezone"] == "Asia/Shanghai"
    assert "本报告时间为北京时间（Asia/Shanghai，UTC+08:00）" in html
    await live_server.services.archive.drain()
    code, out, err = await run(
        sys.executable, "-m", "server.cli", "verify", case_id, "--data", str(live_server.data_dir)
    )
    assert code == 0, out + err

    # Only the inspection's own inspector, auditors and admins may read it.
    path = f"/api/inspections/{inspection_id}/report.pdf"
    assert (await fetch(live_server, path, "inspector2"))[0] == 403
    assert (await fetch(live_server, path, None))[0] == 401
    assert (await fetch(live_server, path, "admin1"))[0] == 200


async def test_correction_makes_a_second_signed_report_version_naming_both_conclusions(
    live_server: LiveServer, tmp_path: Path
) -> None:
    invite = await live_server.new_inspection()
    inspection_id = invite["inspection_id"]
    conclusion_path = f"/api/inspections/{inspection_id}/conclusion"
    status, first = await live_server.request(
        "POST", conclusion_path, "inspector1", json={"outcome": "fail", "reason": "无人到场"}
    )
    assert status == 201, first
    await wait_for_report(live_server, inspection_id, "pdf", 1)
    status, second = await live_server.request(
        "POST",
        conclusion_path,
        "inspector1",
        json={
            "outcome": "correction",
            "reason": "补交门牌照片后复核",
            "corrects": first["chain_seq"],
        },
    )
    assert status == 201, second

    _, pdf = await wait_for_report(live_server, inspection_id, "pdf", 2)
    text = (await pdf_text(pdf, tmp_path)).replace(" ", "")
    assert "踏勘结论：需补正" in text
    assert "无人到场" in text  # the history shows both
    assert "补交门牌照片后复核" in text
    versions = sorted(
        (body["version"], body["format"])
        for body in await chained_reports(live_server, invite["case_id"])
    )
    assert versions == [(1, "html"), (1, "pdf"), (2, "html"), (2, "pdf")]
    await live_server.services.archive.drain()
    code, out, err = await run(
        sys.executable, "-m", "server.cli", "verify", invite["case_id"],
        "--data", str(live_server.data_dir),
    )  # fmt: skip
    assert code == 0, out + err


async def test_report_of_an_unknown_inspection_is_not_found(live_server: LiveServer) -> None:
    status, body = await live_server.request(
        "GET", "/api/inspections/" + "0" * 32 + "/report.html", "auditor1"
    )
    assert (status, body["error"]) == (404, "not_found"), body


def report_with_photos(count: int, height: int = 480) -> ReportContent:
    """A report holding ``count`` distinct camera-sized photos (thumbnails as the server makes
    them from PNGs)."""
    report = report_content("厂房", "理由", count)
    shots = []
    for i, shot in enumerate(report.snapshots):
        image = np.full((height, 640, 3), (30 * i, 140, 220), np.uint8)
        cv2.putText(image, f"photo {i + 1}", (40, 200), cv2.FONT_HERSHEY_SIMPLEX, 3, (0, 0, 0), 6)
        ok, png = cv2.imencode(".png", image)
        assert ok
        shots.append(
            dataclasses.replace(
                shot, width=640, height=height, thumbnail_jpeg=thumbnail_jpeg(bytes(png))
            )
        )
    return dataclasses.replace(report, snapshots=tuple(shots))


async def images_per_page(pdf: bytes, tmp_path: Path) -> dict[int, int]:
    path = tmp_path / "photos.pdf"
    path.write_bytes(pdf)
    code, out, err = await run("pdfimages", "-list", str(path))
    assert code == 0, err
    pages = [int(line.split()[0]) for line in out.splitlines()[2:] if line.strip()]
    return dict(Counter(pages))


async def page_of_each_caption(pdf: bytes, tmp_path: Path, count: int) -> dict[int, int]:
    path = tmp_path / "photos.pdf"
    path.write_bytes(pdf)
    code, out, err = await run("pdftotext", "-layout", str(path), "-")
    assert code == 0, err
    found = {}
    for page, text in enumerate(out.split("\f"), start=1):
        for number in range(1, count + 1):
            if f"照片 {number} 原图" in text.replace("　", " "):
                found[number] = page
    return found


@pytest.mark.parametrize("height", [480, 1138])  # landscape 640x480, portrait as a phone films
async def test_five_photos_print_four_to_a_page_in_a_two_by_two_grid(
    tmp_path: Path, height: int
) -> None:
    _, pdf = await asyncio.to_thread(render_files, report_with_photos(5, height))
    pages = await page_of_each_caption(pdf, tmp_path, 5)
    assert sorted(pages) == [1, 2, 3, 4, 5], pages
    first = pages[1]
    assert [pages[n] for n in (1, 2, 3, 4, 5)] == [first] * 4 + [first + 1], pages
    images = await images_per_page(pdf, tmp_path)
    assert images == {first: 4, first + 1: 1}, images


async def test_an_annotation_chained_without_its_copy_gets_one_when_the_report_is_made(
    live_server: LiveServer, tmp_path: Path
) -> None:
    """As in an archive from before marked-up copies: the report draws the copy, chains it after
    the conclusion, and prints it."""
    invite = await live_server.new_inspection()
    case_id, inspection_id = invite["case_id"], invite["inspection_id"]
    publish = ("publish", invite["applicant_url"], "--source", "testsrc", "--seconds", "60")
    publisher = asyncio.create_task(run(sys.executable, "-m", "client", *publish, timeout=120))
    shot = await snapshot_when_video_flows(live_server, inspection_id)
    annotation_id = "d" * 32
    document = {
        "annotation_id": annotation_id,
        "snapshot_id": shot["snapshot_id"],
        "snapshot_sha256": shot["sha256"],
        "inspection_id": inspection_id,
        "image": {"width": shot["width"], "height": shot["height"]},
        "shapes": MARKS,
        "by": "inspector1",
        "created_at": shot["taken_at"],
    }
    await live_server.services.archive.store_object(
        case_id,
        layout.annotation_key(case_id, inspection_id, annotation_id),
        canonical_json(document),
        "annotation",
        {
            "annotation_id": annotation_id,
            "snapshot_id": shot["snapshot_id"],
            "inspection_id": inspection_id,
            "by": "inspector1",
            "created_at": shot["taken_at"],
        },
    )
    status, concluded = await live_server.request(
        "POST",
        f"/api/inspections/{inspection_id}/conclusion",
        "inspector1",
        json={"outcome": "fail", "reason": FINDING},
    )
    assert status == 201, concluded
    code, _, err = await publisher
    assert code == 0, err

    _, html = await wait_for_report(live_server, inspection_id, "html", 1)
    assert 'alt="照片 1 标注图 1"' in html.decode()
    entries = await chained_entries(live_server, case_id)
    [rendered] = [e for e in entries if e.kind == "annotation_rendered"]
    assert rendered.seq > concluded["chain_seq"]
    assert rendered.body["annotation_id"] == annotation_id
    await live_server.services.archive.drain()
    code, out, err = await run(
        sys.executable, "-m", "server.cli", "verify", case_id, "--data", str(live_server.data_dir)
    )
    assert code == 0, out + err
