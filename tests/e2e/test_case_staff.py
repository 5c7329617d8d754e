# ruff: noqa: RUF001 - Chinese text uses full-width punctuation on purpose
"""Two staff in Chromium: the case form picks the case's inspectors (the creator always one, a
single inspector said to be too few), the case page lists them and assigns or takes one off,
and the colleague finds the case and starts its inspection."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, expect

from tests.conftest import LiveServer
from tests.e2e.helpers import TIMEOUT_MS, login

pytestmark = pytest.mark.browser


async def test_an_inspector_creates_a_case_for_two_and_the_colleague_starts_it(
    browser: Browser, live_server: LiveServer
) -> None:
    context = await browser.new_context(
        locale="zh-CN", timezone_id="Asia/Shanghai", viewport={"width": 1440, "height": 900}
    )
    try:
        page = await context.new_page()
        await login(page, live_server, "inspector1")
        me = page.locator('#inspector-choices input[value="inspector1"]')
        await expect(me).to_be_checked()
        await expect(me).to_be_disabled()
        await expect(page.locator("#inspector-choices")).to_contain_text("inspector1（本人）")
        await expect(page.locator("#inspectors-error")).to_have_text(
            "只选了 1 名踏勘人员：现场核查应由两名以上工作人员进行"
        )
        await page.check('#inspector-choices input[value="inspector2"]')
        await expect(page.locator("#inspectors-error")).to_be_hidden()
        await page.fill("#case-id", "STAFF-1")
        await page.fill("#case-title", "餐饮店开业核查")
        await page.fill("#case-address", "深圳市南山区科技园 1 号")
        await page.click("#create-submit")
        await expect(page.locator("#create-ok")).to_be_visible(timeout=TIMEOUT_MS)

        await page.goto(f"{live_server.base_url}/cases/STAFF-1")
        staff = page.locator("#staff-list")
        names = staff.locator("[data-inspector] .name")
        await expect(names).to_have_text(["inspector1", "inspector2"])

        # Taken off by the case page, the colleague is said to be alone, and assigned back.
        await staff.get_by_role("button", name="撤回 inspector2").click()
        await expect(names).to_have_text(["inspector1"])
        await expect(staff).to_contain_text("本案只有 1 名踏勘人员")
        await page.select_option("#staff-add", "inspector2")
        await page.click("#staff-submit")
        await expect(names).to_have_text(["inspector1", "inspector2"])
        await expect(page.locator("#audit-events")).to_contain_text("指派踏勘人员")
        await expect(page.locator("#audit-events")).to_contain_text("撤回踏勘人员")
    finally:
        await context.close()

    colleague = await browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai")
    try:
        page = await colleague.new_page()
        await login(page, live_server, "inspector2")
        start = page.locator('#case-list button[data-case-id="STAFF-1"]')
        await start.click()
        await page.wait_for_url("**/inspect/*", timeout=TIMEOUT_MS)
    finally:
        await colleague.close()


async def test_an_admin_must_choose_an_inspector_in_the_form(
    browser: Browser, live_server: LiveServer
) -> None:
    context = await browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai")
    try:
        page = await context.new_page()
        await login(page, live_server, "admin1", lands_on="/audit")
        await page.goto(f"{live_server.base_url}/cases")
        await expect(page.locator("#inspector-choices input")).to_have_count(2)
        await page.fill("#case-id", "ADMIN-STAFF")
        await page.fill("#case-title", "t")
        await page.fill("#case-address", "a")
        await page.click("#create-submit")
        await expect(page.locator("#inspectors-error")).to_have_text("请至少选择一名踏勘人员")
        await expect(page.locator("#create-error")).to_contain_text("请至少选择一名踏勘人员")
        status, found = await live_server.request("GET", "/api/cases", "admin1")
        assert (status, found["total"]) == (200, 0)
        await page.check('#inspector-choices input[value="inspector2"]')
        await page.click("#create-submit")
        await expect(page.locator("#create-ok")).to_be_visible(timeout=TIMEOUT_MS)
        status, case = await live_server.request("GET", "/api/cases/ADMIN-STAFF", "inspector2")
        assert (status, case["inspectors"]) == (200, ["inspector2"])
    finally:
        await context.close()
