"""The checklist template page: an admin edits a template; others only read."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, expect

from tests.conftest import LiveServer
from tests.e2e.helpers import TIMEOUT_MS, login

pytestmark = pytest.mark.browser


async def test_an_admin_edits_a_template_and_a_bad_item_id_is_refused(
    browser: Browser, live_server: LiveServer
) -> None:
    context = await browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai")
    try:
        page = await context.new_page()
        await login(page, live_server, "admin1", "/templates", as_next=True)
        await expect(page.locator("#readonly-notice")).to_be_hidden()
        row = page.locator('#template-list li[data-template-id="food"]')
        await expect(row).to_contain_text("食品经营", timeout=TIMEOUT_MS)
        await expect(row).to_contain_text("版本 1")
        await row.locator("button[data-open]").click()
        await expect(page.locator("#editor")).to_be_visible()
        await expect(page.locator("#template-name")).to_have_value("食品经营许可现场核查")

        items = page.locator("#items tr")
        count = await items.count()
        await items.nth(0).locator('[data-field="text"]').fill("营业执照、许可证在醒目位置公示")
        await page.click("#add-item")
        await expect(items).to_have_count(count + 1)
        new_row = items.nth(count)
        await new_row.locator('[data-field="item_id"]').fill("fire_safety")
        await new_row.locator('[data-field="text"]').fill("灭火器在有效期内")
        await new_row.locator('[data-field="required_photos"]').fill("1")
        required = new_row.locator('[data-field="required"]')
        await expect(required).to_be_checked()  # a new item is required (必查) unless unticked
        await required.uncheck()
        await new_row.locator('[data-action="up"]').click()  # moved before the last seeded item
        await page.click("#save")
        await expect(page.locator("#save-ok")).to_contain_text("版本 2", timeout=TIMEOUT_MS)
        await expect(row).to_contain_text("版本 2")

        status, template = await live_server.request(
            "GET", "/api/checklist-templates/food", "admin1"
        )
        assert status == 200, template
        assert template["version"] == 2
        ids = [item["item_id"] for item in template["items"]]
        assert len(ids) == count + 1
        assert ids[count - 1] == "fire_safety"
        assert template["items"][count - 1] == {
            "item_id": "fire_safety",
            "text": "灭火器在有效期内",
            "required_photos": 1,
            "required": False,
        }
        assert template["items"][0]["required"] is True  # the seeded items stay required
        assert template["items"][0]["text"] == "营业执照、许可证在醒目位置公示"

        # A bad item id: the server's reason is shown and nothing changes.
        await page.click("#add-item")
        await items.nth(count + 1).locator('[data-field="item_id"]').fill("Bad Id!")
        await items.nth(count + 1).locator('[data-field="text"]').fill("无效条目")
        await page.click("#save")
        error = page.locator("#save-error")
        await expect(error).to_contain_text("Bad Id!", timeout=TIMEOUT_MS)
        await expect(error).to_contain_text("a-z 0-9")
        await expect(page.locator("#save-ok")).to_be_hidden()
        status, after = await live_server.request("GET", "/api/checklist-templates/food", "admin1")
        assert status == 200
        assert after == template
    finally:
        await context.close()


async def test_an_inspector_sees_the_templates_read_only(
    browser: Browser, live_server: LiveServer
) -> None:
    context = await browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai")
    try:
        page = await context.new_page()
        await login(page, live_server, "inspector1", "/templates", as_next=True)
        await expect(page.locator("#readonly-notice")).to_be_visible(timeout=TIMEOUT_MS)
        await expect(page.locator("#readonly-notice")).to_contain_text("只有管理员可以编辑模板")
        await expect(page.locator('#template-list li[data-template-id="food"]')).to_contain_text(
            "食品经营"
        )
        await expect(page.locator("#new-template")).to_be_hidden()
        await page.locator('#template-list li[data-template-id="food"] button[data-open]').click()
        await expect(page.locator("#save")).to_be_hidden()
        await expect(page.locator("#add-item")).to_be_hidden()
        await expect(page.locator("#template-name")).to_be_disabled()
        await expect(page.locator('#items tr [data-field="text"]').first).to_be_disabled()
    finally:
        await context.close()
