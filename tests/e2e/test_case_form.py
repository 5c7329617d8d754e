# ruff: noqa: RUF001 - Chinese text uses full-width punctuation on purpose
"""The case form in Chromium: a pasted value too long is shown with its limit and a message, never
cut and never sent; empty required fields say 请填写…; a Chinese case number and a site copied from
高德 are accepted, shown with the archive ID, and found by a part of the number."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page, expect

from tests.conftest import LiveServer
from tests.e2e.helpers import TIMEOUT_MS, login

pytestmark = pytest.mark.browser

NUMBER = "榆阳食经〔2026〕0142号"
CASE_ID = "c-2026-0142-615213f26a39"
SHENZHEN_GCJ = ("22.540796131694766", "113.9171764808363")  # copied from Amap (GCJ-02)
SHENZHEN_WGS = (22.543847, 113.912316)  # where a phone there says it is


async def paste(page: Page, selector: str, text: str) -> None:
    """What a paste does: the text arrives as one insertion into the focused, emptied field."""
    await page.fill(selector, "")
    await page.focus(selector)
    await page.keyboard.insert_text(text)


async def test_too_long_and_empty_fields_are_shown_in_the_form_and_nothing_is_created(
    browser: Browser, live_server: LiveServer
) -> None:
    context = await browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai")
    try:
        page = await context.new_page()
        await login(page, live_server, "inspector1")
        await expect(page.locator("#case-id-count")).to_have_text("0/64")

        await paste(page, "#case-id", "A" * 65)
        assert await page.input_value("#case-id") == "A" * 65  # nothing cut
        await expect(page.locator("#case-id-count")).to_have_text("65/64")
        await expect(page.locator("#case-id-error")).to_have_text(
            "案件编号最多 64 个字符，现有 65 个，请删减"
        )
        await paste(page, "#case-title", "标" * 10_000)
        await page.click("#create-submit")
        await expect(page.locator("#case-title-error")).to_have_text(
            "案件名称最多 200 个字符，现有 10000 个，请删减"
        )
        await expect(page.locator("#case-address-error")).to_have_text("请填写踏勘地址")
        await expect(page.locator("#case-id")).to_have_attribute("aria-invalid", "true")
        await expect(page.locator("#create-error")).to_contain_text("请填写踏勘地址")
        assert await page.evaluate("document.activeElement.id") == "case-id"

        await page.fill("#case-title", "")
        await page.click("#create-submit")
        await expect(page.locator("#case-title-error")).to_have_text("请填写案件名称")

        status, found = await live_server.request("GET", "/api/cases", "admin1")
        assert (status, found["total"]) == (200, 0)  # the page sent nothing

        # In English the same messages read "Please fill in …".
        await page.click("#lang-toggle")
        await expect(page.locator("#case-title-error")).to_have_text("Please fill in Title")
    finally:
        await context.close()


async def test_a_chinese_number_and_an_amap_site_are_accepted_shown_and_found(
    browser: Browser, live_server: LiveServer
) -> None:
    context = await browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai")
    try:
        page = await context.new_page()
        await login(page, live_server, "inspector1")
        await paste(page, "#case-id", NUMBER)
        await expect(page.locator("#case-id-count")).to_have_text("15/64")
        await page.fill("#case-title", "餐饮店开业核查")
        await page.fill("#case-address", "深圳市南山区科技园 1 号")
        await page.fill("#case-site-lat", SHENZHEN_GCJ[0])
        await page.fill("#case-site-lon", SHENZHEN_GCJ[1])
        await page.select_option("#case-site-system", "gcj02")
        await page.click("#create-submit")

        await expect(page.locator("#create-ok")).to_have_text(
            f"案件 {NUMBER} 已创建，存证编号 {CASE_ID}", timeout=TIMEOUT_MS
        )
        row = page.locator(f'#case-list li[data-case-id="{CASE_ID}"]')
        await expect(row.locator(".case-number")).to_have_text(NUMBER)
        await expect(row.locator(".case-archive-id")).to_have_text(f"存证编号 {CASE_ID}")
        status, case = await live_server.request("GET", f"/api/cases/{CASE_ID}", "inspector1")
        assert status == 200, case
        assert case["case_number"] == NUMBER
        assert (case["site_system"], case["site_lat"], case["site_lon"]) == ("gcj02", *SHENZHEN_WGS)
        assert (case["site_input_lat"], case["site_input_lon"]) == tuple(map(float, SHENZHEN_GCJ))

        await row.locator("a[data-case-link]").click()
        await page.wait_for_url(f"**/cases/{CASE_ID}", timeout=TIMEOUT_MS)
        await expect(page.locator("#case-id")).to_have_text(NUMBER)
        await expect(page.locator("#case-archive-id")).to_have_text(f"存证编号 {CASE_ID}")
        facts = page.locator("#case-facts")
        await expect(facts).to_contain_text("22.543847, 113.912316 (WGS-84)")
        await expect(facts).to_contain_text(
            f"{SHENZHEN_GCJ[0]}, {SHENZHEN_GCJ[1]} (GCJ-02 高德/腾讯)"
        )

    finally:
        await context.close()
    context = await browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai")
    try:
        auditor = await context.new_page()
        await login(auditor, live_server, "auditor1", "/audit")
        await auditor.fill("#q-case-id", "0142号")
        await auditor.click("#search-submit")
        result = auditor.locator(f'#results-body tr[data-case-id="{CASE_ID}"]')
        await expect(result.locator(".case-number")).to_have_text(NUMBER, timeout=TIMEOUT_MS)
        await expect(auditor.locator("#results-body tr")).to_have_count(1)
    finally:
        await context.close()
