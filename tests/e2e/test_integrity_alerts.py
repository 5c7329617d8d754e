"""An auditor sees, on the case search page, every case whose chain holds entries Takan did not
write: the alert names the case and the entries in plain words."""

from __future__ import annotations

import hashlib

from playwright.async_api import Browser, expect

from recorder import layout
from recorder.canonical import canonical_json, parse_json
from recorder.chain import ChainEntry, next_entry
from tests.conftest import LiveServer
from tests.e2e.helpers import TIMEOUT_MS, login


async def test_an_auditor_sees_a_tampered_case_on_the_search_page(
    browser: Browser, live_server: LiveServer
) -> None:
    invite = await live_server.new_inspection()
    case_id = invite["case_id"]
    archive = live_server.services.archive
    await archive.drain()
    storage = archive.storage
    head_key = storage.list(layout.chain_prefix(case_id))[-1]
    head = ChainEntry.from_json(parse_json(storage.get(head_key)))
    forged = next_entry(head, case_id, "chat", head.at, head.clock, {"text": "forged"})
    data = canonical_json(forged.to_json())
    storage.put(layout.chain_entry_key(case_id, forged.seq), data, hashlib.sha256(data).hexdigest())
    status, integrity = await live_server.request(
        "GET", f"/api/cases/{case_id}/integrity", "auditor1"
    )
    assert (status, integrity["state"]) == (200, "broken"), integrity

    context = await browser.new_context(locale="zh-CN", viewport={"width": 1440, "height": 900})
    try:
        page = await context.new_page()
        await login(page, live_server, "auditor1", "/audit")
        alert = page.locator(f"#flagged-list li[data-case-id='{case_id}']")
        await expect(alert).to_be_visible(timeout=TIMEOUT_MS)
        await expect(alert).to_contain_text(f"chain entry {forged.seq}")
        await expect(alert).to_contain_text("not written by Takan")
        await expect(page.locator("#flagged h2")).to_have_text("完整性警报")
    finally:
        await context.close()
