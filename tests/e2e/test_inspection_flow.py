# ruff: noqa: RUF001 - Chinese text uses full-width punctuation on purpose
"""The whole 远程踏勘 in Chromium, from the case to the verified report.

An inspector at a desktop and an applicant on a phone-sized page (fake camera, overridden
geolocation) go through what the issue asks: location shown with the distance to the site, a code
challenge answered and judged, two snapshots (button and key S) each annotated with an arrow, a box
and a text, the checklist completed, a signed conclusion, the PDF report (pdftotext shows the case
ID, the conclusion, both snapshot hashes and the annotations' text; each marked-up copy is printed
beside its untouched original), and ``takan verify`` passing and listing the snapshots.

Waits are generous and poll what a user would see; nothing asserts on timing.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from playwright.async_api import Browser, BrowserContext, Geolocation, Page, expect

from server.live.geo import haversine_m
from tests.conftest import LiveServer
from tests.e2e.helpers import TIMEOUT_MS, login, record_console, wait_video_flowing

pytestmark = pytest.mark.browser

REPORT_TIMEOUT_S = 120.0
SITE = {"site_lat": 30.2741, "site_lon": 120.1551}  # the case's site address
PHONE = Geolocation(latitude=30.2748, longitude=120.1559, accuracy=15)  # about 100 m away
FINDINGS = ("洗手池未配备消毒设施", "裂缝 2")


async def _applicant_context(browser: Browser) -> BrowserContext:
    return await browser.new_context(
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        permissions=["camera", "microphone", "geolocation"],
        geolocation=PHONE,
        locale="zh-CN",
    )


async def _drag(
    page: Page, canvas: Any, start: tuple[float, float], end: tuple[float, float]
) -> None:
    box = await canvas.bounding_box()
    assert box is not None
    await page.mouse.move(box["x"] + box["width"] * start[0], box["y"] + box["height"] * start[1])
    await page.mouse.down()
    await page.mouse.move(
        box["x"] + box["width"] * end[0], box["y"] + box["height"] * end[1], steps=8
    )
    await page.mouse.up()


async def _annotate(page: Page, snapshot_id: str, label: str) -> str:
    """Arrow, box and text on the snapshot in the editor; answers the saved annotation's id."""
    await page.click(f'#snapshot-list button[data-annotate="{snapshot_id}"]')
    modal = page.locator(f'#annotate-modal[data-snapshot-id="{snapshot_id}"]')
    await expect(modal).to_have_attribute("data-ready", "true", timeout=TIMEOUT_MS)
    canvas = modal.locator("canvas")
    await _drag(page, canvas, (0.2, 0.2), (0.45, 0.5))  # arrow, the default tool
    await modal.locator('[data-tool="box"]').click()
    await _drag(page, canvas, (0.55, 0.3), (0.85, 0.75))
    await modal.locator('[data-tool="text"]').click()
    await modal.locator("#annotate-text").fill(label)
    canvas_box = await canvas.bounding_box()
    assert canvas_box is not None
    await page.mouse.click(canvas_box["x"] + 20, canvas_box["y"] + canvas_box["height"] * 0.85)
    await expect(modal).to_have_attribute("data-shapes", "3")
    await modal.locator("#annotate-save").click()
    await expect(modal).to_have_attribute(
        "data-saved", re.compile(r"^[0-9a-f]{32}$"), timeout=TIMEOUT_MS
    )
    annotation_id = await modal.get_attribute("data-saved")
    assert annotation_id is not None
    await modal.locator("#annotate-close").click()
    await expect(modal).to_have_count(0)
    await expect(
        page.locator(f'#snapshot-list li[data-snapshot-id="{snapshot_id}"]')
    ).to_have_attribute("data-annotations", "1")
    return annotation_id


