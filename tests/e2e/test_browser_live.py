"""The pages in a real Chromium against a real server: an inspector at a desktop, an applicant on a
phone-sized page with the fake camera, talking through the server's relay.

Waits are generous and poll what a user would see; nothing asserts on timing.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from server.live.registry import LiveInspection, Participant
from tests.conftest import LiveServer
from tests.e2e.helpers import TIMEOUT_MS, login, record_console, wait_video_flowing

# The media path, once: what it stores (joins, consent) runs on both engines in test_signalling.
pytestmark = [pytest.mark.single_engine, pytest.mark.browser]


@dataclass
class Session:
    """The two sides of one live inspection."""

    inspection: dict[str, Any]
    inspector_context: BrowserContext
    applicant_context: BrowserContext
    inspector: Page
    applicant: Page
    console: list[str] = field(default_factory=list)


async def _inspector_context(browser: Browser) -> BrowserContext:
    return await browser.new_context(
        viewport={"width": 1280, "height": 900}, permissions=["microphone"], locale="zh-CN"
    )


async def _applicant_context(browser: Browser) -> BrowserContext:
    return await browser.new_context(
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        permissions=["camera", "microphone"],
        locale="zh-CN",
    )


async def _open_applicant(context: BrowserContext, url: str, sink: list[str]) -> Page:
    page = await context.new_page()
    record_console(page, sink, "applicant")
    await page.goto(url)
    return page


@pytest.fixture
async def session(browser: Browser, live_server: LiveServer) -> AsyncIterator[Session]:
    """Inspector logged in through /login on the live page, applicant consented and streaming."""
    inspection = await live_server.new_inspection("inspector1")
    inspector_context = await _inspector_context(browser)
    applicant_context = await _applicant_context(browser)
    console: list[str] = []
    try:
        inspector = await inspector_context.new_page()
        record_console(inspector, console, "inspector")
        await login(inspector, live_server, "inspector1")
        await inspector.goto(f"{live_server.base_url}/inspect/{inspection['inspection_id']}")
        await expect(inspector.locator("#short-code")).to_have_text(
            inspection["short_code"], timeout=TIMEOUT_MS
        )
        await expect(inspector.locator("body")).to_have_attribute(
            "data-conn", "joined", timeout=TIMEOUT_MS
        )

        applicant = await _open_applicant(applicant_context, inspection["applicant_url"], console)
        await expect(applicant.locator("#screen-consent")).to_be_visible(timeout=TIMEOUT_MS)
        await expect(applicant.locator("#consent-case-id")).to_have_text(inspection["case_id"])
        await expect(applicant.locator("#consent-inspector")).to_have_text("inspector1")
        await expect(applicant.locator("#consent-recorded")).to_contain_text("全程录像留痕")
        await applicant.click("#consent-accept")
        await expect(applicant.locator("#screen-live")).to_be_visible(timeout=TIMEOUT_MS)

        yield Session(
            inspection, inspector_context, applicant_context, inspector, applicant, console
        )
    finally:
        print("\n".join(console))  # shown by pytest when the test fails
        await applicant_context.close()
        await inspector_context.close()


async def test_inspector_sees_applicant_video_chats_and_switches_camera(session: Session) -> None:
    inspector, applicant = session.inspector, session.applicant

    await wait_video_flowing(inspector)
    await expect(inspector.locator("body")).to_have_attribute(
        "data-media", "connected", timeout=TIMEOUT_MS
    )
    await expect(applicant.locator("body")).to_have_attribute(
        "data-media", "connected", timeout=TIMEOUT_MS
    )
    # Both sides measure their own side of the stream.
    await expect(inspector.locator('#stats-mine [data-stat="resolution"]')).to_have_text(
        re.compile(r"\d+\u00d7\d+"), timeout=TIMEOUT_MS
    )
    await expect(inspector.locator('#stats-peer [data-stat="bitrate"]')).to_have_text(
        re.compile(r"\d+ kbps"), timeout=TIMEOUT_MS
    )

    await inspector.fill("#chat-input", "请对准北侧围墙")
    await inspector.click("#chat-send")
    await expect(applicant.locator("#chat-log")).to_contain_text(
        "请对准北侧围墙", timeout=TIMEOUT_MS
    )
    await applicant.fill("#chat-input", "好的马上过去")
    await applicant.click("#chat-send")
    await expect(inspector.locator("#chat-log")).to_contain_text("好的马上过去", timeout=TIMEOUT_MS)
    # The sender's own line is confirmed by the server's echo, once.
    await expect(inspector.locator('#chat-log [data-pending="false"]')).to_have_count(
        1, timeout=TIMEOUT_MS
    )

    await inspector.click("#btn-switch-camera")
    toast = applicant.locator('#control-toast[data-action="switch_camera"]')
    await expect(toast).to_have_count(1, timeout=TIMEOUT_MS)
    result = inspector.locator(
        '#control-results li[data-result="true"][data-action="switch_camera"]'
    )
    await expect(result).to_have_count(1, timeout=TIMEOUT_MS)
    # The fake camera has no second camera: the page must say so, not pretend.
    assert await result.get_attribute("data-ok") in ("true", "false")
    assert (await result.inner_text()).strip()


async def test_reloaded_applicant_page_resumes_without_consent(session: Session) -> None:
    inspector, applicant = session.inspector, session.applicant
    await wait_video_flowing(inspector)

    await applicant.reload()
    await expect(applicant.locator("#screen-live")).to_be_visible(timeout=TIMEOUT_MS)
    await expect(applicant.locator("body")).to_have_attribute("data-resumed", "true")
    assert await applicant.locator("body").get_attribute("data-consent-shown") is None
    await expect(applicant.locator("#stats-own")).not_to_have_attribute(
        "data-frames", re.compile(r"^0?$"), timeout=TIMEOUT_MS
    )
    # The inspector did nothing: the picture comes back on the peer connection it already had.
    await wait_video_flowing(inspector)
    await expect(inspector.locator("body")).to_have_attribute("data-media", "connected")


async def test_applicant_link_after_the_end_says_it_is_over(
    session: Session, live_server: LiveServer
) -> None:
    inspector, applicant = session.inspector, session.applicant
    await wait_video_flowing(inspector)

    await inspector.click("#btn-end")
    await inspector.click("#btn-end-confirm")
    await expect(inspector.locator("body")).to_have_attribute(
        "data-state", "ended", timeout=TIMEOUT_MS
    )
    await expect(inspector.locator("#ended-banner")).to_be_visible()
    await expect(applicant.locator("#screen-ended")).to_be_visible(timeout=TIMEOUT_MS)

    # The applicant's page offers the signed receipt: a download and its QR code.
    await expect(applicant.locator("#receipt")).to_have_attribute(
        "data-state", "shown", timeout=TIMEOUT_MS
    )
    await expect(applicant.locator("#receipt-qr")).to_be_visible()
    await expect(applicant.locator("#receipt-qr-holds")).to_have_text("二维码中是回执全文。")
    async with applicant.expect_download() as download:
        await applicant.click("#receipt-download")
    kept = await asyncio.to_thread(Path(await (await download.value).path()).read_bytes)
    status, served = await live_server.request(
        "GET", f"/api/inspections/{session.inspection['inspection_id']}/receipt", "auditor1"
    )
    assert status == 200, served
    assert json.loads(kept) == served
    assert hashlib.sha256(kept).hexdigest() in (
        await applicant.locator("#receipt-sha256").inner_text()
    )

    again = await _open_applicant(
        session.applicant_context, session.inspection["applicant_url"], session.console
    )
    await expect(again.locator("body")).to_have_attribute(
        "data-state", re.compile(r"^(ended|invalid)$"), timeout=TIMEOUT_MS
    )
    state = await again.locator("body").get_attribute("data-state")
    await expect(again.locator(f"#screen-{state}")).to_be_visible()
    await expect(again.locator("#screen-consent")).to_be_hidden()
    assert await again.locator("body").get_attribute("data-consent-shown") is None


async def test_login_page_names_a_wrong_password_and_the_attempts_left(
    browser: Browser, live_server: LiveServer
) -> None:
    context = await _inspector_context(browser)
    try:
        page = await context.new_page()
        await page.goto(f"{live_server.base_url}/login")
        await page.fill("#username", "inspector1")
        await page.fill("#password", "not-the-password")
        await page.click("#login-submit")
        await expect(page.locator("#login-error")).to_have_text(
            "用户名或密码错误\uff0c还可尝试 9 次", timeout=TIMEOUT_MS
        )
        await expect(page).to_have_url(re.compile(r"/login"))
        await page.click("#lang-toggle")
        await page.click("#login-submit")
        await expect(page.locator("#login-error")).to_have_text(
            "Wrong username or password, 8 attempts left", timeout=TIMEOUT_MS
        )
    finally:
        await context.close()


async def test_cases_page_creates_a_case_and_starts_an_inspection(
    browser: Browser, live_server: LiveServer
) -> None:
    context = await _inspector_context(browser)
    try:
        page = await context.new_page()
        await login(page, live_server, "inspector1")
        await page.fill("#case-id", "WEB-0001")
        await page.fill("#case-title", "仓库扩建")
        await page.fill("#case-address", "宁波市鄞州区 1 号")
        await page.fill("#case-applicant-name", "李四")
        await page.fill("#case-applicant-phone", "13900000000")
        await page.click("#create-submit")
        row = page.locator('#case-list li[data-case-id="WEB-0001"]')
        await expect(row).to_contain_text("仓库扩建", timeout=TIMEOUT_MS)

        await page.click("#create-submit")  # the form is empty again: refused in the page
        await expect(page.locator("#create-error")).to_be_visible()

        await row.locator("button[data-case-id]").click()
        await page.wait_for_url(re.compile(r"/inspect/[^/]+$"), timeout=TIMEOUT_MS)
        await expect(page.locator("#short-code")).to_have_text(re.compile(r"^\d{6}$"))
        await expect(page.locator("#invite-link")).to_have_value(re.compile(r"/join/"))
        qr_width = await page.locator("#qr").evaluate(
            """img => img.complete
                ? img.naturalWidth
                : new Promise(ok => { img.onload = () => ok(img.naturalWidth); })"""
        )
        assert qr_width > 0
    finally:
        await context.close()


async def test_short_code_page_leads_to_the_consent_screen(
    browser: Browser, live_server: LiveServer
) -> None:
    inspection = await live_server.new_inspection("inspector1")
    context = await _applicant_context(browser)
    try:
        page = await context.new_page()
        await page.goto(f"{live_server.base_url}/j")
        wrong = "000000" if inspection["short_code"] != "000000" else "111111"
        await page.fill("#code-input", wrong)
        await page.click("#code-submit")
        await expect(page.locator("#code-error")).to_have_text(
            "踏勘码错误或已失效\uff0c还可尝试 9 次", timeout=TIMEOUT_MS
        )
        await page.fill("#code-input", inspection["short_code"])
        await page.click("#code-submit")
        await page.wait_for_url(re.compile(r"/join/"), timeout=TIMEOUT_MS)
        await expect(page.locator("#screen-consent")).to_be_visible(timeout=TIMEOUT_MS)
        await expect(page.locator("#consent-case-id")).to_have_text(inspection["case_id"])
    finally:
        await context.close()


async def test_applicant_page_switches_to_english(
    browser: Browser, live_server: LiveServer
) -> None:
    inspection = await live_server.new_inspection("inspector1")
    context = await _applicant_context(browser)
    try:
        page = await context.new_page()
        await page.goto(inspection["applicant_url"] + "?lang=en")
        await expect(page.locator("#consent-accept")).to_have_text(
            "Agree and start", timeout=TIMEOUT_MS
        )
        await page.click("#lang-toggle")
        await expect(page.locator("#consent-accept")).to_have_text("同意并开始")
        await expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    finally:
        await context.close()


async def _flowing_inspector(
    session: Session, live_server: LiveServer
) -> tuple[LiveInspection, Participant]:
    """Once the picture plays: the live inspection and the inspector page's participant in it."""
    await wait_video_flowing(session.inspector)
    live = live_server.services.live.get(session.inspection["inspection_id"])
    assert live is not None
    return live, next(p for p in live.participants.values() if p.role == "inspector")


