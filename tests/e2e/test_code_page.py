"""The applicant's code page (/j) in a real Chromium: the code typed as people write it, and
what a wrong code and a lock-out say."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, Page, expect

from tests.conftest import LiveServer
from tests.e2e.helpers import TIMEOUT_MS

pytestmark = pytest.mark.browser


@pytest.fixture
async def phone(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, locale="zh-CN"
    )
    try:
        yield await context.new_page()
    finally:
        await context.close()


def wrong_code(right: str) -> str:
    return "000000" if right != "000000" else "111111"


async def test_a_code_typed_as_people_write_it_stays_as_typed_and_opens_the_inspection(
    live_server: LiveServer, phone: Page
) -> None:
    invite = await live_server.new_inspection("inspector1")
    code = invite["short_code"]
    written = f"{code[:3]} {code[3:]}"  # 269 354
    await phone.goto(f"{live_server.base_url}/j")
    await phone.locator("#code-input").press_sequentially(written)
    await expect(phone.locator("#code-input")).to_have_value(written)  # nothing cut
    await phone.click("#code-submit")
    await phone.wait_for_url(re.compile(r"/join/"), timeout=TIMEOUT_MS)
    await expect(phone.locator("#screen-consent")).to_be_visible(timeout=TIMEOUT_MS)


async def test_a_pasted_code_with_a_chinese_dash_is_not_cut(
    live_server: LiveServer, phone: Page
) -> None:
    invite = await live_server.new_inspection("inspector1")
    code = invite["short_code"]
    pasted = f"{code[:3]}——{code[3:]}"
    await phone.goto(f"{live_server.base_url}/j")
    await phone.fill("#code-input", pasted)
    await expect(phone.locator("#code-input")).to_have_value(pasted)
    await phone.click("#code-submit")
    await phone.wait_for_url(re.compile(r"/join/"), timeout=TIMEOUT_MS)


async def test_a_wrong_code_says_how_many_attempts_are_left_in_both_languages(
    live_server: LiveServer, phone: Page
) -> None:
    invite = await live_server.new_inspection("inspector1")
    await phone.goto(f"{live_server.base_url}/j")
    await phone.fill("#code-input", wrong_code(invite["short_code"]))
    await phone.click("#code-submit")
    error = phone.locator("#code-error")
    await expect(error).to_have_text("踏勘码错误或已失效\uff0c还可尝试 9 次", timeout=TIMEOUT_MS)
    await phone.click("#lang-toggle")
    await expect(error).to_have_text("Wrong or expired code, 9 attempts left")
    await phone.fill("#code-input", "269.354")
    await phone.click("#code-submit")
    await expect(error).to_have_text(
        "The code is digits only (spaces or dashes between them are fine), not “.”"
    )
    await phone.fill("#code-input", "269 35")
    await phone.click("#code-submit")
    await expect(error).to_have_text("The code has 6 digits; you typed 5")


async def test_the_last_wrong_code_locks_the_page_saying_for_how_many_seconds(
    live_server: LiveServer, phone: Page
) -> None:
    invite = await live_server.new_inspection("inspector1")
    wrong = wrong_code(invite["short_code"])
    for _ in range(9):  # nine wrong tries already made from this address
        status, body = await live_server.request("POST", "/api/join/code", json={"code": wrong})
        assert status == 404, body
    await phone.goto(f"{live_server.base_url}/j")
    await phone.fill("#code-input", wrong)
    await phone.click("#code-submit")
    error = phone.locator("#code-error")
    await expect(error).to_have_text(
        re.compile(r"^尝试次数过多\uff0c请 (60|59) 秒后再试$"), timeout=TIMEOUT_MS
    )
    await expect(phone.locator("#code-submit")).to_be_disabled()
    await expect(error).to_have_text(
        re.compile(r"^尝试次数过多\uff0c请 (58|57) 秒后再试$")
    )  # counts down
    await phone.click("#lang-toggle")
    await expect(error).to_have_text(re.compile(r"^Too many attempts, try again in \d+ s$"))