async def _complete_checklist(page: Page) -> int:
    """Pick the photos each item wants, note and mark every item 符合; answers how many."""
    items = page.locator("#checklist li[data-item-id]")
    await expect(items.first).to_be_visible(timeout=TIMEOUT_MS)
    count = await items.count()
    for index in range(count):
        item_id = await items.nth(index).get_attribute("data-item-id")
        row = page.locator(f'#checklist li[data-item-id="{item_id}"]')
        need = int(await row.get_attribute("data-need") or 0)
        for picked in range(int(await row.get_attribute("data-photos") or 0), need):
            await row.locator("input[data-pick]").nth(picked).check()
            await expect(row).to_have_attribute("data-photos", str(picked + 1), timeout=TIMEOUT_MS)
        note = f"已核查 {index + 1}"
        await row.locator('[data-role="note"]').fill(note)
        await row.locator('[data-role="note"]').press("Tab")
        await expect(row).to_have_attribute("data-note", note, timeout=TIMEOUT_MS)
        await row.locator('input[data-verdict="pass"]').check()
        await expect(row).to_have_attribute("data-verdict", "pass", timeout=TIMEOUT_MS)
    return count


async def _fetch_report(context: BrowserContext, url: str) -> bytes:
    """The report once generated: 202 while it is being made."""
    deadline = time.monotonic() + REPORT_TIMEOUT_S
    while True:
        response = await context.request.get(url)
        if response.status == 200:
            return await response.body()
        assert response.status == 202, (response.status, await response.text())
        assert time.monotonic() < deadline, "the report was not generated in time"
        await asyncio.sleep(1)


async def _run(*args: str, timeout: float = 120) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    async with asyncio.timeout(timeout):
        out, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode()


