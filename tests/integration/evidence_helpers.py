"""Evidence test helpers: a real publisher (``python -m client publish``) and chain reads."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from recorder import layout
from recorder.canonical import parse_json
from recorder.chain import ChainEntry
from recorder.storage import Storage
from server.live.media.snapshot import is_flowing
from tests.conftest import ApiClient, LiveServer
from tests.soft_authenticator import SoftAuthenticator

REPO = Path(__file__).resolve().parents[2]


async def client_process(*arguments: str) -> asyncio.subprocess.Process:
    """``python -m client ARGUMENTS`` started in the background (its stderr piped)."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "client", *arguments,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


@contextlib.asynccontextmanager
async def publishing(
    server: LiveServer, invite: dict[str, Any], width: int = 640, height: int = 480
) -> AsyncIterator[asyncio.subprocess.Process]:
    """The applicant streams a test picture until the block ends; entered once video flows."""
    process = await client_process(
        "publish", invite["applicant_url"], "--source", "testsrc",
        "--width", str(width), "--height", str(height), "--seconds", "120",
    )  # fmt: skip
    try:
        async with asyncio.timeout(60):
            while True:
                live = server.services.live.get(invite["inspection_id"])
                if live is not None and is_flowing(live.relay.applicant_video):
                    break
                if process.returncode is not None:
                    stderr = await process.stderr.read() if process.stderr else b""
                    raise AssertionError(f"publisher exited: {stderr.decode()}")
                await asyncio.sleep(0.1)
        yield process
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                async with asyncio.timeout(20):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()


async def chain(server: LiveServer, case_id: str) -> list[ChainEntry]:
    total, entries = await server.services.archive.chain_page(case_id, 0, 100_000)
    assert total == len(entries)
    return entries


def stored_entries_of(storage: Storage, case_id: str) -> list[ChainEntry]:
    """The case's chain entries as the archive holds them, in order."""
    keys = storage.list(layout.chain_prefix(case_id))
    return [ChainEntry.from_json(parse_json(storage.get(key))) for key in keys]


async def kinds(server: LiveServer, case_id: str) -> list[str]:
    """The kinds of the case's chain entries, but refused requests (audited on their own)."""
    return [entry.kind for entry in await chain(server, case_id) if entry.kind != "access_denied"]


def object_files(server: LiveServer, case_id: str, part: str) -> list[Path]:
    """Stored or spooled files of the case whose path contains ``part`` (e.g. "/snapshots/")."""
    roots = [server.data_dir / "archive", server.data_dir / "spool" / "objects"]
    return [
        path
        for root in roots
        for path in (root / "cases" / case_id).rglob("*")
        if path.is_file() and part in path.as_posix()
    ]


async def mark_open_items(
    server: ApiClient, inspection_id: str, username: str = "inspector1"
) -> dict[str, Any]:
    """Mark every required item the inspection's checklist still leaves open 不适用
    (``not_applicable``, which needs no photos) through the API, as the inspector would before
    a pass; the checklist as the last answer gives it. Items already marked are left alone."""
    path = f"/api/inspections/{inspection_id}/checklist"
    status, checklist = await server.request("GET", path, username)
    assert status == 200, checklist
    unmarked = [b["item_id"] for b in checklist["blocks_pass"] if b["problem"] == "unmarked"]
    for item_id in unmarked:
        status, checklist = await server.request(
            "POST", f"{path}/{item_id}", username, json={"verdict": "not_applicable"}
        )
        assert status == 200, checklist
    assert checklist["missing"] == [], checklist  # an item marked 符合 is short of photos
    return dict(checklist)


async def conclude_pass(
    server: ApiClient,
    inspection_id: str,
    reason: str = "现场与申报材料一致",
    username: str = "inspector1",
) -> dict[str, Any]:
    """A pass, signed once the checklist's open items are marked (``mark_open_items``)."""
    await mark_open_items(server, inspection_id, username)
    status, concluded = await server.request(
        "POST",
        f"/api/inspections/{inspection_id}/conclusion",
        username,
        json={"outcome": "pass", "reason": reason},
    )
    assert status == 201, concluded
    return dict(concluded)


async def register_passkey(
    server: ApiClient, device: SoftAuthenticator, username: str = "inspector1"
) -> dict[str, Any]:
    """Register ``device`` as ``username``'s passkey through the API, as the dashboard does."""
    status, asked = await server.request("POST", "/api/passkeys/options", username)
    assert status == 200, asked
    answer = device.create(asked["options"])
    status, passkey = await server.request(
        "POST",
        "/api/passkeys",
        username,
        json={"token": asked["token"], "label": "办公电脑", "credential": answer},
    )
    assert status == 201, passkey
    return dict(passkey)


async def sign_conclusion(
    server: ApiClient,
    device: SoftAuthenticator,
    inspection_id: str,
    body: dict[str, Any],
    username: str = "inspector1",
) -> tuple[int, Any]:
    """Conclude with ``device``'s passkey: ask for the challenge, answer it, send both."""
    path = f"/api/inspections/{inspection_id}/conclusion"
    status, asked = await server.request("POST", f"{path}/challenge", username, json=body)
    assert status == 200, asked
    answer = device.get(asked["options"]["challenge"])
    return await server.request(
        "POST", path, username, json={**body, "draft": asked["draft"], "passkey": answer}
    )
