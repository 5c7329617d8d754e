# ruff: noqa: RUF001 - Chinese text uses full-width punctuation on purpose
"""The recording notice a deployment configures is what the applicant reads before consenting,
and each consent is chained with that notice, its version and its hash."""

from __future__ import annotations

import json
from pathlib import Path

from server.consent_notice import ConsentNotice
from tests.conftest import running_server
from tests.integration.evidence_helpers import chain
from tests.integration.peers import invite_token
from tests.integration.recorded_case import takan
from tests.integration.test_serve_cli import serving
from tests.integration.test_signalling import connect
from tests.s3server import free_port

NOTICE = ConsentNotice.from_json(
    {
        "version": "2026-12-01",
        "agency": {"zh-CN": "榆阳区市场监督管理局", "en": "Yuyang Market Regulation Bureau"},
        "purpose": "核查食品经营许可申请所述的经营场所",
        "retention": "自许可决定之日起保存 30 年",
        "contact": "0912-3456789（工作日 9:00–17:00）",
    }
)


async def test_the_applicant_reads_the_notice_and_the_consent_chains_it(tmp_path: Path) -> None:
    async with running_server(tmp_path / "data", consent_notice=NOTICE) as server:
        invite = await server.new_inspection()
        async with connect(server) as applicant:
            welcome = await applicant.hello(token=invite_token(invite))
            assert welcome["notice"] == {**NOTICE.to_json(), "sha256": NOTICE.sha256}
            assert welcome["notice"]["agency"]["en"] == "Yuyang Market Regulation Bureau"

            # A page that showed another notice is told to read this one; nothing is chained.
            await applicant.send(type="consent", accepted=True, notice_sha256="0" * 64)
            refused = await applicant.expect_error("notice_changed", "consent")
            assert "version 2026-12-01" in refused["reason"]
            await applicant.send(type="consent", accepted=True, notice_sha256="ABC")
            await applicant.expect_error("bad_message", "consent")
            kinds = [e.kind for e in await chain(server, invite["case_id"])]
            assert "consented" not in kinds

            await applicant.send(
                type="consent", accepted=True, lang="zh-CN", notice_sha256=NOTICE.sha256
            )
            await applicant.assert_usable()
        [consented] = [e for e in await chain(server, invite["case_id"]) if e.kind == "consented"]
        assert consented.body["notice_version"] == "2026-12-01"
        assert consented.body["notice_sha256"] == NOTICE.sha256
        assert consented.body["notice"] == NOTICE.to_json()
        status, inspection = await server.request(
            "GET", f"/api/inspections/{invite['inspection_id']}", "inspector1"
        )
        assert status == 200, inspection
        assert inspection["consented_at"] == consented.body["consented_at"]


async def test_the_inspector_is_not_sent_the_notice(tmp_path: Path) -> None:
    async with running_server(tmp_path / "data") as server:
        invite = await server.new_inspection()
        async with connect(server) as inspector:
            welcome = await inspector.hello(
                token=await server.token("inspector1"), inspection_id=invite["inspection_id"]
            )
            assert welcome["role"] == "inspector"
            assert "notice" not in welcome


async def test_takan_serve_shows_a_configured_notice_and_refuses_a_bad_one(tmp_path: Path) -> None:
    good = tmp_path / "notice.json"
    good.write_text(json.dumps(NOTICE.to_json(), ensure_ascii=False), encoding="utf-8")
    data = tmp_path / "data"
    async with serving("--data", str(data), "--port", "0", "--consent-notice", str(good)) as served:
        assert f"recording notice: version 2026-12-01, sha256 {NOTICE.sha256}" in served.text
    async with serving("--data", str(data), "--port", "0") as served:
        assert "recording notice: the generic takan-default-1" in served.text

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**NOTICE.to_json(), "retention": ""}), encoding="utf-8")
    fresh = tmp_path / "fresh"
    for path, named in (
        (bad, "member 'retention' needs its zh-CN text"),
        (tmp_path / "none.json", "No such file"),
    ):
        code, out, err = await takan(
            "serve", "--data", str(fresh), "--port", str(free_port()),
            "--consent-notice", str(path), "--demo-users",
        )  # fmt: skip
        assert code == 2, out + err
        assert f"--consent-notice {path}: " in err, err
        assert named in err, err
        assert not fresh.exists()
