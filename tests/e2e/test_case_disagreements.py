"""The case page names every row of the database that says otherwise than the chain."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, expect

from tests.conftest import LiveServer
from tests.e2e.helpers import TIMEOUT_MS, login
from tests.integration.evidence_helpers import conclude_pass

pytestmark = pytest.mark.browser


async def test_the_case_page_shows_what_an_edited_database_says_otherwise_than_the_chain(
    browser: Browser, live_server: LiveServer
) -> None:
    invite = await live_server.new_inspection()
    case_id, inspection_id = invite["case_id"], invite["inspection_id"]
    concluded = await conclude_pass(live_server, inspection_id)
    await live_server.sql(
        "UPDATE inspections SET outcome = 'fail' WHERE inspection_id = ?", (inspection_id,)
    )
    await live_server.sql("UPDATE cases SET address = '伪造路 1 号' WHERE case_id = ?", (case_id,))

    context = await browser.new_context(locale="zh-CN")
    try:
        page = await context.new_page()
        await login(page, live_server, "auditor1", "/audit")
        await page.goto(f"{live_server.base_url}/cases/{case_id}")
        await expect(page.locator("#integrity")).to_have_attribute(
            "data-state", "disagrees", timeout=TIMEOUT_MS
        )
        await expect(page.locator("#integrity")).to_contain_text("数据库与证据链不一致")
        listed = page.locator("#disagreement-list li")
        await expect(listed.filter(has_text="database says outcome fail")).to_contain_text(
            f"chain entry {concluded['chain_seq']} says pass"
        )
        await expect(listed.filter(has_text="database says address '伪造路 1 号'")).to_have_count(1)
        cell = page.locator(f'tr[data-inspection-id="{inspection_id}"] td.ev-state')
        await expect(cell).to_have_attribute("data-state", "disagrees")
    finally:
        await context.close()
