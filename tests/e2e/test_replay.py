"""An auditor finds, opens, replays and verifies a recorded inspection in a real Chromium.

The inspection is recorded for real (``python -m client publish`` and ``watch`` against the live
server, a chat line and a control request from the inspector), so the archive, the manifest and
its signature are the server's own. Waits are generous and poll what a user would see.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import BrowserContext, Page, expect

from tests.conftest import LiveServer
from tests.e2e.helpers import login, record_console

# The media path, once: what it stores (joins, consent) runs on both engines in test_signalling.
pytestmark = [pytest.mark.single_engine, pytest.mark.browser]

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_MS = 60_000
CLIENT_TIMEOUT_S = 90.0
CHAT_TEXT = "请对准北侧围墙"


@dataclass(frozen=True)
class Recorded:
    case_id: str
    inspection_id: str
    archive: Path

    def segment_keys(self) -> list[str]:
        """Relative keys (under cases/<case>/) of every stored segment of the inspection."""
        case_dir = self.archive / "cases" / self.case_id
        segments = case_dir / "inspections" / self.inspection_id / "segments"
        return sorted(str(p.relative_to(case_dir)) for p in segments.rglob("*.webm"))


async def _client(*arguments: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "client",
        *arguments,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def _finish(process: asyncio.subprocess.Process) -> None:
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), CLIENT_TIMEOUT_S)
    except TimeoutError:
        process.kill()
        await process.communicate()
        pytest.fail(f"client still running after {CLIENT_TIMEOUT_S:g} s")
    assert process.returncode == 0, stderr.decode()[-2000:]


async def _inspector_chats_and_asks(server: LiveServer, inspection_id: str) -> None:
    """As inspector1 over the signalling socket: once the applicant is there, a chat line and a
    torch request (the CLI publisher answers 'not supported'), then leave."""
    token = await server.token("inspector1")
    async with aiohttp.ClientSession() as http, http.ws_connect(server.ws_url) as ws:
        await ws.send_json(
            {"v": 1, "type": "hello", "token": token, "inspection_id": inspection_id}
        )
        sent = False
        async with asyncio.timeout(60):
            async for frame in ws:
                message: dict[str, Any] = json.loads(frame.data)
                applicant_here = message["type"] in ("welcome", "presence") and any(
                    p["role"] == "applicant" and p["connected"] for p in message["participants"]
                )
                if applicant_here and not sent:
                    sent = True
                    await ws.send_json({"v": 1, "type": "chat", "text": CHAT_TEXT})
                    await ws.send_json(
                        {"v": 1, "type": "control", "action": "torch", "value": True}
                    )
                if message["type"] == "control_result":
                    break


async def record_inspection(server: LiveServer, seconds: int = 9) -> Recorded:
    """A real recorded inspection of about `seconds` (≥ 2 segments per applicant track), ended
    and drained into the archive."""
    invite = await server.new_inspection("inspector1")
    publisher = await _client(
        "publish", invite["applicant_url"], "--source", "testsrc", "--seconds", str(seconds)
    )
    await _inspector_chats_and_asks(server, invite["inspection_id"])
    watcher = await _client(
        "watch",
        invite["inspector_url"],
        "--token",
        await server.token("inspector1"),
        "--seconds",
        str(max(3, seconds - 4)),
    )
    await _finish(watcher)
    await _finish(publisher)
    status, body = await server.request(
        "POST", f"/api/inspections/{invite['inspection_id']}/end", "inspector1"
    )
    assert status == 200, body
    await server.services.archive.drain()
    return Recorded(invite["case_id"], invite["inspection_id"], server.data_dir / "archive")


def flip_byte(path: Path) -> None:
    """Changes one byte in the middle of a stored (read-only) object, as a forger would."""
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


async def playhead(page: Page) -> float:
    value: float = await page.evaluate("document.getElementById('replay-video').currentTime")
    return value


async def wait_playing_past(page: Page, seconds: float) -> None:
    """Polls until the replay's video has played beyond `seconds`."""
    for _ in range(600):
        if await playhead(page) > seconds:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"replay video did not get past {seconds} s: at {await playhead(page)}")


async def buffered_ranges(page: Page) -> list[list[float]]:
    ranges: list[list[float]] = await page.evaluate(
        """() => {
            const b = document.getElementById('replay-video').buffered;
            return Array.from({length: b.length}, (_, i) => [b.start(i), b.end(i)]);
        }"""
    )
    return ranges


