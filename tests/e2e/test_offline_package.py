"""The exported evidence package replays and verifies in Chromium from file://, with no server.

The package is the server's own export of a really recorded inspection, unzipped into a folder;
the offline page gets that folder through its <input webkitdirectory>, as a user would pick it.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import BrowserContext, Page, expect

from tests.conftest import LiveServer
from tests.e2e.helpers import record_console
from tests.e2e.test_replay import (
    TIMEOUT_MS,
    Recorded,
    flip_byte,
    record_inspection,
    wait_playing_past,
)

# The media path, once: what it stores (joins, consent) runs on both engines in test_signalling.
pytestmark = [pytest.mark.single_engine, pytest.mark.browser]


async def export_package(server: LiveServer, case_id: str) -> bytes:
    token = await server.token("auditor1")
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{server.base_url}/api/cases/{case_id}/export",
            headers={"Authorization": f"Bearer {token}"},
        ) as response,
    ):
        assert response.status == 200, await response.text()
        assert response.content_type == "application/zip"
        disposition = response.headers["Content-Disposition"]
        assert re.search(rf'filename="takan-{case_id}-\d{{8}}T\d{{6}}Z\.zip"', disposition)
        return await response.read()


def unzip(package: bytes, folder: Path) -> None:
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        names = archive.namelist()
        for required in (
            "index.html",
            "offline/evidence-core.js",
            "offline/offline.js",
            "offline/package-index.js",
            "package-index.json",
        ):
            assert required in names, names
        archive.extractall(folder)


async def open_package(context: BrowserContext, folder: Path, console: list[str]) -> Page:
    page = await context.new_page()
    record_console(page, console)
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    await page.goto((folder / "index.html").as_uri())
    await page.locator("#folder").set_input_files(folder)
    assert all(url.startswith("file://") for url in requests), requests  # no network at all
    return page


async def test_offline_page_from_file_url_replays_and_verifies_the_export(
    live_server: LiveServer, desktop: BrowserContext, tmp_path: Path
) -> None:
    recorded: Recorded = await record_inspection(live_server)
    folder = tmp_path / "package"
    unzip(await export_package(live_server, recorded.case_id), folder)
    console: list[str] = []
    try:
        page = await open_package(desktop, folder, console)
        await expect(
            page.locator(f'#case-select option[value="{recorded.case_id}"]')
        ).to_have_count(1)
        await expect(
            page.locator(f'#inspection-list li[data-inspection-id="{recorded.inspection_id}"]')
        ).to_have_count(1)
        replay = page.locator("#replay")
        await expect(replay).to_have_attribute("data-state", "ready", timeout=TIMEOUT_MS)
        await expect(replay).to_have_attribute("data-signature", "valid")
        await expect(replay).to_have_attribute("data-chain", "intact")
        await wait_playing_past(page, 2.0)
        await expect(replay).to_have_attribute("data-verify", "verified", timeout=TIMEOUT_MS)
        await expect(page.locator('.tl-seg[data-state="verified"]')).to_have_count(
            len(recorded.segment_keys())
        )
        # Every file of the package, the page's own included, is what the signed index lists.
        await expect(page.locator("#package-verdict")).to_have_attribute(
            "data-state", "verified", timeout=TIMEOUT_MS
        )
        await expect(replay).to_have_attribute("data-verdict", "verified")
        for kind in ("joined", "consented", "chat", "ended"):
            assert await page.locator(f".tl-event[data-kind={kind}]").count() >= 1, kind
        # The export itself is in the package's chain, under a signature.
        exported = await page.evaluate(
            """async () => {
                const source = new TakanEvidence.FolderSource(
                    document.getElementById('folder').files);
                return (await source.chain()).filter((e) => e.kind === 'exported').length;
            }"""
        )
        assert exported == 1
    finally:
        print("\n".join(console))


async def test_offline_page_turns_a_flipped_segment_red_and_names_it(
    live_server: LiveServer, desktop: BrowserContext, tmp_path: Path
) -> None:
    recorded = await record_inspection(live_server)
    folder = tmp_path / "package"
    unzip(await export_package(live_server, recorded.case_id), folder)
    tampered = next(k for k in recorded.segment_keys() if "/applicant-audio/" in k)
    flip_byte(folder / "cases" / recorded.case_id / tampered)
    console: list[str] = []
    try:
        page = await open_package(desktop, folder, console)
        replay = page.locator("#replay")
        await expect(replay).to_have_attribute("data-verify", "broken", timeout=TIMEOUT_MS)
        red = page.locator('.tl-seg[data-state="broken"]')
        await expect(red).to_have_count(1)
        assert await red.get_attribute("data-key") == tampered
        await expect(page.locator(f'#replay-broken li[data-key="{tampered}"]')).to_contain_text(
            tampered
        )
        await expect(page.locator('.tl-seg[data-state="verified"]')).to_have_count(
            len(recorded.segment_keys()) - 1, timeout=TIMEOUT_MS
        )
        # The picture still plays: only the tampered audio segment is withheld.
        await wait_playing_past(page, 1.0)
    finally:
        print("\n".join(console))
