"""RFC 3161 timestamps through a real archive and a real server, against a local TSA
(``openssl ts -reply`` behind aiohttp, tests/tsa_server.py) that tests stop and start."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest

from recorder import layout
from recorder.archive import Archive
from recorder.signing import Signer
from recorder.storage import LocalStorage
from recorder.timestamper import PENDING_DIR, RetryPolicy, Timestamper
from recorder.timestamps import load_tsa_trust
from recorder.tsa_http import HttpTsaClient
from recorder.verify import verify_case
from tests.conftest import LiveServer, running_server
from tests.integration.recorded_case import flip_byte, record_inspection, takan
from tests.tsa_server import LocalTsa, TsaCerts

CASE = "case-ts"
FAST = RetryPolicy(first_s=0.2, max_s=0.5, attempts_before_recording=3)


async def until(condition: Callable[[], Awaitable[bool]], timeout: float = 60) -> None:
    async with asyncio.timeout(timeout):
        while not await condition():
            await asyncio.sleep(0.1)


async def kinds(archive: Archive, case_id: str) -> list[str]:
    """The kinds of the case's chain entries, but the signing key the archive chains first."""
    _, entries = await archive.chain_page(case_id, 0, 100_000)
    return [entry.kind for entry in entries if entry.kind != "signing_key"]


def stored(archive: Archive, prefix: str) -> list[str]:
    return [*archive.storage.list(prefix), *archive.spooled_keys()]


@pytest.fixture
async def archive(tmp_path: Path) -> AsyncIterator[Archive]:
    archive = Archive(
        LocalStorage(tmp_path / "archive"),
        tmp_path / "spool",
        Signer.generate(),
        checkpoint_interval_s=3600,  # the tests checkpoint themselves
    )
    await archive.start()
    try:
        yield archive
    finally:
        await archive.stop()


Stampers = Callable[[Archive, LocalTsa], Timestamper]


@pytest.fixture
async def timestamper() -> AsyncIterator[Stampers]:
    """Makes timestampers (with fast retries) and stops them all at the end."""
    made: list[Timestamper] = []

    def make(archive: Archive, tsa: LocalTsa) -> Timestamper:
        trust = load_tsa_trust([tsa.certs.ca])
        made.append(Timestamper(archive, [tsa.url], HttpTsaClient(), trust, FAST))
        return made[-1]

    yield make
    for stamper in made:
        await stamper.stop(grace_s=0)


# the archive and its timestamper


async def test_a_token_is_chained_and_never_calls_for_another_checkpoint(
    archive: Archive, local_tsa: LocalTsa, timestamper: Stampers
) -> None:
    stamper = timestamper(archive, local_tsa)
    await stamper.start()
    created = await archive.append(CASE, "created", {"title": "x"})
    await archive.checkpoint(CASE)
    await stamper.idle()
    assert await kinds(archive, CASE) == ["created", "timestamp"]
    for _ in range(3):  # the token moved the head; no checkpoint follows, so no token either
        await archive.checkpoint(CASE)
        await stamper.idle()
    await archive.drain()
    assert stored(archive, layout.checkpoint_prefix(CASE)) == [
        layout.checkpoint_key(CASE, created.seq)
    ]
    assert local_tsa.requests == 1
    report = verify_case(archive.storage, CASE, tsa_trust=load_tsa_trust([local_tsa.certs.ca]))
    assert [(t.stamps, t.checked) for t in report.timestamps] == [
        (f"checkpoint {created.seq:012d}", True)
    ]
    assert report.unsigned_timestamps == 1
    await stamper.stop()


async def test_what_is_signed_before_the_timestamper_starts_is_stamped_once_it_does(
    archive: Archive, local_tsa: LocalTsa, timestamper: Stampers
) -> None:
    stamper = timestamper(archive, local_tsa)  # listening, not yet started (recovery runs now)
    await archive.append(CASE, "recovered", {"how": "moved"})
    await archive.checkpoint(CASE)
    assert await kinds(archive, CASE) == ["recovered"]
    await stamper.start()
    await stamper.idle()
    assert await kinds(archive, CASE) == ["recovered", "timestamp"]
    await stamper.stop()


async def test_a_tsa_that_is_down_delays_no_checkpoint_and_its_outage_is_chained(
    archive: Archive, local_tsa: LocalTsa, timestamper: Stampers
) -> None:
    await local_tsa.stop()
    stamper = timestamper(archive, local_tsa)
    await stamper.start()
    created = await archive.append(CASE, "created", {"title": "x"})
    await archive.checkpoint(CASE)  # returns while the TSA is unreachable
    assert layout.checkpoint_key(CASE, created.seq) in stored(
        archive, layout.checkpoint_prefix(CASE)
    )

    async def outage_chained() -> bool:
        return "timestamp_failed" in await kinds(archive, CASE)

    await until(outage_chained)
    await archive.checkpoint(CASE)  # signs the failure entry: stamped once the TSA is back
    assert await kinds(archive, CASE) == ["created", "timestamp_failed"]
    await local_tsa.start()
    await stamper.idle()
    chain = await kinds(archive, CASE)
    assert chain[:2] == ["created", "timestamp_failed"]
    assert sorted(chain[2:]) == ["timestamp", "timestamp", "timestamp_resumed"]
    await archive.checkpoint(CASE)  # signs timestamp_resumed, whose checkpoint is stamped too
    await stamper.idle()
    await archive.drain()
    report = verify_case(archive.storage, CASE, tsa_trust=load_tsa_trust([local_tsa.certs.ca]))
    assert len(report.timestamps) == 3
    assert report.timestamp_failures == 1
    await stamper.stop()