async def test_whole_inspection_from_case_to_verified_report(
    browser: Browser, live_server: LiveServer, tmp_path: Path
) -> None:
    pdftotext = shutil.which("pdftotext")
    assert pdftotext, "pdftotext (poppler-utils) is required: make system-deps"
    case = await live_server.new_case("inspector1", case_type="building", **SITE)
    case_id = case["case_id"]
    inspector_context = await browser.new_context(
        viewport={"width": 1400, "height": 1000}, permissions=["microphone"], locale="zh-CN"
    )
    applicant_context = await _applicant_context(browser)
    console: list[str] = []
    try:
        # The inspector starts the inspection from the cases page.
        inspector = await inspector_context.new_page()
        record_console(inspector, console, "inspector")
        await login(inspector, live_server, "inspector1")
        await inspector.click(f'#case-list button[data-case-id="{case_id}"]')
        await inspector.wait_for_url(re.compile(r"/inspect/[0-9a-f]{32}$"), timeout=TIMEOUT_MS)
        inspection_id = inspector.url.rsplit("/", 1)[-1]
        await expect(inspector.locator("body")).to_have_attribute(
            "data-conn", "joined", timeout=TIMEOUT_MS
        )
        await expect(inspector.locator("#invite-link")).to_have_value(
            re.compile(r"/join/"), timeout=TIMEOUT_MS
        )
        applicant_url = await inspector.locator("#invite-link").input_value()

        # The applicant consents (the notice says the location is shared) and streams.
        applicant = await applicant_context.new_page()
        record_console(applicant, console, "applicant")
        await applicant.goto(applicant_url)
        await expect(applicant.locator("#consent-location")).to_contain_text("位置")
        await applicant.click("#consent-accept", timeout=TIMEOUT_MS)
        await expect(applicant.locator("#screen-live")).to_be_visible(timeout=TIMEOUT_MS)
        await expect(applicant.locator("#location-status")).to_have_attribute(
            "data-state", "sent", timeout=TIMEOUT_MS
        )

        # 1. Location: the inspector sees the fix and its distance to the site.
        await expect(inspector.locator("#location-facts")).to_be_visible(timeout=TIMEOUT_MS)
        expected = haversine_m(
            PHONE["latitude"], PHONE["longitude"], SITE["site_lat"], SITE["site_lon"]
        )
        distance = inspector.locator("#loc-distance")
        await expect(distance).to_have_text(re.compile(r"^\d+ m$"))
        assert float(await distance.get_attribute("data-metres") or "nan") == pytest.approx(
            expected, abs=0.1
        )
        await expect(inspector.locator("#loc-accuracy")).to_have_text("±15 m")
        await expect(inspector.locator("#loc-trail")).to_have_text(re.compile(r"^[1-9]\d*$"))

        # The dashboard lists it as live.
        board = await inspector_context.new_page()
        await board.goto(f"{live_server.base_url}/dashboard")
        await expect(
            board.locator(f'#dash-live li[data-inspection-id="{inspection_id}"]')
        ).to_be_visible(timeout=TIMEOUT_MS)
        await board.close()

        # 2. Liveness: a random code shown on the phone, answered, judged passed.
        await inspector.click("#btn-challenge-code")
        card = applicant.locator("#challenge-card")
        await expect(card).to_be_visible(timeout=TIMEOUT_MS)
        code = (await applicant.locator("#challenge-prompt").inner_text()).strip()
        assert re.fullmatch(r"\d{4}", code), code
        challenge = inspector.locator("#challenge-list li").first
        await expect(challenge).to_contain_text(code, timeout=TIMEOUT_MS)
        await applicant.click("#challenge-shown")
        await expect(challenge).to_have_attribute("data-state", "shown", timeout=TIMEOUT_MS)
        await challenge.locator('[data-role="note"]').fill("验证码清晰可见")
        await challenge.locator('[data-judge="passed"]').click()
        await expect(challenge).to_have_attribute("data-state", "passed", timeout=TIMEOUT_MS)
        await expect(card).to_be_hidden(timeout=TIMEOUT_MS)

        # 3. Two snapshots: the button, then the key S; each annotated.
        await wait_video_flowing(inspector)
        shots = inspector.locator("#snapshot-list li")
        await inspector.click("#btn-snapshot")
        await expect(shots).to_have_count(1, timeout=TIMEOUT_MS)
        await expect(inspector.locator("#btn-snapshot")).to_be_enabled(timeout=TIMEOUT_MS)
        await inspector.locator("#case-summary").click()  # focus on the page, not in a field
        await inspector.keyboard.press("s")
        await expect(shots).to_have_count(2, timeout=TIMEOUT_MS)
        snapshots = [
            {
                "id": await shots.nth(i).get_attribute("data-snapshot-id"),
                "sha256": await shots.nth(i).get_attribute("data-sha256"),
            }
            for i in range(2)
        ]
        latencies = await inspector.locator("body").get_attribute("data-snapshot-latencies")
        print(f"snapshot latency click → stored and chained (ms): {latencies}")
        originals = {}
        for shot in snapshots:
            response = await inspector_context.request.get(
                f"{live_server.base_url}/api/snapshots/{shot['id']}.png"
            )
            assert response.status == 200
            originals[shot["id"]] = await response.body()
            assert hashlib.sha256(originals[shot["id"]]).hexdigest() == shot["sha256"]
        for finding, shot in zip(FINDINGS, snapshots, strict=True):
            await _annotate(inspector, str(shot["id"]), finding)
        for shot in snapshots:  # annotating never touches the original
            response = await inspector_context.request.get(
                f"{live_server.base_url}/api/snapshots/{shot['id']}.png"
            )
            assert await response.body() == originals[shot["id"]]

        # 4. Checklist: every item, with the photos it wants; nothing missing afterwards.
        assert await _complete_checklist(inspector) > 0
        await expect(inspector.locator("#checklist-missing")).to_have_attribute(
            "data-missing", "0", timeout=TIMEOUT_MS
        )

        # 5. Conclusion: a reason is required, a confirmation, then the signed result.
        await inspector.check('#conclusion-form input[value="pass"]')
        await inspector.click("#btn-conclude")
        await expect(inspector.locator("#conclusion-error")).to_be_visible()
        await inspector.fill("#conclusion-reason", "现场与申报材料一致 准予通过")
        await inspector.click("#btn-conclude")
        await expect(inspector.locator("#conclusion-confirm")).to_be_visible()
        await inspector.click("#btn-conclusion-yes")
        result = inspector.locator("#conclusion-result")
        await expect(result).to_be_visible(timeout=TIMEOUT_MS)
        await expect(result).to_have_attribute("data-outcome", "pass")
        await expect(inspector.locator("#conclusion-outcome")).to_contain_text("通过")
        await expect(inspector.locator('#conclusion-facts [data-field="signature"]')).to_have_text(
            re.compile(r"^[A-Za-z0-9+/=]{40,}$")
        )
        # It ends the inspection for both sides.
        await expect(inspector.locator("body")).to_have_attribute(
            "data-state", "ended", timeout=TIMEOUT_MS
        )
        await expect(applicant.locator("#screen-ended")).to_be_visible(timeout=TIMEOUT_MS)

        # 6. Report: the PDF names the case, the conclusion and both snapshot hashes.
        pdf_url = await inspector.locator("#report-pdf").get_attribute("href")
        assert pdf_url == f"/api/inspections/{inspection_id}/report.pdf"
        pdf = await _fetch_report(inspector_context, live_server.base_url + pdf_url)
        assert pdf.startswith(b"%PDF")
        (tmp_path / "report.pdf").write_bytes(pdf)
        status, text = await _run(pdftotext, "-enc", "UTF-8", str(tmp_path / "report.pdf"), "-")
        assert status == 0, text
        flat = "".join(text.split())  # hashes may be wrapped over lines
        assert case_id in flat
        assert "通过" in text
        for shot in snapshots:
            assert str(shot["sha256"]) in flat, shot
        html_url = await inspector.locator("#report-html").get_attribute("href")
        assert html_url is not None
        html = (await _fetch_report(inspector_context, live_server.base_url + html_url)).decode()
        assert case_id in html
        # Each snapshot beside its marked-up copy, with the annotation's text.
        for n, finding in enumerate(FINDINGS, 1):
            assert f'alt="照片 {n}"' in html
            assert f'alt="照片 {n} 标注图 1"' in html
            assert f"标注文字：{finding}" in html
            assert finding.replace(" ", "") in flat
        for shot in snapshots:  # the report never touches the original either
            response = await inspector_context.request.get(
                f"{live_server.base_url}/api/snapshots/{shot['id']}.png"
            )
            assert await response.body() == originals[shot["id"]]
    finally:
        print("\n".join(console))  # shown by pytest when the test fails
        await applicant_context.close()
        await inspector_context.close()

    # The chain: snapshot entries carry the PNG's hash; the location, challenge and conclusion
    # are there; `takan verify` passes and lists the snapshots.
    _, entries = await live_server.services.archive.chain_page(case_id, 0, 100_000)
    kinds = [entry.kind for entry in entries]
    for kind in ("location", "challenge_issued", "challenge_shown", "challenge_judged"):
        assert kind in kinds, kind
    for kind in ("snapshot", "annotation", "checklist_mark", "conclusion", "report"):
        assert kind in kinds, kind
    chained = {e.body["snapshot_id"]: e.body["sha256"] for e in entries if e.kind == "snapshot"}
    assert chained == {str(s["id"]): s["sha256"] for s in snapshots}
    # The marked-up copies: made when each annotation was saved (before the conclusion), derived
    # from the original as chained, the original's pixels with the marks drawn on them.
    rendered = [e for e in entries if e.kind == "annotation_rendered"]
    conclusion_seq = kinds.index("conclusion")
    assert [e.body["snapshot_id"] for e in rendered] == [str(s["id"]) for s in snapshots]
    for entry in rendered:
        assert entry.seq < conclusion_seq
        assert entry.body["original_sha256"] == chained[entry.body["snapshot_id"]]
        copy = await live_server.services.archive.read_object(entry.body["key"])
        assert hashlib.sha256(copy).hexdigest() == entry.body["sha256"]
        original = originals[entry.body["snapshot_id"]]
        drawn, photo = (
            cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            for data in (copy, original)
        )
        assert drawn is not None
        assert photo is not None
        assert drawn.shape == photo.shape
        changed = np.count_nonzero(np.any(drawn != photo, axis=2))
        assert 0.002 < changed / (drawn.shape[0] * drawn.shape[1]) < 0.5, changed
    await live_server.services.archive.drain()
    code_, out = await _run(
        sys.executable, "-m", "server.cli", "verify", case_id, "--data", str(live_server.data_dir)
    )
    assert code_ == 0, out
    for shot in snapshots:
        assert str(shot["id"]) in out, out


