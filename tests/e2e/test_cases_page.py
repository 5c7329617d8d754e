"""The inspector's cases page: a case with its type and site; an inspection at an agreed time."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Browser, expect

from tests.conftest import LiveServer
from tests.e2e.helpers import TIMEOUT_MS, login
from tests.integration.test_reindex import conclude

pytestmark = pytest.mark.browser


async def test_a_case_gets_its_type_and_site_and_an_inspection_is_scheduled(
    browser: Browser, live_server: LiveServer
) -> None:
    context = await browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai")
    try:
        page = await context.new_page()
        await login(page, live_server, "inspector1")

        # The case types are the checklist templates' types.
        await expect(page.locator('#case-type option[value="食品经营"]')).to_have_count(1)
        await page.fill("#case-id", "WEB-SITE-1")
        await page.fill("#case-title", "餐饮店开业核查")
        await page.fill("#case-address", "杭州市上城区解放路 8 号")
        await page.select_option("#case-type", "食品经营")
        await page.fill("#case-site-lat", "30.2500")
        await page.click("#create-submit")  # a latitude without a longitude is refused
        await expect(page.locator("#create-error")).to_contain_text("经度")
        await page.fill("#case-site-lon", "120.1700")
        await page.click("#create-submit")
        row = page.locator('#case-list li[data-case-id="WEB-SITE-1"]')
        await expect(row).to_contain_text("餐饮店开业核查", timeout=TIMEOUT_MS)

        status, case = await live_server.request("GET", "/api/cases/WEB-SITE-1", "inspector1")
        assert status == 200, case
        assert case["case_type"] == "食品经营"
        assert (case["site_lat"], case["site_lon"]) == (30.25, 120.17)

        await row.locator("details.schedule summary").click()
        await row.locator('input[type="datetime-local"]').fill("2030-01-01T09:30")
        await row.locator("form[data-schedule] button").click()
        # 2030 is too far ahead: the server's precise reason is shown, nothing is created.
        await expect(page.locator("#cases-error")).to_contain_text("90 days", timeout=TIMEOUT_MS)
        status, case = await live_server.request("GET", "/api/cases/WEB-SITE-1", "inspector1")
        assert case["inspections"] == []

        tomorrow = await page.evaluate(
            """() => {
                const d = new Date(Date.now() + 86400000);
                d.setHours(9, 30, 0, 0);
                const pad = (n) => String(n).padStart(2, '0');
                return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T09:30`;
            }"""
        )
        await row.locator('input[type="datetime-local"]').fill(tomorrow)  # the form is still open
        await row.locator("form[data-schedule] button").click()
        await expect(page.locator("#create-ok")).to_be_visible(timeout=TIMEOUT_MS)
        status, case = await live_server.request("GET", "/api/cases/WEB-SITE-1", "inspector1")
        [inspection] = case["inspections"]
        # 09:30 in Shanghai is 01:30 UTC.
        assert inspection["scheduled_at"].endswith("T01:30:00.000Z")
    finally:
        await context.close()


async def test_each_case_says_where_it_stands_and_offers_only_what_can_be_done(
    browser: Browser, live_server: LiveServer
) -> None:
    async def concluded(outcome: str) -> str:
        invite = await live_server.new_inspection()
        path = f"/api/inspections/{invite['inspection_id']}/end"
        assert (await live_server.request("POST", path, "inspector1"))[0] == 200
        await conclude(live_server, invite["inspection_id"], outcome)
        return str(invite["case_id"])

    fresh = (await live_server.new_case())["case_id"]
    live = (await live_server.new_inspection())["case_id"]
    passed, failed, correction = [await concluded(o) for o in ("pass", "fail", "correction")]
    context = await browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai")
    try:
        page = await context.new_page()
        await page.goto(f"{live_server.base_url}/login")
        await expect(page.locator("h1")).to_have_text("工作人员登录")  # every role signs in here
        await login(page, live_server, "inspector1")

        def row(case_id: str) -> Any:
            return page.locator(f'#case-list li[data-case-id="{case_id}"]')

        start = "button[data-case-id]"
        await expect(row(fresh).locator(start)).to_have_text("开始踏勘", timeout=TIMEOUT_MS)
        await expect(row(live)).to_contain_text("踏勘进行中")
        await expect(row(live).locator(start)).to_have_count(0)
        await expect(row(live)).to_contain_text("进入进行中的踏勘")
        for case_id, outcome in ((passed, "通过"), (failed, "不通过")):
            await expect(row(case_id)).to_contain_text(outcome)
            await expect(row(case_id)).to_contain_text("已办结")
            await expect(row(case_id).locator(start)).to_have_count(0)
            await expect(row(case_id).locator("details.schedule")).to_have_count(0)
        await expect(row(correction)).to_contain_text("需整改")
        await expect(row(correction).locator(start)).to_have_text("复查踏勘")
    finally:
        await context.close()