async def test_requests_left_pending_by_a_stop_are_taken_up_by_the_next_start(
    archive: Archive, local_tsa: LocalTsa, timestamper: Stampers
) -> None:
    await local_tsa.stop()
    first = timestamper(archive, local_tsa)
    await first.start()
    created = await archive.append(CASE, "created", {"title": "x"})
    await archive.checkpoint(CASE)
    await until(lambda: asyncio.to_thread(lambda: any(first.pending_dir.rglob("*.json"))))
    await first.stop(grace_s=0)
    pending = sorted(p for p in (archive.spool_root / PENDING_DIR).rglob("*") if p.is_file())
    assert len(pending) == 1
    assert json.loads(pending[0].read_bytes())["document"] == layout.checkpoint_key(
        CASE, created.seq
    )

    await local_tsa.start()
    second = timestamper(archive, local_tsa)
    await second.start()
    await second.idle()
    assert "timestamp" in await kinds(archive, CASE)
    assert not any(p.is_file() for p in (archive.spool_root / PENDING_DIR).rglob("*"))
    await second.stop()


# through the real server


async def verify_cli(server: LiveServer, case_id: str, *extra: str) -> tuple[int, str]:
    code, out, err = await takan("verify", case_id, "--data", str(server.data_dir), *extra)
    return code, out + err


async def test_an_inspection_recorded_with_a_tsa_has_tokens_takan_verify_accepts_and_reports(
    tmp_path: Path, local_tsa: LocalTsa, tsa_certs: TsaCerts
) -> None:
    async with running_server(
        tmp_path / "data", tsa_urls=(local_tsa.url,), tsa_cert_files=(tsa_certs.ca,)
    ) as server:
        invite = await record_inspection(server)
        assert server.services.timestamper is not None
        await server.services.timestamper.idle()
        await server.services.archive.drain()
        case_id = invite["case_id"]
        code, out = await verify_cli(server, case_id, "--tsa-cert", str(tsa_certs.ca))
        assert code == 0, out
        assert "(all checked against --tsa-cert)" in out
        assert f"manifest {invite['inspection_id']} at 20" in out
        assert "Z by CN=Test TSA" in out
        code, out = await verify_cli(server, case_id)
        assert code == 0, out
        assert "NOT CHECKED: no --tsa-cert for its issuer CN=Test Root CA" in out

        tokens = server.services.archive.storage.list(f"cases/{case_id}/timestamps/")
        assert any(key.endswith("/manifest.tsr") for key in tokens)
        status, integrity = await server.request(
            "GET", f"/api/cases/{case_id}/integrity", "auditor1"
        )
        assert (status, integrity["state"]) == (200, "verified"), integrity
        status, listed = await server.request("GET", f"/api/cases/{case_id}/objects", "auditor1")
        relative = tokens[0].removeprefix(f"cases/{case_id}/")
        assert relative in listed["objects"]
        headers = {"Authorization": f"Bearer {await server.token('auditor1')}"}
        async with (
            aiohttp.ClientSession() as http,
            http.get(
                f"{server.base_url}/api/cases/{case_id}/objects/{relative}", headers=headers
            ) as response,
        ):  # the replay page hashes it like any recorded object
            assert response.status == 200
            assert response.content_type == "application/timestamp-reply"
            assert await response.read() == server.services.archive.storage.get(tokens[0])
        flip_byte(server.data_dir / "archive" / tokens[0], -5)
        code, out = await verify_cli(server, case_id, "--tsa-cert", str(tsa_certs.ca))
        assert code == 1
        assert out.startswith(f"FAILED: {tokens[0]}: ")


async def test_a_tsa_down_while_recording_loses_nothing_and_tokens_arrive_when_it_returns(
    tmp_path: Path, local_tsa: LocalTsa, tsa_certs: TsaCerts
) -> None:
    await local_tsa.stop()
    async with running_server(
        tmp_path / "data",
        tsa_urls=(local_tsa.url,),
        tsa_cert_files=(tsa_certs.ca,),
        tsa_retry_max_s=0.5,
    ) as server:
        archive = server.services.archive
        invite = await record_inspection(server, seconds=4)
        case_id = invite["case_id"]

        async def outage_chained() -> bool:
            return "timestamp_failed" in await kinds(archive, case_id)

        await until(outage_chained)
        await archive.checkpoint(case_id)
        await archive.drain()
        code, out = await verify_cli(server, case_id)  # every segment, signed, no token
        assert code == 0, out
        assert "timestamps   0" in out
        assert "TSA outages  1" in out
        assert layout.manifest_key(case_id, invite["inspection_id"]) in archive.storage.list(
            layout.case_prefix(case_id)
        )

        await local_tsa.start()
        assert server.services.timestamper is not None
        await server.services.timestamper.idle()
        assert "timestamp_resumed" in await kinds(archive, case_id)
        await archive.checkpoint(case_id)
        await server.services.timestamper.idle()
        await archive.drain()
        code, out = await verify_cli(server, case_id, "--tsa-cert", str(tsa_certs.ca))
        assert code == 0, out
        assert "(all checked against --tsa-cert)" in out
        assert f"manifest {invite['inspection_id']} at 20" in out
