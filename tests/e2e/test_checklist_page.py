# ruff: noqa: RUF001 - Chinese text uses full-width punctuation on purpose
"""The inspector's checklist in Chromium: per item a verdict (符合 / 不符合 / 不适用), a note and
the photos the inspector picks; the counts; a 通过 refused naming the items still open, with
nothing the inspector typed lost; then the pass, signed."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Browser, Locator, Page, ViewportSize, expect

from tests.conftest import LiveServer
from tests.e2e.helpers import TIMEOUT_MS, login, record_console
from tests.integration.evidence_helpers import chain, publishing
from tests.integration.test_report import snapshot_when_video_flows

pytestmark = pytest.mark.browser

REASON = "现场与申报材料一致，准予通过"


def row(page: Page, item_id: str) -> Locator:
    return page.locator(f'#checklist li[data-item-id="{item_id}"]')


async def pick(page: Page, item_id: str, snapshot_ids: list[str]) -> None:
    """Tick the item's photos one by one, each saved before the next."""
    item = row(page, item_id)
    for n, snapshot_id in enumerate(snapshot_ids, 1):
        await item.locator(f'input[data-pick="{snapshot_id}"]').check()
        await expect(item).to_have_attribute(
            "data-picked", ",".join(snapshot_ids[:n]), timeout=TIMEOUT_MS
        )


async def judge(page: Page, item_id: str, verdict: str) -> None:
    item = row(page, item_id)
    await item.locator(f'input[data-verdict="{verdict}"]').check()
    await expect(item).to_have_attribute("data-verdict", verdict, timeout=TIMEOUT_MS)


async def note(page: Page, item_id: str, text: str) -> None:
    item = row(page, item_id)
    await item.locator('[data-role="note"]').fill(text)
    await item.locator('[data-role="note"]').press("Tab")
    await expect(item).to_have_attribute("data-note", text, timeout=TIMEOUT_MS)


async def sign(page: Page, outcome: str) -> None:
    await page.check(f'#conclusion-form input[value="{outcome}"]')
    await page.click("#btn-conclude")
    await expect(page.locator("#conclusion-confirm")).to_be_visible()
    await page.click("#btn-conclusion-yes")


async def three_snapshots(server: LiveServer) -> tuple[dict[str, Any], list[str]]:
    """A building inspection (5 items) with three snapshots of the applicant's video."""
    case = await server.new_case(case_type="建设工程")
    status, invite = await server.request(
        "POST", f"/api/cases/{case['case_id']}/inspections", "inspector1"
    )
    assert status == 201, invite
    invite = {**invite, "case_id": case["case_id"]}
    async with publishing(server, invite, 320, 240):
        shots = [
            (await snapshot_when_video_flows(server, invite["inspection_id"]))["snapshot_id"]
            for _ in range(3)
        ]
    return invite, shots