async def test_denied_location_is_shown_and_an_ended_inspection_is_concluded_from_the_dashboard(
    browser: Browser, live_server: LiveServer
) -> None:
    invite = await live_server.new_inspection("inspector1")
    inspector_context = await browser.new_context(
        viewport={"width": 1400, "height": 1000}, permissions=["microphone"], locale="zh-CN"
    )
    applicant_context = await browser.new_context(  # no geolocation permission
        viewport={"width": 390, "height": 844},
        is_mobile=True,
        has_touch=True,
        permissions=["camera", "microphone"],
        locale="zh-CN",
    )
    console: list[str] = []
    try:
        inspector = await inspector_context.new_page()
        record_console(inspector, console, "inspector")
        await login(inspector, live_server, "inspector1")
        page_url = f"{live_server.base_url}/inspect/{invite['inspection_id']}"
        await inspector.goto(page_url)
        await expect(inspector.locator("body")).to_have_attribute(
            "data-conn", "joined", timeout=TIMEOUT_MS
        )
        applicant = await applicant_context.new_page()
        record_console(applicant, console, "applicant")
        await applicant.goto(invite["applicant_url"])
        await applicant.click("#consent-accept", timeout=TIMEOUT_MS)
        status = applicant.locator("#location-status")
        await expect(status).to_have_attribute("data-state", "denied", timeout=TIMEOUT_MS)
        await expect(status).to_contain_text("未获得位置权限")
        await expect(inspector.locator("#location-denied")).to_be_visible(timeout=TIMEOUT_MS)
        await expect(inspector.locator("#location-denied")).to_contain_text("permission denied")

        # Ended without a conclusion: it waits on the dashboard, and the page still concludes it.
        await inspector.click("#btn-end")
        await inspector.click("#btn-end-confirm")
        await expect(inspector.locator("body")).to_have_attribute(
            "data-state", "ended", timeout=TIMEOUT_MS
        )
        await expect(inspector.locator("#btn-snapshot")).to_be_disabled()
        await inspector.goto(f"{live_server.base_url}/dashboard")
        waiting = inspector.locator(
            f'#dash-awaiting li[data-inspection-id="{invite["inspection_id"]}"]'
        )
        await expect(waiting).to_be_visible(timeout=TIMEOUT_MS)
        await waiting.locator("a").click()
        await inspector.wait_for_url(page_url, timeout=TIMEOUT_MS)
        await inspector.check('#conclusion-form input[value="correction"]')
        await inspector.fill("#conclusion-reason", "缺少消防验收材料 请补正")
        await inspector.click("#btn-conclude")
        await inspector.click("#btn-conclusion-yes")
        await expect(inspector.locator("#conclusion-result")).to_have_attribute(
            "data-outcome", "correction", timeout=TIMEOUT_MS
        )
        await expect(inspector.locator("#conclusion-outcome")).to_contain_text("需补正")
    finally:
        print("\n".join(console))
        await applicant_context.close()
        await inspector_context.close()

    _, entries = await live_server.services.archive.chain_page(invite["case_id"], 0, 100_000)
    denied = [e.body for e in entries if e.kind == "location_denied"]
    assert [d["reason"] for d in denied] == ["permission denied"]
    assert not [e for e in entries if e.kind == "location"]
    [conclusion] = [e.body for e in entries if e.kind == "conclusion"]
    assert conclusion["outcome"] == "correction"