async def test_inspector_page_rejoins_by_itself_after_its_socket_drops(
    session: Session, live_server: LiveServer
) -> None:
    inspector = session.inspector
    live, dropped = await _flowing_inspector(session, live_server)

    await dropped.socket.close()  # as a network drop looks to the page: the socket just closes

    def rejoined() -> bool:
        current = [p for p in live.participants.values() if p.role == "inspector"]
        return bool(current) and current[0] is not dropped and not current[0].socket.closed

    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while not rejoined():
        assert time.monotonic() < deadline, "the inspector page did not join again"
        await asyncio.sleep(0.2)
    await expect(inspector.locator("body")).to_have_attribute(
        "data-conn", "joined", timeout=TIMEOUT_MS
    )
    # A new offer went out by itself and the picture flows on the new peer connection.
    await wait_video_flowing(inspector)
    await expect(inspector.locator("body")).to_have_attribute(
        "data-media", "connected", timeout=TIMEOUT_MS
    )


async def test_second_inspector_tab_pauses_the_first_instead_of_fighting(
    session: Session, live_server: LiveServer
) -> None:
    first = session.inspector
    await wait_video_flowing(first)

    second = await session.inspector_context.new_page()
    record_console(second, session.console, "inspector-2")
    await second.goto(f"{live_server.base_url}/inspect/{session.inspection['inspection_id']}")
    await expect(first.locator("#replaced-banner")).to_be_visible(timeout=TIMEOUT_MS)
    await wait_video_flowing(second)
    await expect(second.locator("#replaced-banner")).to_be_hidden()

    await first.click("#btn-take-over")
    await expect(second.locator("#replaced-banner")).to_be_visible(timeout=TIMEOUT_MS)
    await wait_video_flowing(first)


