"""Receipts through the real server: issued at the end, served to who may read them, printed in
the report, and caught by ``takan verify --receipt`` when an insider cuts off the tail."""

from __future__ import annotations

import asyncio
import base64
import json
import stat
import time
from pathlib import Path

import aiohttp

from recorder import layout
from recorder.canonical import canonical_json
from recorder.signing import verify_signature
from server.inspection import receipts
from tests.conftest import LiveServer, running_server
from tests.integration.recorded_case import record_inspection, takan
from tests.tsa_server import LocalTsa, TsaCerts


async def get_raw(
    server: LiveServer, path: str, username: str | None = None, token: str | None = None
) -> tuple[int, dict[str, str], bytes]:
    headers = {}
    if username is not None:
        token = await server.token(username)
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with (
        aiohttp.ClientSession() as http,
        http.get(server.base_url + path, headers=headers) as response,
    ):
        return response.status, dict(response.headers), await response.read()


def invite_token(invite: dict[str, str]) -> str:
    return invite["applicant_url"].rsplit("/", 1)[-1]


def cut_tail(archive: Path, case_id: str, from_seq: int) -> None:
    """Delete chain entries from ``from_seq`` on, every checkpoint signing them and every object
    they record, as an insider with write access to the archive's directory would."""
    case_dir = archive / layout.case_prefix(case_id)
    for path in sorted((case_dir / "chain").iterdir()):
        entry = json.loads(path.read_bytes())
        if entry["seq"] < from_seq:
            continue
        for target in (path, archive / str(entry["body"].get("key", ""))):
            if target.is_file() and target != archive:
                target.parent.chmod(stat.S_IRWXU)
                target.unlink()
    for path in sorted((case_dir / "checkpoints").iterdir()):
        if int(path.stem) >= from_seq:
            path.parent.chmod(stat.S_IRWXU)
            path.unlink()


async def test_receipt_catches_a_tail_cut_off_with_its_checkpoints(
    live_server: LiveServer, tmp_path: Path
) -> None:
    invite = await record_inspection(live_server, seconds=3)
    case_id, inspection_id = invite["case_id"], invite["inspection_id"]
    status, headers, data = await get_raw(
        live_server, f"/api/inspections/{inspection_id}/receipt", "inspector1"
    )
    assert status == 200, data
    assert headers["Content-Type"].startswith("application/json")
    document = json.loads(data)
    receipt = document["receipt"]
    assert canonical_json(document) == data
    assert receipt["case_id"] == case_id
    assert receipt["inspection_id"] == inspection_id
    assert receipt["manifest_key"] == layout.manifest_key(case_id, inspection_id)
    assert receipt["clock"] == "server-system-clock"
    assert "timestamp" not in receipt  # no timestamp authority here
    _, keys = await live_server.request("GET", "/api/keys")
    public_key = base64.b64decode(keys["keys"][0]["public_key"])
    assert receipt["key_fingerprint"] == keys["keys"][0]["fingerprint"]
    signed = canonical_json({"receipt": receipt})
    assert verify_signature(public_key, signed, base64.b64decode(document["signature"]))

    path = tmp_path / "receipt.json"
    path.write_bytes(data)
    data_dir = str(live_server.data_dir)
    code, out, err = await takan("verify", case_id, "--data", data_dir, "--receipt", str(path))
    assert code == 0, out + err
    assert f"{path}: inspection {inspection_id}, chain entry {receipt['chain_head_seq']}" in out

    # The insider removes the manifest's entry and all after it, their checkpoints and objects.
    await live_server.services.archive.drain()
    cut_tail(live_server.data_dir / "archive", case_id, receipt["chain_head_seq"])
    code, out, err = await takan("verify", case_id, "--data", data_dir, "--allow-unsigned-tail")
    assert code == 0, out + err  # alone, the archive looks like a crash's
    code, out, err = await takan(
        "verify", case_id, "--data", data_dir, "--allow-unsigned-tail", "--receipt", str(path)
    )
    assert code == 1, out + err
    assert out.startswith(
        f"FAILED: receipt {path}: chain entry {receipt['chain_head_seq']} is missing; the"
        f" receipt issued {receipt['issued_at']} says the chain reached it"
    ), out


async def test_receipt_is_served_to_its_readers_and_its_applicant_only(
    live_server: LiveServer,
) -> None:
    invite = await live_server.new_inspection()
    other = await live_server.new_inspection()
    path = f"/api/inspections/{invite['inspection_id']}/receipt"
    status, _, body = await get_raw(live_server, path, "inspector1")
    assert status == 409, body
    assert json.loads(body)["error"] == "conflict"
    status, body = await live_server.request(
        "POST", f"/api/inspections/{invite['inspection_id']}/end", "inspector1"
    )
    assert status == 200, body

    status, _, by_inspector = await get_raw(live_server, path, "inspector1")
    assert status == 200, by_inspector
    for username in ("auditor1", "admin1"):
        status, _, body = await get_raw(live_server, path, username)
        assert (status, body) == (200, by_inspector)
    status, _, body = await get_raw(live_server, path, token=invite_token(invite))
    assert (status, body) == (200, by_inspector)  # the same receipt, kept, not issued again

    status, _, body = await get_raw(live_server, path, "inspector2")
    assert status == 403, body
    status, _, body = await get_raw(live_server, path, token=invite_token(other))
    assert status == 403, body
    assert json.loads(body)["reason"] == "this invite is for another inspection"
    status, _, body = await get_raw(live_server, path)
    assert status == 401, body
    status, _, body = await get_raw(live_server, path, token="forged.token")
    assert status == 401, body

    status, headers, svg = await get_raw(live_server, path + "/qr.svg", token=invite_token(invite))
    assert status == 200, svg
    assert headers["Content-Type"] == "image/svg+xml"
    assert headers["X-Takan-QR-Holds"] == "receipt"
    assert 1 <= int(headers["X-Takan-QR-Version"]) <= 25
    assert b"<svg" in svg


