"""The soak with a Chromium applicant: the phone page (``/join/<token>``, fake camera, location
shared) streams to an inspector, and the inspection ends at a seeded random moment by one of the
paths an in-process server has; every case verifies on its data dir and its export (harness:
``tests/integration/soak.py``, which ``test_soak.py`` runs with Python applicants).
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect
from playwright.async_api import Error as PlaywrightError

from tests.conftest import ApiClient
from tests.e2e.helpers import TIMEOUT_MS, record_console
from tests.e2e.test_inspection_flow import _applicant_context
from tests.integration.soak import (
    IN_PROCESS_PATHS,
    Applicant,
    JoinApplicant,
    check_data_dir,
    in_process_round,
    make_plans,
    problems,
    soak_seed,
    summary,
)

# The media path, once: what it stores (joins, consent) runs on both engines in test_signalling.
pytestmark = [pytest.mark.single_engine, pytest.mark.browser]

INSPECTIONS = 5
AT_ONCE = 2


@dataclass
class ChromiumApplicant:
    context: BrowserContext
    page: Page
    left: bool = False

    async def chat(self, text: str) -> None:
        try:
            await self.page.fill("#chat-input", text)
            await self.page.click("#chat-send")
        except PlaywrightError as exc:
            # The page closed by the inspection's own end while a chat was being typed: the
            # soak expects a dropped connection then (``act``), as from a Python applicant.
            if self.left:
                raise ConnectionError(f"the applicant's page was closed: {exc.message}") from exc
            raise

    async def leave(self) -> None:
        """Close the phone's page, as a user closing the tab."""
        if not self.left:
            self.left = True
            await self.context.close()


def chromium_applicant(browser: Browser, console: list[str]) -> JoinApplicant:
    async def join(server: ApiClient, invite: dict[str, Any]) -> Applicant:
        context = await _applicant_context(browser)
        try:
            page = await context.new_page()
            record_console(page, console, f"applicant {invite['case_id']}")
            await page.goto(invite["applicant_url"])
            await page.click("#consent-accept", timeout=TIMEOUT_MS)
            await expect(page.locator("#screen-live")).to_be_visible(timeout=TIMEOUT_MS)
        except BaseException:
            await context.close()
            raise
        return ChromiumApplicant(context, page)

    return join


async def test_soak_chromium_applicants_ended_at_random_moments_all_verify(
    browser: Browser, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed = soak_seed()
    print(f"soak seed {seed}")
    plans = make_plans(random.Random(seed), IN_PROCESS_PATHS, 1, INSPECTIONS)
    started = time.monotonic()
    console: list[str] = []
    data_dir = tmp_path / "data"
    try:
        inspections = await in_process_round(
            data_dir, plans, chromium_applicant(browser, console), AT_ONCE
        )
        await check_data_dir(data_dir, inspections, tmp_path / "exports", asyncio.Semaphore(2))
    finally:
        print("\n".join(console))  # shown by pytest when the test fails
    with capsys.disabled():
        print("\n" + summary(seed, inspections, started))
    assert not any(inspection.problems for inspection in inspections), problems(seed, inspections)
