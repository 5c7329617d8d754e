"""What several browser tests do the same way: sign in through /login, keep a page's console for
the failure report, wait until the inspector's video really plays."""

from __future__ import annotations

import asyncio
import re
import time

from playwright.async_api import ConsoleMessage, Page

from tests.conftest import LiveServer

TIMEOUT_MS = 30_000
VIDEO_TIMEOUT_S = 60.0


async def login(
    page: Page,
    server: LiveServer,
    username: str,
    lands_on: str = "/cases",
    *,
    as_next: bool = False,
) -> None:
    """Signs in on /login and waits for `lands_on`: where the role lands, or what ?next= asked."""
    query = f"?next={lands_on}" if as_next else ""
    await page.goto(f"{server.base_url}/login{query}")
    await page.fill("#username", username)
    await page.fill("#password", server.passwords[username])
    await page.click("#login-submit")
    await page.wait_for_url(re.compile(re.escape(lands_on) + r"(\?|$)"), timeout=TIMEOUT_MS)


def record_console(page: Page, sink: list[str], name: str | None = None) -> None:
    """Appends the page's console lines and uncaught errors to `sink`, prefixed with `name`."""
    prefix = f"[{name}] " if name else ""

    def on_console(message: ConsoleMessage) -> None:
        sink.append(f"{prefix}{message.type}: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: sink.append(f"{prefix}pageerror: {error}"))


async def _video_sample(page: Page) -> dict[str, int]:
    sample: dict[str, int] = await page.evaluate(
        """() => {
            const v = document.getElementById('remote-video');
            return {frames: v.getVideoPlaybackQuality().totalVideoFrames, width: v.videoWidth};
        }"""
    )
    return sample


async def wait_video_flowing(page: Page, frames: int = 30) -> dict[str, int]:
    """Polls the inspector's video until `frames` more frames have been shown at a real size."""
    first = await _video_sample(page)
    base, last = first["frames"], first
    deadline = time.monotonic() + VIDEO_TIMEOUT_S
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        sample = await _video_sample(page)
        if sample["frames"] < last["frames"]:  # the element was given a new stream
            base = sample["frames"]
        last = sample
        if sample["width"] > 0 and sample["frames"] >= base + frames:
            return sample
    raise AssertionError(f"inspector video did not play: first {first}, last {last}")