async def test_auditor_searches_opens_and_replays_with_every_segment_green(
    live_server: LiveServer, desktop: BrowserContext
) -> None:
    recorded = await record_inspection(live_server)
    segment_keys = recorded.segment_keys()
    assert sum("/applicant-video/" in k for k in segment_keys) >= 2, segment_keys
    page = await desktop.new_page()
    console: list[str] = []
    record_console(page, console)
    try:
        await login(page, live_server, "auditor1", "/audit")

        await page.fill("#q-case-id", recorded.case_id.lower()[:6])
        await page.fill("#q-applicant", "张")
        await page.fill("#q-inspector", "inspector1")
        await page.click("#search-submit")
        row = page.locator(f'#results-body tr[data-case-id="{recorded.case_id}"]')
        await expect(row).to_have_count(1, timeout=TIMEOUT_MS)
        await expect(page.locator("#search-total")).to_contain_text("1")
        await row.locator("a").click()

        await page.wait_for_url(re.compile(f"/cases/{recorded.case_id}$"), timeout=TIMEOUT_MS)
        inspection_row = page.locator(f'tr[data-inspection-id="{recorded.inspection_id}"]')
        await expect(inspection_row.locator("li[data-role=applicant]")).to_have_count(1)
        await expect(inspection_row.locator(".ev-state")).to_have_attribute(
            "data-state", "verified", timeout=TIMEOUT_MS
        )
        await expect(page.locator("#integrity")).to_have_attribute("data-state", "verified")
        await inspection_row.locator(".replay-link").click()

        await page.wait_for_url(
            re.compile(f"/replay/{recorded.case_id}/{recorded.inspection_id}$"),
            timeout=TIMEOUT_MS,
        )
        replay = page.locator("#replay")
        await expect(replay).to_have_attribute("data-state", "ready", timeout=TIMEOUT_MS)
        await expect(replay).to_have_attribute("data-signature", "valid")
        await expect(replay).to_have_attribute("data-chain", "intact")
        fingerprint = (await live_server.request("GET", "/api/keys"))[1]["keys"][0]["fingerprint"]
        await expect(page.locator("#replay-fingerprint")).to_have_text(fingerprint)
        await wait_playing_past(page, 5.0)  # across a segment boundary
        assert await replay.get_attribute("data-first-frame") is not None
        # It plays by itself, so the button offers what a click does: pause.
        await expect(page.locator("#replay-play")).to_have_text("暂停")

        # This very replay is chained after the inspection: listed apart with its UTC time,
        # not drawn on the inspection's timeline.
        afterwards = page.locator("#replay-afterwards li[data-kind=replayed]")
        await expect(afterwards).to_have_count(1)
        await expect(afterwards).to_contain_text("auditor1")
        await expect(afterwards).to_contain_text(" UTC")
        assert await page.locator(".tl-event[data-kind=replayed]").count() == 0

        # The timeline shows the inspection's events; the chat transcript has the line.
        for kind in ("joined", "consented", "chat", "control", "left", "ended"):
            assert await page.locator(f".tl-event[data-kind={kind}]").count() >= 1, kind
        await expect(page.locator("#replay-chat")).to_contain_text(CHAT_TEXT)

        # Clicking an event seeks there.
        events = page.locator("#replay-events li")
        times = [float(t) for t in await events.evaluate_all("els => els.map(e => e.dataset.t)")]
        duration = max(
            float(e)
            for e in await page.locator(".tl-seg").evaluate_all(
                "els => els.map(e => e.dataset.end)"
            )
        )
        index = next(i for i, t in enumerate(times) if 2.0 < t < duration - 1.0)
        await page.evaluate("document.getElementById('replay-video').pause()")
        await events.nth(index).locator("button").click()
        assert abs(await playhead(page) - times[index]) < 1.0, (times[index], await playhead(page))

        # Every segment hashed in the browser matches the signed manifest.
        await expect(replay).to_have_attribute("data-verify", "verified", timeout=TIMEOUT_MS)
        # Who signed, trusted as the case page's integrity trusts: the server's key history.
        keys = page.locator("#replay-keys")
        await expect(keys).to_have_attribute("data-signers", "1")
        await expect(keys.locator(f'li[data-fingerprint="{fingerprint}"]')).to_be_visible()
        await expect(page.locator("#replay-trust")).to_contain_text("本服务器的密钥历史")
        segments = page.locator(".tl-seg")
        assert sorted(await segments.evaluate_all("els => els.map(e => e.dataset.key)")) == (
            segment_keys
        )
        await expect(page.locator('.tl-seg[data-state="verified"]')).to_have_count(
            len(segment_keys)
        )
        await expect(page.locator("#replay-broken")).to_be_hidden()
        await expect(replay).to_have_attribute("data-reported", "true", timeout=TIMEOUT_MS)

        # The replay, the browser's finding and the server's check are in the chain and on the
        # case page.
        status, audit = await live_server.request(
            "GET", f"/api/cases/{recorded.case_id}/audit?limit=500", "auditor1"
        )
        assert status == 200, audit
        by_kind = {e["kind"]: e["body"] for e in audit["entries"]}
        assert by_kind["replayed"]["by"] == "auditor1"
        assert by_kind["replay_verified"]["state"] == "verified"
        assert by_kind["replay_verified"]["segments_checked"] == len(segment_keys)
        assert by_kind["verified"]["state"] == "verified"
        await page.goto(f"{live_server.base_url}/cases/{recorded.case_id}")
        for kind in ("replayed", "replay_verified", "verified"):
            await expect(page.locator(f"#audit-events li[data-kind={kind}]").first).to_be_visible(
                timeout=TIMEOUT_MS
            )
    finally:
        print("\n".join(console))


