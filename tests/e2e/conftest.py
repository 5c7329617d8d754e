"""Chromium for the browser tests: started once per session, driven over CDP by each test.

The live server runs in each test's own event loop, and a Playwright connection is bound to the
loop it was made in; so the session owns the Chromium *process* (a plain subprocess with fake
camera and microphone) and every test connects to it with its own Playwright driver. The
Playwright download is never used: the system Chromium is.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, async_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = (
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)


@pytest.fixture(scope="session")
def chromium_endpoint() -> Iterator[str]:
    """The CDP URL of one headless Chromium shared by the session's browser tests."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed")
    profile = Path(tempfile.mkdtemp(prefix="takan-chromium-"))
    process = subprocess.Popen(
        [
            CHROMIUM,
            "--headless",
            "--remote-debugging-port=0",
            "--remote-debugging-address=127.0.0.1",
            f"--user-data-dir={profile}",
            "--no-default-browser-check",
            "--disable-background-timer-throttling",
            "--disable-renderer-backgrounding",
            "--disable-backgrounding-occluded-windows",
            *CHROMIUM_ARGS,
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            if process.poll() is not None:
                pytest.fail(f"Chromium exited at start with code {process.returncode}")
            if time.monotonic() > deadline:
                pytest.fail("Chromium did not open its DevTools port within 30 s")
            time.sleep(0.05)
        port = int(port_file.read_text().splitlines()[0])
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
async def browser(chromium_endpoint: str) -> AsyncIterator[Browser]:
    """The shared Chromium, connected in this test's event loop; its contexts go with the test."""
    async with async_playwright() as playwright:
        connected = await playwright.chromium.connect_over_cdp(chromium_endpoint)
        try:
            yield connected
        finally:
            for context in connected.contexts[1:]:  # the first is Chromium's default context
                with contextlib.suppress(Exception):
                    await context.close()
            await connected.close()


@pytest.fixture
async def desktop(browser: Browser) -> AsyncIterator[BrowserContext]:
    """A desktop-sized zh-CN browser context, closed with the test."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    try:
        yield context
    finally:
        await context.close()
