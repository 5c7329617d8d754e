"""The inspector's page for an inspection that is not theirs to run: the error alone, no live
page drawn beneath it and no microphone asked for."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, expect

from tests.conftest import LiveServer
from tests.e2e.helpers import TIMEOUT_MS, login

pytestmark = pytest.mark.browser

COUNT_MICROPHONE_REQUESTS = """
window.__micRequests = 0;
const original = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
navigator.mediaDevices.getUserMedia = (constraints) => {
  window.__micRequests += 1;
  return original(constraints);
};
"""


async def test_an_unknown_or_foreign_inspection_shows_only_the_error(
    browser: Browser, live_server: LiveServer
) -> None:
    foreign = await live_server.new_inspection("inspector2")
    mine = await live_server.new_inspection("inspector1")
    context = await browser.new_context(
        locale="zh-CN", viewport={"width": 1440, "height": 900}, permissions=["microphone"]
    )
    await context.add_init_script(COUNT_MICROPHONE_REQUESTS)
    try:
        page = await context.new_page()
        await login(page, live_server, "inspector1")
        for inspection_id in ("0" * 32, "not-an-id", foreign["inspection_id"]):
            await page.goto(f"{live_server.base_url}/inspect/{inspection_id}")
            await expect(page.locator("#page-error")).to_be_visible(timeout=TIMEOUT_MS)
            await expect(page.locator("#live-grid")).to_be_hidden()
            assert await page.evaluate("window.__micRequests") == 0, inspection_id

        # The inspector's own live inspection asks for the microphone, once.
        await page.goto(f"{live_server.base_url}/inspect/{mine['inspection_id']}")
        await expect(page.locator("body")).to_have_attribute("data-state", "live")
        await expect(page.locator("#live-grid")).to_be_visible()
        await page.wait_for_function("window.__micRequests === 1", timeout=TIMEOUT_MS)
    finally:
        await context.close()
