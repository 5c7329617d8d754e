"""The offline page trusts as ``takan verify EXPORT.zip`` does, and checks receipts as it does.

An auditor opens an exported package from file://: the page lists the case's signing keys, what
each signed and that trust is the case's first key, unpinned. Pinning a fingerprint (as
``--key``) that is not the case's key fails the replay's verdict with takan verify's words;
pinning the server's key verifies. A receipt chosen beside the package (as ``--receipt``) is
checked: the real one holds, a changed one is named with takan verify's words.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.async_api import BrowserContext, Page, expect

from recorder.signing import Signer
from tests.conftest import LiveServer
from tests.e2e.test_offline_package import export_package, open_package, unzip
from tests.e2e.test_replay import TIMEOUT_MS, record_inspection
from tests.integration.recorded_case import takan
from tests.integration.test_receipts import get_raw

# The media path, once: what it stores (joins, consent) runs on both engines in test_signalling.
pytestmark = [pytest.mark.single_engine, pytest.mark.browser]


async def verdict(page: Page) -> str:
    replay = page.locator("#replay")
    await expect(replay).to_have_attribute(
        "data-verdict", re.compile("^(failed|verified)$"), timeout=TIMEOUT_MS
    )
    return await page.locator("#replay-verdict").inner_text()


async def cli(*args: str, cwd: Path) -> tuple[int, str]:
    code, out, err = await takan("verify", *args, cwd=cwd)
    assert code in (0, 1), err
    return code, out.strip()


async def test_the_offline_page_pins_a_key_and_checks_receipts_as_takan_verify_does(
    live_server: LiveServer, desktop: BrowserContext, tmp_path: Path
) -> None:
    recorded = await record_inspection(live_server)
    status, _, receipt = await get_raw(
        live_server, f"/api/inspections/{recorded.inspection_id}/receipt", "inspector1"
    )
    assert status == 200
    package = await export_package(live_server, recorded.case_id)
    zip_path = tmp_path / "package.zip"
    zip_path.write_bytes(package)
    folder = tmp_path / "package"
    unzip(package, folder)
    (tmp_path / "receipt.json").write_bytes(receipt)
    (tmp_path / "changed.json").write_bytes(
        receipt.replace(b'"chain_head_seq":', b'"chain_head_seq":1', 1)
    )
    server_key = live_server.services.archive.signer.fingerprint
    console: list[str] = []
    try:
        page = await open_package(desktop, folder, console)
        await verdict(page)
        await expect(page.locator("#replay")).to_have_attribute("data-verdict", "verified")
        keys = page.locator("#replay-keys")
        await expect(keys).to_have_attribute("data-signers", "1")
        await expect(keys.locator(f'li[data-fingerprint="{server_key}"]')).to_contain_text(
            "本案首个密钥"
        )
        await expect(page.locator("#replay-trust")).to_contain_text("未固定")

        # A key that is not the case's: takan verify --key's verdict, word for word.
        stranger = Signer.generate().fingerprint
        code, out = await cli("package.zip", "--key", stranger, cwd=tmp_path)
        assert code == 1
        await page.locator("#trust-options summary").click()
        await page.locator("#pin-key").fill(stranger)
        await page.locator("#pin-key").dispatch_event("change")
        assert await verdict(page) == out.splitlines()[0]

        # A fingerprint that is not one is refused in the field, not passed on.
        await page.locator("#pin-key").fill("sha256:xyz")
        await page.locator("#pin-key").dispatch_event("change")
        await expect(page.locator("#pin-error")).to_contain_text("sha256:")

        # The server's own key: intact, pinned.
        await page.locator("#pin-key").fill(server_key)
        await page.locator("#pin-key").dispatch_event("change")
        await expect(page.locator("#replay")).to_have_attribute(
            "data-verdict", "verified", timeout=TIMEOUT_MS
        )
        await expect(page.locator("#replay-trust")).to_contain_text("指定的密钥")

        # The receipt the applicant was given holds; a changed one is named.
        code, _ = await cli("package.zip", "--receipt", "receipt.json", cwd=tmp_path)
        assert code == 0
        await page.locator("#receipts").set_input_files(tmp_path / "receipt.json")
        await expect(page.locator("#replay-receipts")).to_be_visible(timeout=TIMEOUT_MS)
        code, out = await cli("package.zip", "--receipt", "changed.json", cwd=tmp_path)
        assert code == 1, out
        assert out.startswith("FAILED: receipt changed.json: "), out
        await page.locator("#receipts").set_input_files(tmp_path / "changed.json")
        assert await verdict(page) == out.splitlines()[0]
    finally:
        print("\n".join(console))
