# ruff: noqa: RUF001 - Chinese text uses full-width punctuation on purpose
"""What the inspector sees of the applicant's presence, at a 1440x900 desktop, with the applicant
on a phone-sized page (issue 19 items 1 and 6): the applicant gone within 3 s, 视频已连接 only
while frames flow, nobody 在线 after the end; the liveness code read aloud or written on paper,
judged with buttons beside the video.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, FloatRect, Page, ViewportSize, expect

from tests.conftest import LiveServer
from tests.e2e.helpers import TIMEOUT_MS, login, record_console, wait_video_flowing
from tests.e2e.test_browser_live import _applicant_context, _open_applicant

# The media path, once: what it stores (joins, consent) runs on both engines in test_signalling.
pytestmark = [pytest.mark.single_engine, pytest.mark.browser]

VIEWPORT: ViewportSize = {"width": 1440, "height": 900}
NOTICE_MS = 3_000


@dataclass
class Desk:
    """An inspector at 1440x900 on the live page of a new inspection nobody else has joined."""

    server: LiveServer
    browser: Browser
    inspection: dict[str, Any]
    inspector: Page
    console: list[str] = field(default_factory=list)
    contexts: list[BrowserContext] = field(default_factory=list)

    async def applicant_streaming(self, located: bool = False) -> Page:
        context = await _applicant_context(self.browser)
        self.contexts.append(context)
        if located:  # the phone shares its position: the inspector's site card is at its tallest
            await context.grant_permissions(["geolocation"])
            await context.set_geolocation({"latitude": 30.2745, "longitude": 120.1555})
        page = await _open_applicant(context, self.inspection["applicant_url"], self.console)
        await page.click("#consent-accept", timeout=TIMEOUT_MS)
        await expect(page.locator("#screen-live")).to_be_visible(timeout=TIMEOUT_MS)
        await wait_video_flowing(self.inspector)
        return page


@pytest.fixture
async def desk(browser: Browser, live_server: LiveServer) -> AsyncIterator[Desk]:
    inspection = await live_server.new_inspection("inspector1")
    context = await browser.new_context(
        viewport=VIEWPORT, permissions=["microphone"], locale="zh-CN"
    )
    desk = Desk(live_server, browser, inspection, await context.new_page(), contexts=[context])
    try:
        record_console(desk.inspector, desk.console, "inspector")
        await login(desk.inspector, live_server, "inspector1")
        await desk.inspector.goto(f"{live_server.base_url}/inspect/{inspection['inspection_id']}")
        await expect(desk.inspector.locator("body")).to_have_attribute(
            "data-conn", "joined", timeout=TIMEOUT_MS
        )
        yield desk
    finally:
        print("\n".join(desk.console))  # shown by pytest when the test fails
        for each in desk.contexts:
            await each.close()


async def test_closed_applicant_page_shows_offline_and_the_stopped_picture_within_3_s(
    desk: Desk,
) -> None:
    inspector = desk.inspector
    status = inspector.locator("#media-status")
    # Nobody has joined: the page waits for the applicant, it does not say the video is on.
    await expect(inspector.locator("body")).to_have_attribute(
        "data-media", "connected", timeout=TIMEOUT_MS
    )
    await expect(status).to_have_text("等待申请人加入…")

    applicant_page = await desk.applicant_streaming()
    await expect(status).to_have_text("视频已连接", timeout=TIMEOUT_MS)
    applicant = inspector.locator('#presence li[data-role="applicant"]')
    await expect(applicant).to_have_attribute("data-connected", "true")
    banner = inspector.locator("#presence-banner")
    await expect(banner).to_be_hidden()

    closed = time.monotonic()
    await applicant_page.close()
    await expect(banner).to_be_visible(timeout=NOTICE_MS)
    await expect(applicant).to_have_attribute("data-connected", "false", timeout=NOTICE_MS)
    noticed_s = time.monotonic() - closed
    assert noticed_s < NOTICE_MS / 1000, f"shown after {noticed_s:.1f} s"
    await expect(banner).to_contain_text("申请人已离线")
    await expect(applicant).to_contain_text("离线")
    await expect(status).not_to_have_text("视频已连接")
    # The banner counts the seconds since the picture stopped.
    await expect(banner).to_contain_text("画面已中断 3 秒", timeout=TIMEOUT_MS)

    # A snapshot now says why in the page's language, not the server's English.
    await inspector.click("#btn-snapshot")
    snapshot_status = inspector.locator("#snapshot-status")
    await expect(snapshot_status).to_have_text(
        "拍照失败：没有收到申请人的画面（申请人离线或摄像头已停止）", timeout=TIMEOUT_MS
    )

    await inspector.click("#btn-end")
    await inspector.click("#btn-end-confirm")
    await expect(inspector.locator("#ended-banner")).to_be_visible(timeout=TIMEOUT_MS)
    await expect(inspector.locator('#presence li[data-connected="true"]')).to_have_count(0)
    await expect(inspector.locator("#presence")).not_to_contain_text("在线")
    await expect(inspector.locator("#presence li")).to_have_count(2)  # both listed, offline


async def test_liveness_code_is_read_aloud_or_shown_on_paper_and_judged_beside_the_video(
    desk: Desk,
) -> None:
    inspector = desk.inspector
    applicant = await desk.applicant_streaming(located=True)
    await expect(inspector.locator("#location-facts")).to_be_visible(timeout=TIMEOUT_MS)

    await inspector.click("#btn-challenge-code")
    lead = applicant.locator("#challenge-lead")
    await expect(lead).to_have_text(
        "请大声读出下方验证码，或把它写在纸上，对准镜头展示：", timeout=TIMEOUT_MS
    )
    await expect(applicant.locator("#challenge-prompt")).to_have_text(re.compile(r"^\d{4}$"))
    await applicant.click("#challenge-shown")  # 我已读出或展示
    await expect(applicant.locator("#challenge-shown")).to_be_hidden(timeout=TIMEOUT_MS)

    passed = inspector.locator('#challenge-list [data-judge="passed"]')
    failed = inspector.locator('#challenge-list [data-judge="failed"]')
    await expect(passed).to_have_text("通过", timeout=TIMEOUT_MS)
    await expect(failed).to_have_text("不通过")
    # Visible beside the video as the page opened: no scrolling, inside the 1440x900 window.
    assert await inspector.evaluate("window.scrollY") == 0
    video = await box(inspector, "#remote-video")
    for button in (passed, failed):
        judge = await button.bounding_box()
        assert judge is not None
        assert judge["x"] >= 0, judge
        assert judge["y"] >= 0, judge
        assert judge["x"] + judge["width"] <= VIEWPORT["width"], judge
        assert judge["y"] + judge["height"] <= VIEWPORT["height"], judge
        assert judge["x"] >= video["x"] + video["width"], (judge, video)  # beside, not below
    assert video["y"] + video["height"] <= VIEWPORT["height"], video
    await passed.click()
    await expect(inspector.locator('#challenge-list li[data-state="passed"]')).to_have_count(
        1, timeout=TIMEOUT_MS
    )


async def box(page: Page, selector: str) -> FloatRect:
    found = await page.locator(selector).bounding_box()
    assert found is not None, f"{selector} is not shown"
    return found