async def test_report_prints_the_receipt(live_server: LiveServer) -> None:
    invite = await live_server.new_inspection()
    inspection_id = invite["inspection_id"]
    status, concluded = await live_server.request(
        "POST",
        f"/api/inspections/{inspection_id}/conclusion",
        "inspector1",
        json={"outcome": "fail", "reason": "无人到场"},
    )
    assert status == 201, concluded
    _, _, data = await get_raw(live_server, f"/api/inspections/{inspection_id}/receipt", "auditor1")
    receipt = json.loads(data)
    deadline = time.monotonic() + 120
    while True:
        status, _, html = await get_raw(
            live_server, f"/api/inspections/{inspection_id}/report.html", "inspector1"
        )
        if status == 200:
            break
        assert status == 202, html[:300]
        assert time.monotonic() < deadline, "no report within 120 s"
        await asyncio.sleep(0.3)
    text = html.decode("utf-8")
    assert "存证回执" in text
    assert receipt["signature"] in text
    assert receipt["receipt"]["chain_head"] in text
    assert 'alt="回执二维码"' in text


async def test_receipt_missing_after_a_stop_is_issued_once_even_when_asked_twice_at_once(
    live_server: LiveServer,
) -> None:
    invite = await live_server.new_inspection()
    inspection_id = invite["inspection_id"]
    status, body = await live_server.request(
        "POST", f"/api/inspections/{inspection_id}/end", "inspector1"
    )
    assert status == 200, body
    services = live_server.services
    # As if the server had stopped between signing the manifest and issuing the receipt.
    receipts.receipt_path(services, invite["case_id"], inspection_id).unlink()
    inspection = await services.store.inspections.get(inspection_id)
    assert inspection is not None
    first, second = await asyncio.gather(
        receipts.receipt_of(services, inspection), receipts.receipt_of(services, inspection)
    )
    assert first.to_bytes() == second.to_bytes()
    _, _, served = await get_raw(live_server, f"/api/inspections/{inspection_id}/receipt", "admin1")
    assert served == first.to_bytes()


async def test_receipt_carries_the_manifests_tsa_token_once_it_is_chained(
    tmp_path: Path, local_tsa: LocalTsa, tsa_certs: TsaCerts
) -> None:
    async with running_server(
        tmp_path / "data", tsa_urls=(local_tsa.url,), tsa_cert_files=(tsa_certs.ca,)
    ) as server:
        invite = await record_inspection(server, seconds=0)
        assert server.services.timestamper is not None
        await server.services.timestamper.idle()
        await server.services.archive.drain()
        path = f"/api/inspections/{invite['inspection_id']}/receipt"
        status, _, data = await get_raw(server, path, "auditor1")
        assert status == 200, data
        receipt = json.loads(data)["receipt"]
        stamp = receipt["timestamp"]
        manifest_tsr = f"/inspections/{invite['inspection_id']}/manifest.tsr"
        assert stamp["key"].endswith(manifest_tsr)
        stored = server.services.archive.storage.get(stamp["key"])
        assert base64.b64decode(stamp["token"]) == stored
        status, _, again = await get_raw(server, path, token=invite_token(invite))
        assert (status, again) == (200, data)  # issued again once, then kept

        status, headers, _ = await get_raw(server, path + "/qr.svg", "auditor1")
        assert status == 200
        assert headers["X-Takan-QR-Holds"] == "url-and-sha256"

        receipt_file = tmp_path / "receipt.json"
        receipt_file.write_bytes(data)
        code, out, err = await takan(
            "verify", invite["case_id"], "--data", str(server.data_dir),
            "--tsa-cert", str(tsa_certs.ca), "--receipt", str(receipt_file),
        )  # fmt: skip
        assert code == 0, out + err
        assert "with timestamp token" in out


async def test_a_receipt_states_the_chain_s_times_not_the_database_s(
    live_server: LiveServer,
) -> None:
    """The database is an index: an edited start or end of an inspection does not reach a
    receipt issued after the edit (here, one issued again after the kept one was lost)."""
    invite = await record_inspection(live_server, seconds=2)
    case_id, inspection_id = invite["case_id"], invite["inspection_id"]
    path = f"/api/inspections/{inspection_id}/receipt"
    status, _, data = await get_raw(live_server, path, "inspector1")
    assert status == 200, data
    issued = json.loads(data)["receipt"]
    services = live_server.services
    await live_server.sql(
        "UPDATE inspections SET created_at = ?, ended_at = ? WHERE inspection_id = ?",
        ("2020-01-01T00:00:00.000Z", "2020-01-01T01:00:00.000Z", inspection_id),
    )
    receipts.receipt_path(services, case_id, inspection_id).unlink()
    status, _, data = await get_raw(live_server, path, "inspector1")
    assert status == 200, data
    again = json.loads(data)["receipt"]
    assert (again["started_at"], again["ended_at"]) == (issued["started_at"], issued["ended_at"])
