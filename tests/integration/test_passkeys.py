# ruff: noqa: RUF001 - Chinese text uses full-width punctuation on purpose
"""An inspector registers a passkey and signs the conclusion with it: the server checks the
signature, chains the credential before its first use in the case, and takan verify checks the
signature offline and names the signer; a deployment can require it, or have none."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from recorder.conclusion import Conclusion
from recorder.errors import IntegrityError
from recorder.passkey import b64url, from_b64url
from recorder.storage import LocalStorage
from recorder.verify import verify_case
from server.cli.verify import format_report
from tests.conftest import LiveServer, running_server
from tests.integration.evidence_helpers import (
    chain,
    mark_open_items,
    register_passkey,
    sign_conclusion,
)
from tests.soft_authenticator import SoftAuthenticator


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[LiveServer]:
    async with running_server(tmp_path / "data", host_name="localhost") as live:
        yield live


def device_for(server: LiveServer) -> SoftAuthenticator:
    return SoftAuthenticator(server.base_url, "localhost")


async def ready_to_conclude(server: LiveServer) -> tuple[SoftAuthenticator, dict[str, Any]]:
    """inspector1 with a registered passkey, and an inspection whose checklist allows a pass."""
    device = device_for(server)
    await register_passkey(server, device)
    inspection = await server.new_inspection()
    await mark_open_items(server, inspection["inspection_id"])
    return device, inspection


PASS = {"outcome": "pass", "reason": "现场与申报材料一致"}


async def report_html(server: LiveServer, signed: dict[str, Any]) -> str:
    async with asyncio.timeout(120):
        while True:
            status, html = await server.request("GET", signed["report_html_url"], "auditor1")
            if status == 200:
                return str(html)
            assert status in (202, 409), html
            await asyncio.sleep(0.3)


async def archived(server: LiveServer, case_id: str) -> LocalStorage:
    await server.services.archive.drain()
    await server.services.archive.checkpoint(case_id)
    await server.services.archive.drain()
    return LocalStorage(server.data_dir / "archive")


async def test_an_inspector_signs_the_conclusion_with_a_passkey_and_verify_names_them(
    server: LiveServer,
) -> None:
    device = device_for(server)
    status, before = await server.request("GET", "/api/passkeys", "inspector1")
    assert status == 200
    assert (before["mode"], before["available"], before["passkeys"]) == ("optional", True, [])
    passkey = await register_passkey(server, device)
    assert passkey["label"] == "办公电脑"
    assert passkey["fingerprint"].startswith("sha256:")
    status, listed = await server.request("GET", "/api/passkeys", "inspector1")
    assert [p["credential_id"] for p in listed["passkeys"]] == [passkey["credential_id"]]

    inspection = await server.new_inspection()
    await mark_open_items(server, inspection["inspection_id"])
    status, signed = await sign_conclusion(server, device, inspection["inspection_id"], PASS)
    assert status == 201, signed
    assert signed["inspector_signature"] == {
        "username": "inspector1",
        "credential_id": passkey["credential_id"],
        "fingerprint": passkey["fingerprint"],
        "user_verified": True,
    }
    entries = await chain(server, inspection["case_id"])
    kinds = [e.kind for e in entries]
    enrolled = entries[kinds.index("passkey_enrolled")]
    conclusion = entries[kinds.index("conclusion")]
    assert enrolled.seq < conclusion.seq
    assert enrolled.body["username"] == "inspector1"
    assert conclusion.body["passkey"]["credential_id"] == passkey["credential_id"]
    assert conclusion.body["passkey_mode"] == "optional"
    assert conclusion.body["signature"]  # the archive key countersigns

    report = verify_case(await archived(server, inspection["case_id"]), inspection["case_id"])
    [by] = report.inspector_signatures
    assert (by.seq, by.username, by.fingerprint) == (
        conclusion.seq,
        "inspector1",
        passkey["fingerprint"],
    )
    assert f"signed by inspector1's passkey {passkey['fingerprint']}" in format_report(report)
    html = await report_html(server, signed)
    assert "<th>踏勘人员签名</th>" in html
    assert "inspector1 以通行密钥（WebAuthn, ES256）签署，已验证本人（指纹或 PIN）" in html
    assert passkey["fingerprint"] in html

    # A second inspection of the same case: the passkey is not enrolled again.
    status, again = await server.request(
        "POST", f"/api/cases/{inspection['case_id']}/inspections", "inspector1"
    )
    assert status == 201, again
    await mark_open_items(server, again["inspection_id"])
    status, signed = await sign_conclusion(server, device, again["inspection_id"], PASS)
    assert status == 201, signed
    kinds = [e.kind for e in await chain(server, inspection["case_id"])]
    assert kinds.count("passkey_enrolled") == 1
    assert kinds.count("conclusion") == 2


async def test_a_signature_that_does_not_check_is_refused_and_nothing_is_chained(
    server: LiveServer,
) -> None:
    device, inspection = await ready_to_conclude(server)
    path = f"/api/inspections/{inspection['inspection_id']}/conclusion"
    status, asked = await server.request("POST", f"{path}/challenge", "inspector1", json=PASS)
    assert status == 200, asked
    assert asked["conclusion"]["outcome"] == "pass"
    answer = device.get(asked["options"]["challenge"])
    forged = copy.deepcopy(answer)
    raw = bytearray(from_b64url(forged["response"]["signature"], "signature"))
    raw[8] ^= 1
    forged["response"]["signature"] = b64url(bytes(raw))
    status, refused = await server.request(
        "POST", path, "inspector1", json={**PASS, "draft": asked["draft"], "passkey": forged}
    )
    assert (status, refused["error"]) == (400, "passkey_refused"), refused
    # The challenge is used once: even the genuine answer must ask again.
    status, used = await server.request(
        "POST", path, "inspector1", json={**PASS, "draft": asked["draft"], "passkey": answer}
    )
    assert (status, used["error"]) == (409, "conflict"), used
    # A passkey's answer for another conclusion than the body states is refused.
    status, asked = await server.request("POST", f"{path}/challenge", "inspector1", json=PASS)
    answer = device.get(asked["options"]["challenge"])
    other = {"outcome": "fail", "reason": "另有说法"}
    status, mismatch = await server.request(
        "POST", path, "inspector1", json={**other, "draft": asked["draft"], "passkey": answer}
    )
    assert (status, mismatch["error"]) == (409, "conflict"), mismatch
    assert "another conclusion" in mismatch["reason"]
    kinds = [e.kind for e in await chain(server, inspection["case_id"])]
    assert "conclusion" not in kinds
    assert "passkey_enrolled" not in kinds


async def test_another_inspectors_passkey_or_a_phished_origin_cannot_sign(
    server: LiveServer,
) -> None:
    mine, theirs = device_for(server), device_for(server)
    await register_passkey(server, mine, "inspector1")
    await register_passkey(server, theirs, "inspector2")
    inspection = await server.new_inspection()
    await mark_open_items(server, inspection["inspection_id"])
    status, refused = await sign_conclusion(server, theirs, inspection["inspection_id"], PASS)
    assert (status, refused["error"]) == (404, "not_found"), refused
    phished = SoftAuthenticator(
        "http://localhost.evil.example", "localhost", key=mine.key, credential_id=mine.credential_id
    )
    phished.sign_count = 50
    status, refused = await sign_conclusion(server, phished, inspection["inspection_id"], PASS)
    assert (status, refused["error"]) == (400, "passkey_refused"), refused


async def test_registration_input_is_checked(server: LiveServer) -> None:
    status, asked = await server.request("POST", "/api/passkeys/options", "inspector1")
    assert status == 200, asked
    assert asked["options"]["rp"]["id"] == "localhost"
    assert [p["alg"] for p in asked["options"]["pubKeyCredParams"]] == [-7]  # ES256 only
    answer = device_for(server).create(asked["options"])
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"token": asked["token"], "credential": answer}, 400, "field 'label' is required"),
        (
            {"token": asked["token"], "label": "x" * 61, "credential": answer},
            400,
            "at most 60 characters",
        ),
        ({"token": asked["token"], "label": "手机", "credential": "no"}, 400, "field 'credential'"),
        (
            {"token": "forged", "label": "手机", "credential": answer},
            409,
            "unknown, used or expired",
        ),
        ({"token": asked["token"], "label": "手机", "credential": answer, "x": 1}, 400, "'x'"),
    ]
    for body, want_status, words in cases:
        status, refused = await server.request("POST", "/api/passkeys", "inspector1", json=body)
        assert status == want_status, (body, refused)
        assert words in refused["reason"], refused
    # An answer made for another challenge fails the ceremony.
    status, fresh = await server.request("POST", "/api/passkeys/options", "inspector1")
    status, refused = await server.request(
        "POST",
        "/api/passkeys",
        "inspector1",
        json={"token": fresh["token"], "label": "手机", "credential": answer},
    )
    assert (status, refused["error"]) == (400, "passkey_refused"), refused


async def test_a_deployment_that_requires_passkeys_refuses_a_conclusion_without_one(
    tmp_path: Path,
) -> None:
    async with running_server(tmp_path / "data", host_name="localhost", passkeys="required") as s:
        inspection = await s.new_inspection()
        await mark_open_items(s, inspection["inspection_id"])
        path = f"/api/inspections/{inspection['inspection_id']}/conclusion"
        status, refused = await s.request("POST", path, "inspector1", json=PASS)
        assert (status, refused["error"]) == (409, "passkey_required"), refused
        status, asked = await s.request("POST", f"{path}/challenge", "inspector1", json=PASS)
        assert status == 409
        assert "register one" in asked["reason"]
        device = device_for(s)
        await register_passkey(s, device)
        status, signed = await sign_conclusion(s, device, inspection["inspection_id"], PASS)
        assert status == 201, signed
        assert signed["passkey_mode"] == "required"


async def test_a_deployment_reached_by_ip_address_says_why_it_has_no_passkeys(
    live_server: LiveServer,
) -> None:
    status, answer = await live_server.request("GET", "/api/passkeys", "inspector1")
    assert status == 200
    assert answer["available"] is False
    assert "not the IP address 127.0.0.1" in answer["unavailable_reason"]
    status, refused = await live_server.request("POST", "/api/passkeys/options", "inspector1")
    assert (status, refused["error"]) == (409, "conflict")
    # Conclusions are signed by the archive key alone, and say the deployment's mode.
    inspection = await live_server.new_inspection()
    await mark_open_items(live_server, inspection["inspection_id"])
    status, signed = await live_server.request(
        "POST",
        f"/api/inspections/{inspection['inspection_id']}/conclusion",
        "inspector1",
        json=PASS,
    )
    assert status == 201, signed
    assert signed["inspector_signature"] is None
    html = await report_html(live_server, signed)
    assert "未签署：该人员未以通行密钥签署，结论仅由服务器存证密钥签名" in html


async def test_verify_refuses_a_conclusion_whose_passkey_signature_was_changed(
    server: LiveServer,
) -> None:
    device, inspection = await ready_to_conclude(server)
    status, signed = await sign_conclusion(server, device, inspection["inspection_id"], PASS)
    assert status == 201, signed
    storage = await archived(server, inspection["case_id"])
    verify_case(storage, inspection["case_id"])
    # Someone holding the server and its archive key chains a "fail" beside the inspector's
    # passkey answer for the "pass": the archive signs it, the passkey did not.
    entries = await chain(server, inspection["case_id"])
    genuine = next(e for e in entries if e.kind == "conclusion")
    forged = Conclusion.from_body({**genuine.body, "outcome": "fail", "refers_to": genuine.seq})
    body = {
        **genuine.body,
        **forged.signed_body(server.services.archive.signer),
    }
    entry = await server.services.archive.append(inspection["case_id"], "conclusion", body)
    storage = await archived(server, inspection["case_id"])
    with pytest.raises(IntegrityError) as caught:
        verify_case(storage, inspection["case_id"])
    assert caught.value.where == f"chain entry {entry.seq}"
    assert "the passkey signed another challenge than this conclusion's" in str(caught.value)