@pytest.mark.parametrize(
    "viewport",
    [ViewportSize(width=1440, height=900), ViewportSize(width=1024, height=768)],
    ids=["1440x900", "1024x768"],
)
async def test_inspector_gives_verdicts_notes_and_photos_per_item_and_a_pass_waits_for_all(
    browser: Browser, live_server: LiveServer, viewport: ViewportSize
) -> None:
    invite, (one, two, three) = await three_snapshots(live_server)
    inspection_id = invite["inspection_id"]
    context = await browser.new_context(viewport=viewport, locale="zh-CN")
    console: list[str] = []
    try:
        page = await context.new_page()
        record_console(page, console)
        await login(page, live_server, "inspector1")
        await page.goto(f"{live_server.base_url}/inspect/{inspection_id}")
        await expect(page.locator("#checklist li[data-item-id]")).to_have_count(
            5, timeout=TIMEOUT_MS
        )
        await expect(page.locator("#checklist-counts")).to_have_text(
            "已核查 0/5 · 符合 0 · 不符合 0 · 不适用 0"
        )
        # Nothing chosen yet: 未核查; no strike-through tick, no "attach the latest photo".
        await expect(row(page, "site_sign").locator('[data-role="verdict"]')).to_have_text("未核查")
        await expect(
            page.locator('#checklist input[type="checkbox"]:not([data-pick])')
        ).to_have_count(0)
        await expect(page.get_by_text("附上最新照片")).to_have_count(0)
        # Every item offers the three snapshots as thumbnails to tick.
        await expect(row(page, "boundary").locator("label.photo-pick img")).to_have_count(3)
        await expect(row(page, "boundary").locator("label.photo-pick")).to_contain_text(
            ["照片 1", "照片 2", "照片 3"]
        )

        # Different items, different photos.
        await pick(page, "site_sign", [one])
        await note(page, "site_sign", "公示牌清晰，许可证号一致")
        await judge(page, "site_sign", "pass")
        await pick(page, "boundary", [two])
        await judge(page, "boundary", "pass")
        await pick(page, "structure", [one, three])
        await judge(page, "structure", "pass")
        await note(page, "safety", "东侧围挡缺失")
        await judge(page, "safety", "fail")
        await expect(page.locator("#checklist-counts")).to_have_text(
            "已核查 4/5 · 符合 3 · 不符合 1 · 不适用 0"
        )
        await expect(row(page, "safety").locator('[data-role="verdict"]')).to_have_text("不符合")

        # 通过 with fire_access unmarked and safety 不符合: refused, both named, in Chinese, at the
        # form and at each item; the reason and the notes stay as typed.
        await page.fill("#conclusion-reason", REASON)
        await sign(page, "pass")
        error = page.locator("#conclusion-error")
        await expect(error).to_be_visible(timeout=TIMEOUT_MS)
        await expect(error).to_contain_text('不能签署"通过"')
        await expect(error).to_contain_text("消防通道畅通，灭火器材配置到位（必查项，尚未核查）")
        await expect(error).to_contain_text("围挡、安全网等安全防护措施到位（已判定不符合）")
        await expect(error).not_to_contain_text("主体结构")
        await expect(row(page, "fire_access")).to_have_attribute("data-blocked", "unmarked")
        await expect(row(page, "fire_access").locator('[data-role="item-error"]')).to_have_text(
            "必查项，尚未核查"
        )
        await expect(row(page, "safety").locator('[data-role="item-error"]')).to_have_text(
            "已判定不符合"
        )
        await expect(page.locator("#conclusion-reason")).to_have_value(REASON)
        await expect(row(page, "safety").locator('[data-role="note"]')).to_have_value(
            "东侧围挡缺失"
        )
        await expect(page.locator("#conclusion-result")).to_be_hidden()
        # In English the page says the same, at the form and at the items.
        await page.click("#lang-toggle")
        await expect(error).to_contain_text('Cannot sign "Pass" yet')
        await expect(error).to_contain_text(
            "消防通道畅通，灭火器材配置到位 (required, not checked yet)"
        )
        await expect(error).to_contain_text("围挡、安全网等安全防护措施到位 (marked non-compliant)")
        await expect(row(page, "fire_access").locator('[data-role="item-error"]')).to_have_text(
            "required, not checked yet"
        )
        await expect(page.locator("#checklist-counts")).to_have_text(
            "Checked 4/5 · compliant 3 · non-compliant 1 · not applicable 0"
        )
        await expect(page.locator("#conclusion-reason")).to_have_value(REASON)
        await page.click("#lang-toggle")
        await expect(error).to_contain_text('不能签署"通过"')

        # The inspector settles both; the item's message goes once it is saved.
        await judge(page, "fire_access", "not_applicable")
        await expect(row(page, "fire_access").locator('[data-role="item-error"]')).to_be_hidden()
        await note(page, "safety", "围挡已补齐")
        await pick(page, "safety", [two])
        await judge(page, "safety", "pass")
        await expect(page.locator("#checklist-counts")).to_have_text(
            "已核查 5/5 · 符合 4 · 不符合 0 · 不适用 1"
        )
        await expect(page.locator("#checklist-missing")).to_have_attribute("data-missing", "0")
        # Nothing overflows sideways at this size.
        assert await page.evaluate(
            "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
        )
        await expect(page.locator("#conclusion-reason")).to_have_value(REASON)
        await sign(page, "pass")
        result = page.locator("#conclusion-result")
        await expect(result).to_be_visible(timeout=TIMEOUT_MS)
        await expect(result).to_have_attribute("data-outcome", "pass")
        await expect(page.locator('#checklist input[data-verdict="pass"]').first).to_be_disabled()
    finally:
        print("\n".join(console))
        await context.close()

    # What was saved: each item its own photos, verdict and note, chained.
    status, checklist = await live_server.request(
        "GET", f"/api/inspections/{inspection_id}/checklist", "auditor1"
    )
    assert status == 200, checklist
    saved = {i["item_id"]: (i["verdict"], i["note"], i["photos"]) for i in checklist["items"]}
    assert saved == {
        "site_sign": ("pass", "公示牌清晰，许可证号一致", [one]),
        "boundary": ("pass", "", [two]),
        "structure": ("pass", "", [one, three]),
        "fire_access": ("not_applicable", "", []),
        "safety": ("pass", "围挡已补齐", [two]),
    }
    entries = await chain(live_server, invite["case_id"])
    last = {e.body["item_id"]: e.body for e in entries if e.kind == "checklist_mark"}
    assert {k: (v["verdict"], v["snapshot_ids"]) for k, v in last.items()} == {
        k: (verdict, photos) for k, (verdict, _, photos) in saved.items()
    }
    assert [e.body["outcome"] for e in entries if e.kind == "conclusion"] == ["pass"]
