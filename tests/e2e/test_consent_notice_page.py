"""The applicant's phone shows the deployment's recording notice (who keeps the recording, why,
how long, whom to ask) before the consent button; a notice changed while it is read is shown
again before anything is chained."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from tests.conftest import running_server
from tests.e2e.helpers import TIMEOUT_MS
from tests.integration.evidence_helpers import chain
from tests.integration.test_consent_notice import NOTICE

pytestmark = pytest.mark.browser

REVISED = dataclasses.replace(
    NOTICE, version="2026-12-07", texts={**NOTICE.texts, "retention": {"zh-CN": "永久保存"}}
)


async def test_the_phone_shows_the_notice_before_consent_and_a_changed_one_again(
    browser: Browser, tmp_path: Path
) -> None:
    async with running_server(tmp_path / "data", consent_notice=NOTICE) as server:
        invite = await server.new_inspection()
        context = await browser.new_context(
            viewport={"width": 390, "height": 844},
            is_mobile=True,
            has_touch=True,
            permissions=["camera", "microphone"],
            locale="zh-CN",
        )
        try:
            page = await context.new_page()
            await page.goto(invite["applicant_url"])
            notice = page.locator("#consent-notice")
            await expect(notice).to_be_visible(timeout=TIMEOUT_MS)
            await expect(page.locator("#notice-agency")).to_have_text("榆阳区市场监督管理局")
            await expect(page.locator("#notice-purpose")).to_have_text(
                "核查食品经营许可申请所述的经营场所"
            )
            await expect(page.locator("#notice-retention")).to_have_text(
                "自许可决定之日起保存 30 年"
            )
            await expect(page.locator("#notice-contact")).to_contain_text("0912-3456789")
            await expect(page.locator("#notice-version")).to_contain_text("2026-12-01")
            box = await notice.bounding_box()
            button = await page.locator("#consent-accept").bounding_box()
            assert box is not None
            assert button is not None
            assert box["y"] + box["height"] <= button["y"]  # read before the button

            # In English, the English text where the deployment gave one.
            await page.click("#lang-toggle")
            await expect(page.locator("#notice-agency")).to_have_text(
                "Yuyang Market Regulation Bureau"
            )
            await expect(page.locator("#notice-retention")).to_have_text(
                "自许可决定之日起保存 30 年"
            )
            await page.click("#lang-toggle")

            # The deployment revises the notice while the applicant reads the old one.
            server.services.settings = dataclasses.replace(
                server.services.settings, consent_notice=REVISED
            )
            await page.click("#consent-accept")
            await expect(page.locator("#notice-changed")).to_be_visible(timeout=TIMEOUT_MS)
            await expect(page.locator("#notice-retention")).to_have_text("永久保存")
            assert "consented" not in [e.kind for e in await chain(server, invite["case_id"])]

            await page.click("#consent-accept")
            await expect(page.locator("#screen-live")).to_be_visible(timeout=TIMEOUT_MS)
            async with asyncio.timeout(10):
                while True:
                    entries = await chain(server, invite["case_id"])
                    consented = [e for e in entries if e.kind == "consented"]
                    if consented:
                        break
                    await asyncio.sleep(0.1)
            assert consented[0].body["notice_version"] == "2026-12-07"
            assert consented[0].body["notice_sha256"] == REVISED.sha256
        finally:
            await context.close()
