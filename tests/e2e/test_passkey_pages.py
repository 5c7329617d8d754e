# ruff: noqa: RUF001 - Chinese text uses full-width punctuation on purpose
"""Passkeys in Chromium (its virtual authenticator, over the DevTools WebAuthn domain): an
inspector registers one on the dashboard and signs the conclusion with it on the inspection
page; the page, the chain, takan verify and the report all name the signer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from recorder.storage import LocalStorage
from recorder.verify import verify_case
from tests.conftest import LiveServer, running_server
from tests.e2e.helpers import TIMEOUT_MS, login, record_console
from tests.integration.evidence_helpers import chain, mark_open_items

pytestmark = pytest.mark.browser


@pytest.fixture
async def named_server(tmp_path: Path) -> AsyncIterator[LiveServer]:
    """A server reached as http://localhost:PORT: browsers allow passkeys on a host name only."""
    async with running_server(tmp_path / "data", host_name="localhost") as server:
        yield server


async def with_authenticator(context: BrowserContext, page: Page) -> tuple[Any, str]:
    """A platform authenticator that verifies the user (as a fingerprint reader would)."""
    cdp = await context.new_cdp_session(page)
    await cdp.send("WebAuthn.enable")
    added = await cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return cdp, added["authenticatorId"]


async def test_an_inspector_registers_a_passkey_and_signs_the_conclusion_with_it(
    browser: Browser, named_server: LiveServer
) -> None:
    server = named_server
    inspection = await server.new_inspection()
    inspection_id = inspection["inspection_id"]
    await mark_open_items(server, inspection_id)
    context = await browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN")
    console: list[str] = []
    try:
        page = await context.new_page()
        record_console(page, console)
        cdp, authenticator = await with_authenticator(context, page)
        await login(page, server, "inspector1")
        await page.goto(f"{server.base_url}/dashboard")
        await expect(page.locator("#passkey-mode")).to_contain_text(
            "已注册通行密钥的人员以通行密钥签署结论", timeout=TIMEOUT_MS
        )
        await expect(page.locator("#passkey-list")).to_have_text("尚未注册通行密钥。")
        # A device name is asked for in the field's message, nothing is sent without one.
        await page.click("#btn-passkey-register")
        await expect(page.locator("#passkey-error")).to_have_text("请填写设备名称")
        await page.fill("#passkey-label", "办公电脑")
        await page.click("#btn-passkey-register")
        await expect(page.locator("#passkey-done")).to_have_text(
            "已注册通行密钥“办公电脑”。", timeout=TIMEOUT_MS
        )
        listed = page.locator("#passkey-list li[data-credential-id]")
        await expect(listed).to_have_count(1)
        await expect(listed).to_contain_text("办公电脑")
        status, mine = await server.request("GET", "/api/passkeys", "inspector1")
        [passkey] = mine["passkeys"]
        await expect(listed).to_contain_text(passkey["fingerprint"])
        credentials = await cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})
        assert len(credentials["credentials"]) == 1

        await page.goto(f"{server.base_url}/inspect/{inspection_id}")
        await page.fill("#conclusion-reason", "现场与申报材料一致")
        await page.check('#conclusion-form input[value="pass"]')
        await page.click("#btn-conclude")
        await page.click("#btn-conclusion-yes")
        result = page.locator("#conclusion-result")
        await expect(result).to_be_visible(timeout=TIMEOUT_MS)
        signed_by = page.locator('#conclusion-facts dd[data-field="inspector_signature"]')
        await expect(signed_by).to_have_text(
            f"inspector1 已以通行密钥签署（通行密钥指纹 {passkey['fingerprint']}）"
        )
        after = await cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})
        assert after["credentials"][0]["signCount"] >= 1  # the device really signed
        await server.services.archive.drain()
        await server.services.archive.checkpoint(inspection["case_id"])
        await server.services.archive.drain()
        await page.goto(f"{server.base_url}/replay/{inspection['case_id']}/{inspection_id}")
        signer = page.locator(f'#replay-keys p[data-passkey="{passkey["fingerprint"]}"]')
        await expect(signer).to_contain_text(
            "由踏勘人员 inspector1 以通行密钥签署", timeout=TIMEOUT_MS
        )
    finally:
        print("\n".join(console))
        await context.close()

    entries = await chain(server, inspection["case_id"])
    [enrolled] = [e for e in entries if e.kind == "passkey_enrolled"]
    [conclusion] = [e for e in entries if e.kind == "conclusion"]
    assert enrolled.body["credential_id"] == passkey["credential_id"]
    assert enrolled.body["origin"] == server.base_url
    assert conclusion.body["passkey"]["credential_id"] == passkey["credential_id"]
    await server.services.archive.drain()
    await server.services.archive.checkpoint(inspection["case_id"])
    await server.services.archive.drain()
    report = verify_case(LocalStorage(server.data_dir / "archive"), inspection["case_id"])
    [by] = report.inspector_signatures
    assert (by.username, by.fingerprint, by.user_verified) == (
        "inspector1",
        passkey["fingerprint"],
        True,
    )
    async with asyncio.timeout(120):
        while True:
            path = f"/api/inspections/{inspection_id}/report.html"
            status, html = await server.request("GET", path, "auditor1")
            if status == 200:
                break
            await asyncio.sleep(0.3)
    assert "inspector1 以通行密钥（WebAuthn, ES256）签署" in html
    assert passkey["fingerprint"] in html


async def test_a_system_reached_by_ip_address_says_why_no_passkey_can_be_registered(
    browser: Browser, live_server: LiveServer
) -> None:
    context = await browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN")
    try:
        page = await context.new_page()
        await login(page, live_server, "inspector1")
        await page.goto(f"{live_server.base_url}/dashboard")
        await expect(page.locator("#passkey-mode")).to_contain_text(
            "系统以 IP 地址访问，浏览器不允许在 IP 地址上使用通行密钥", timeout=TIMEOUT_MS
        )
        await expect(page.locator("#passkey-form")).to_be_hidden()
        await page.click("#lang-toggle")
        await expect(page.locator("#passkey-mode")).to_contain_text(
            "the system is reached by an IP address"
        )
    finally:
        await context.close()
