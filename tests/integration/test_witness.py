"""Witness push through the real server: a small aiohttp witness on loopback gets every signed
checkpoint and receipt of a recorded inspection, in order, also after being down, also across a
server restart."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from recorder import layout
from recorder.canonical import canonical_json
from tests.conftest import LiveServer, running_server
from tests.integration.recorded_case import record_inspection, takan

DELIVERY_TIMEOUT_S = 120  # generous for a busy machine; never a timing assertion


@dataclass
class Witness:
    """Accepts (2xx) or refuses (503) every POST; keeps what it accepted, in arrival order."""

    port: int
    accepting: bool = True
    accepted: list[dict[str, Any]] = field(default_factory=list)
    refused: int = 0
    refused_once: asyncio.Event = field(default_factory=asyncio.Event)
    runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/witness"

    async def receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        if not self.accepting:
            self.refused += 1
            self.refused_once.set()
            return web.json_response({"error": "busy"}, status=503)
        payload = json.loads(body)
        assert canonical_json(payload) == body  # the body is canonical JSON
        assert request.content_type == "application/json"
        self.accepted.append(payload)
        return web.json_response({"ok": True}, status=201)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/witness", self.receive)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port, reuse_address=True).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    def of_case(self, case_id: str) -> list[tuple[str, dict[str, Any]]]:
        return [(p["kind"], p["document"]) for p in self.accepted if p["case_id"] == case_id]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
async def witness() -> AsyncIterator[Witness]:
    witness = Witness(free_port())
    await witness.start()
    yield witness
    await witness.stop()


def stored_checkpoints(data_dir: Path, case_id: str) -> list[dict[str, Any]]:
    directory = data_dir / "archive" / layout.checkpoint_prefix(case_id)
    return [json.loads(p.read_bytes()) for p in sorted(directory.iterdir())]


async def served_receipt(server: LiveServer, inspection_id: str) -> dict[str, Any]:
    status, receipt = await server.request(
        "GET", f"/api/inspections/{inspection_id}/receipt", "auditor1"
    )
    assert status == 200, receipt
    return dict(receipt)


async def delivered(server: LiveServer) -> None:
    async with asyncio.timeout(DELIVERY_TIMEOUT_S):
        await server.services.archive.drain()
        await server.services.witness.delivered()


def assert_everything_in_order(
    witness: Witness, data_dir: Path, case_id: str, receipt: dict[str, Any]
) -> None:
    """The witness holds every stored checkpoint of the case in seq order, and the receipt once
    the checkpoint covering the receipted head had come."""
    got = witness.of_case(case_id)
    checkpoints = [document for kind, document in got if kind == "checkpoint"]
    assert checkpoints == stored_checkpoints(data_dir, case_id)
    seqs = [c["checkpoint"]["seq"] for c in checkpoints]
    assert seqs == sorted(seqs)
    kinds = [kind for kind, _ in got]
    assert kinds.count("receipt") == 1
    position = kinds.index("receipt")
    assert got[position][1] == receipt
    covering = [c for c in checkpoints[:position] if c["checkpoint"]["seq"] >= receipt_seq(receipt)]
    assert covering, "the receipt came before the checkpoint that covers its head"


def receipt_seq(receipt: dict[str, Any]) -> int:
    seq: int = receipt["receipt"]["chain_head_seq"]
    return seq


async def test_witness_gets_every_checkpoint_and_receipt_in_order(
    witness: Witness, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    async with running_server(data_dir, witnesses=(witness.url,)) as server:
        invite = await record_inspection(server, seconds=3)
        await delivered(server)
        receipt = await served_receipt(server, invite["inspection_id"])
        assert_everything_in_order(witness, data_dir, invite["case_id"], receipt)
        public_key = base64.b64decode(witness.accepted[0]["public_key"])
        assert public_key == server.services.archive.signer.public_key_bytes
        assert {p["takan_witness"] for p in witness.accepted} == {1}


async def test_witness_that_answers_503_for_a_while_gets_everything_afterwards(
    witness: Witness, tmp_path: Path
) -> None:
    witness.accepting = False
    data_dir = tmp_path / "data"
    async with running_server(data_dir, witnesses=(witness.url,)) as server:
        invite = await record_inspection(server, seconds=3)  # recording does not wait for it
        await witness.refused_once.wait()
        assert witness.accepted == []
        assert server.services.witness.pending() > 0
        witness.accepting = True
        await delivered(server)
        receipt = await served_receipt(server, invite["inspection_id"])
        assert_everything_in_order(witness, data_dir, invite["case_id"], receipt)
    code, out, err = await takan("verify", invite["case_id"], "--data", str(data_dir))
    assert code == 0, out + err  # nothing was lost meanwhile
    assert "segments     0," not in out


async def test_witness_that_refuses_connections_gets_everything_once_it_listens(
    tmp_path: Path,
) -> None:
    witness = Witness(free_port())  # nothing listens on its port yet
    data_dir = tmp_path / "data"
    async with running_server(data_dir, witnesses=(witness.url,)) as server:
        invite = await record_inspection(server, seconds=3)
        assert server.services.witness.pending() > 0
        await witness.start()
        try:
            await delivered(server)
            receipt = await served_receipt(server, invite["inspection_id"])
            assert_everything_in_order(witness, data_dir, invite["case_id"], receipt)
        finally:
            await witness.stop()


async def test_restarted_server_delivers_what_the_witness_had_not_accepted(
    witness: Witness, tmp_path: Path
) -> None:
    witness.accepting = False
    data_dir = tmp_path / "data"
    async with running_server(data_dir, witnesses=(witness.url,)) as server:
        invite = await record_inspection(server, seconds=0)
        await witness.refused_once.wait()
        receipt = await served_receipt(server, invite["inspection_id"])
    queued = list((data_dir / "spool" / "witness").rglob("*.json"))
    assert queued, "nothing was left queued in the spool"
    assert witness.accepted == []

    witness.accepting = True
    async with running_server(data_dir, witnesses=(witness.url,)) as server:
        await delivered(server)
        assert_everything_in_order(witness, data_dir, invite["case_id"], receipt)
    assert list((data_dir / "spool" / "witness").rglob("*.json")) == []