async def test_forged_applicant_link_says_link_invalid(
    browser: Browser, live_server: LiveServer
) -> None:
    inspection = await live_server.new_inspection("inspector1")
    forged = inspection["applicant_url"][:-4] + "AAAA"
    context = await _applicant_context(browser)
    try:
        page = await context.new_page()
        await page.goto(forged)
        await expect(page.locator("#screen-invalid")).to_be_visible(timeout=TIMEOUT_MS)
        await expect(page.locator("#invalid-message")).to_contain_text("链接无效或已过期")
        await expect(page.locator("#screen-consent")).to_be_hidden()
    finally:
        await context.close()


async def test_login_page_says_when_to_retry_after_too_many_attempts(
    browser: Browser, live_server: LiveServer
) -> None:
    for _ in range(live_server.services.settings.login_attempts_per_minute + 1):
        status, _body = await live_server.request(
            "POST", "/api/login", json={"username": "inspector1", "password": "wrong"}
        )
        if status == 429:
            break
    assert status == 429
    context = await _inspector_context(browser)
    try:
        page = await context.new_page()
        await page.goto(f"{live_server.base_url}/login")
        await page.fill("#username", "inspector1")
        await page.fill("#password", live_server.passwords["inspector1"])
        await page.click("#login-submit")
        await expect(page.locator("#login-error")).to_have_text(
            re.compile(r"尝试次数过多.请 \d+ 秒后再试"), timeout=TIMEOUT_MS
        )
        await expect(page.locator("#login-submit")).to_be_disabled()
    finally:
        await context.close()


async def test_inspector_page_renegotiates_by_itself_when_its_media_path_dies(
    session: Session, live_server: LiveServer
) -> None:
    inspector = session.inspector
    _, participant = await _flowing_inspector(session, live_server)

    await participant.close_peer()  # the socket stays up; only ICE/DTLS goes silent

    await expect(inspector.locator("body")).not_to_have_attribute(
        "data-media", "connected", timeout=TIMEOUT_MS
    )
    await expect(inspector.locator("body")).to_have_attribute(
        "data-media", "connected", timeout=TIMEOUT_MS
    )
    assert participant.peer is not None  # a new offer was answered on the same socket
    await wait_video_flowing(inspector)