async def test_flipped_byte_in_a_segment_turns_it_red_names_it_and_never_plays_it(
    live_server: LiveServer, desktop: BrowserContext
) -> None:
    recorded = await record_inspection(live_server, seconds=10)
    video_keys = [k for k in recorded.segment_keys() if "/applicant-video/" in k]
    assert len(video_keys) >= 3, video_keys  # the tampered one has playable video after it
    tampered = video_keys[1]
    flip_byte(recorded.archive / "cases" / recorded.case_id / tampered)
    page = await desktop.new_page()
    console: list[str] = []
    record_console(page, console)
    try:
        await login(page, live_server, "auditor1", "/audit")
        await page.goto(
            f"{live_server.base_url}/replay/{recorded.case_id}/{recorded.inspection_id}"
        )
        replay = page.locator("#replay")
        await expect(replay).to_have_attribute("data-verify", "broken", timeout=TIMEOUT_MS)
        red = page.locator('.tl-seg[data-state="broken"]')
        await expect(red).to_have_count(1)
        assert await red.get_attribute("data-key") == tampered
        assert await red.get_attribute("data-track") == "applicant-video"
        assert await red.get_attribute("data-seq") == "1"
        await expect(page.locator(f'#replay-broken li[data-key="{tampered}"]')).to_contain_text(
            tampered
        )
        await expect(page.locator('.tl-seg[data-state="verified"]')).to_have_count(
            len(recorded.segment_keys()) - 1, timeout=TIMEOUT_MS
        )

        # Playback jumps over the red segment with a notice and never buffers its span.
        start = float(await red.get_attribute("data-start") or "0")
        end = float(await red.get_attribute("data-end") or "0")
        await wait_playing_past(page, end)
        await expect(page.locator("#replay-notice")).to_be_visible(timeout=TIMEOUT_MS)
        for low, high in await buffered_ranges(page):
            assert high <= start + 0.2 or low >= end - 0.2, (low, high, start, end)

        status, audit = await live_server.request(
            "GET", f"/api/cases/{recorded.case_id}/audit?limit=500", "auditor1"
        )
        assert status == 200, audit
        finding = [e["body"] for e in audit["entries"] if e["kind"] == "replay_verified"]
        assert finding
        assert finding[-1]["state"] == "broken"
        assert finding[-1]["broken"] == [tampered]

        # The case page names it too, from the server's own verification.
        await page.goto(f"{live_server.base_url}/cases/{recorded.case_id}")
        await expect(page.locator("#integrity")).to_have_attribute(
            "data-state", "broken", timeout=TIMEOUT_MS
        )
        await expect(page.locator("#integrity-where")).to_contain_text(tampered)
    finally:
        print("\n".join(console))


async def test_inspector_opens_own_case_page_from_the_cases_list(
    live_server: LiveServer, desktop: BrowserContext
) -> None:
    case = await live_server.new_case("inspector1")
    other = await live_server.new_case("inspector2")
    page = await desktop.new_page()
    await login(page, live_server, "inspector1")
    link = page.locator(f'a[data-case-link="{case["case_id"]}"]')
    await expect(link).to_have_count(1, timeout=TIMEOUT_MS)
    await expect(page.locator(f'a[data-case-link="{other["case_id"]}"]')).to_have_count(0)
    await link.click()
    await page.wait_for_url(re.compile(f"/cases/{case['case_id']}$"), timeout=TIMEOUT_MS)
    await expect(page.locator("#case-id")).to_have_text(case["case_id"])
    await expect(page.locator("#no-inspections")).to_be_visible()
    await page.goto(f"{live_server.base_url}/cases/{other['case_id']}")
    await expect(page.locator("#case-error")).to_be_visible(timeout=TIMEOUT_MS)
