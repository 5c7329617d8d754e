"""The inspector's and the applicant's pages on ``takan cluster``, through its one URL: the node
running their inspection is killed with SIGKILL, and both pages come back on another node, the
inspector seeing the applicant's video again and the recording going on."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time

import pytest
from playwright.async_api import Browser, Page, expect

from tests.e2e.helpers import TIMEOUT_MS, record_console, wait_video_flowing
from tests.e2e.test_browser_live import _applicant_context, _inspector_context
from tests.integration.test_cluster import Cluster, cluster_of_three, entries_of

pytestmark = [pytest.mark.browser, pytest.mark.single_engine]  # the cluster's own PostgreSQL
RESUME_TIMEOUT_MS = 45_000


async def sign_in(page: Page, cluster: Cluster, username: str) -> None:
    await page.goto(f"{cluster.base_url}/login")
    await page.fill("#username", username)
    await page.fill("#password", cluster.passwords[username])
    await page.click("#login-submit")
    await page.wait_for_url(re.compile(r"/(cases|dashboard)(\?|$)"), timeout=TIMEOUT_MS)


async def test_both_pages_come_back_on_another_node_when_theirs_is_killed(
    browser: Browser,
) -> None:
    async with cluster_of_three() as cluster:
        status, _ = await cluster.request(
            "POST", "/api/cases", "inspector",
            json={"case_id": "CLUSTER-PAGES-1", "title": "厂房", "address": "杭州"},
        )  # fmt: skip
        assert status == 201
        status, invite = await cluster.request(
            "POST", "/api/cases/CLUSTER-PAGES-1/inspections", "inspector"
        )
        assert status == 201, invite
        console: list[str] = []
        inspector_context = await _inspector_context(browser)
        applicant_context = await _applicant_context(browser)
        try:
            inspector = await inspector_context.new_page()
            record_console(inspector, console, "inspector")
            await sign_in(inspector, cluster, "inspector")
            await inspector.goto(f"{cluster.base_url}/inspect/{invite['inspection_id']}")
            body = inspector.locator("body")
            await expect(body).to_have_attribute("data-conn", "joined", timeout=TIMEOUT_MS)
            applicant = await applicant_context.new_page()
            record_console(applicant, console, "applicant")
            await applicant.goto(invite["applicant_url"])
            await applicant.click("#consent-accept", timeout=TIMEOUT_MS)
            await expect(applicant.locator("#screen-live")).to_be_visible(timeout=TIMEOUT_MS)
            await wait_video_flowing(inspector)

            os.kill(cluster.node_pids[invite["node"]], signal.SIGKILL)
            killed = time.monotonic()
            await expect(body).not_to_have_attribute("data-conn", "joined", timeout=TIMEOUT_MS)
            await expect(body).to_have_attribute("data-conn", "joined", timeout=RESUME_TIMEOUT_MS)
            await wait_video_flowing(inspector)
            print(f"both pages back, video playing, {time.monotonic() - killed:.1f} s after")
            await expect(applicant.locator("#screen-live")).to_be_visible()
            # Ended (asked of any node, done by the one running it): its segments close.
            status, ended = await cluster.request(
                "POST", f"/api/inspections/{invite['inspection_id']}/end", "inspector"
            )
            assert status == 200, ended
        finally:
            print("\n".join(console))  # shown by pytest when the test fails
            await applicant_context.close()
            await inspector_context.close()
        # What the new node recorded is chained after the loss.
        deadline = time.monotonic() + 30
        while True:
            entries = await entries_of(cluster, invite["inspection_id"], "CLUSTER-PAGES-1")
            [loss] = [e for e in entries if e["kind"] == "node_lost"]
            after = [e for e in entries if e["kind"] == "segment" and e["seq"] > loss["seq"]]
            if "applicant-video" in {e["body"]["track"] for e in after}:
                break
            if time.monotonic() > deadline:
                print([(e["seq"], e["kind"], e["body"].get("track")) for e in entries])
                raise AssertionError("no segment of the new node's recording within 30 s")
            await asyncio.sleep(0.5)
        assert (loss["body"]["node"], loss["body"]["epoch"]) == (invite["node"], 2)
