"""The database is an index of the chain: ``takan reindex`` rebuilds a lost one, the integrity
check names every row an insider edited, and a report made afterwards says what the chain says."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

from server.reports.publish import publish_report, read_report
from server.reports.times import ReportTimes
from server.security.passwords import check_password
from server.store.backend import Tx
from server.store.store import open_store
from tests.conftest import (
    USERS,
    LiveServer,
    current_database,
    database_options,
    lose_database,
    running_server,
    user_password,
)
from tests.integration.evidence_helpers import chain, mark_open_items, object_files, publishing
from tests.integration.recorded_case import REPO, flip_byte, record_inspection, takan

FORGED_ENDED_AT = "2020-01-01T00:00:00.000Z"


async def takan_with_stdin(text: str, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server.cli", *args,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(60):
        out, err = await process.communicate(text.encode() + b"\n")
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def wait_for_report(server: LiveServer, inspection_id: str, version: int) -> bytes:
    deadline = time.monotonic() + 120
    while True:
        status, body = await server.request(
            "GET", f"/api/inspections/{inspection_id}/report.html", "auditor1"
        )
        if status == 200:
            latest = await server.services.store.reports.latest(inspection_id)
            if latest is not None and latest["version"] == version:
                return str(body).encode()
        assert status in (200, 202), body
        assert time.monotonic() < deadline, "the report was not generated within 120 s"
        await asyncio.sleep(0.3)


async def conclude(server: LiveServer, inspection_id: str, outcome: str) -> dict[str, Any]:
    """The outcome signed (a pass once the checklist's open items are marked), then its report."""
    if outcome == "pass":
        await mark_open_items(server, inspection_id)
    status, concluded = await server.request(
        "POST",
        f"/api/inspections/{inspection_id}/conclusion",
        "inspector1",
        json={"outcome": outcome, "reason": "现场与申报材料一致"},
    )
    assert status == 201, concluded
    await wait_for_report(server, inspection_id, 1)
    return dict(concluded)


async def case_with_evidence(server: LiveServer) -> str:
    """A building case at a site: a snapshot, an annotation, a mark with its photo, a pass."""
    case = await server.new_case(case_type="建设工程", site_lat=30.2741, site_lon=120.1551)
    case_id = case["case_id"]
    status, invite = await server.request("POST", f"/api/cases/{case_id}/inspections", "inspector1")
    assert status == 201, invite
    inspection_id = invite["inspection_id"]
    async with publishing(server, invite, 320, 240):
        status, snap = await server.request(
            "POST", f"/api/inspections/{inspection_id}/snapshots", "inspector1"
        )
        assert status == 201, snap
        status, annotation = await server.request(
            "POST",
            f"/api/snapshots/{snap['snapshot_id']}/annotations",
            "inspector1",
            json={
                "shapes": [{"type": "box", "x1": 1, "y1": 1, "x2": 9, "y2": 9, "color": "#ff0000"}]
            },
        )
        assert status == 201, annotation
        status, marked = await server.request(
            "POST",
            f"/api/inspections/{inspection_id}/checklist/boundary",
            "inspector1",
            json={"verdict": "pass", "note": "四至清楚", "snapshot_ids": [snap["snapshot_id"]]},
        )
        assert status == 200, marked
        await conclude(server, inspection_id, "pass")
    return str(case_id)


async def what_pages_show(server: LiveServer, case_ids: list[str]) -> dict[str, Any]:
    """Search, the case pages, each inspection's page, checklist, snapshots and report."""
    shown: dict[str, Any] = {}
    status, shown["search"] = await server.request("GET", "/api/cases?limit=200", "auditor1")
    assert status == 200
    for case_id in case_ids:
        status, case = await server.request("GET", f"/api/cases/{case_id}", "auditor1")
        assert status == 200, case
        shown[case_id] = case
        for inspection in case["inspections"]:
            inspection_path = f"/api/inspections/{inspection['inspection_id']}"
            for part in ("", "/checklist", "/snapshots", "/report.html"):
                status, body = await server.request("GET", inspection_path + part, "auditor1")
                shown[inspection_path + part] = (status, body)
    return shown


async def test_a_deleted_database_is_rebuilt_from_the_archive_and_every_case_is_back(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    async with running_server(data) as server:
        with_evidence = await case_with_evidence(server)
        plain = await record_inspection(server, seconds=2)
        await conclude(server, plain["inspection_id"], "fail")
        case_ids = [with_evidence, plain["case_id"]]
        before = await what_pages_show(server, case_ids)
    assert len(before["search"]["cases"]) == 2

    await asyncio.to_thread(lose_database, data)
    code, out, err = await takan("reindex", "--data", str(data), *database_options())
    assert code == 0, out + err
    assert "reindexed 2 of 2 cases" in out, out
    assert "trusted: sha256:" in out, out  # the data directory's key history: the trust root
    assert "not restored: user passwords and sessions" in out, out
    assert "locked accounts made for names the chains cite: inspector1 (inspector)" in out, out
    for name, role in USERS.items():  # the locked inspector1 gets its password back
        code, out, err = await takan_with_stdin(
            user_password(name),
            *("user", "add", name, "--role", role, "--data", str(data), *database_options()),
        )
        assert code == 0, out + err

    async with running_server(data) as server:  # the users exist: they are kept
        after = await what_pages_show(server, case_ids)
        assert after == before
        for case_id in case_ids:
            status, integrity = await server.request(
                "GET", f"/api/cases/{case_id}/integrity", "auditor1"
            )
            assert status == 200, integrity
            assert (integrity["state"], integrity["disagreements"]) == ("verified", []), integrity


async def test_rows_edited_in_the_database_are_named_and_a_new_report_keeps_the_chains_values(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    async with running_server(data) as server:
        recorded = await record_inspection(server, seconds=2)
        case_id, inspection_id = recorded["case_id"], recorded["inspection_id"]
        concluded = await conclude(server, inspection_id, "pass")
        deleted = await record_inspection(server, seconds=0, case_id=case_id)
        tampered = await record_inspection(server, seconds=2)
        status, case = await server.request("GET", f"/api/cases/{case_id}", "auditor1")
        assert status == 200, case

        def edit_rows(tx: Tx) -> None:  # an insider with the database's password
            tx.run(
                "UPDATE inspections SET outcome = 'fail', ended_at = ? WHERE inspection_id = ?",
                (FORGED_ENDED_AT, inspection_id),
            )
            tx.run(
                "UPDATE participants SET display_name = '李四' WHERE inspection_id = ?"
                " AND role = 'applicant'",
                (inspection_id,),
            )
            tx.run(
                "UPDATE cases SET address = '伪造路 1 号', title = '伪造标题',"
                " applicant_name = '李四' WHERE case_id = ?",
                (case_id,),
            )
            tx.run("DELETE FROM inspections WHERE inspection_id = ?", (deleted["inspection_id"],))

        await server.services.store.db.write(edit_rows)

        status, integrity = await server.request(
            "GET", f"/api/cases/{case_id}/integrity", "auditor1"
        )
        assert status == 200, integrity
        assert integrity["state"] == "disagrees", integrity
        assert integrity["inspections"] == {inspection_id: "disagrees"}
        said = "\n".join(d["text"] for d in integrity["disagreements"])
        seq = concluded["chain_seq"]
        [created] = [e.seq for e in await chain(server, case_id) if e.kind == "case_created"]
        for expected in (
            f"database says outcome fail; chain entry {seq} says pass",
            f"database says ended at {FORGED_ENDED_AT}; chain entry",
            "participant 1 (applicant) name '李四'; chain entry",
            f"database says address '伪造路 1 号'; chain entry {created} says '{case['address']}'",
            f"database says title '伪造标题'; chain entry {created} says '新建厂房踏勘'",
            f"database says applicant name '李四'; chain entry {created} says '张三'",
            f"database lacks inspection {deleted['inspection_id']}; chain entry",
        ):
            assert expected in said, (expected, said)

        # A report made now says what the chain says, whatever the rows say.
        report = await publish_report(server.services, inspection_id)
        assert report.version == 2
        html = (await read_report(server.services, report, "html")).decode()
        forged_times = (ReportTimes().local(FORGED_ENDED_AT), ReportTimes.utc(FORGED_ENDED_AT))
        for forged in ("伪造", "李四", *forged_times):
            assert forged not in html, forged
        for chained in ("杭州市西湖区文三路 100 号", "新建厂房踏勘", "张三", "通过"):
            assert chained in html, chained

    # Rebuilding needs --force on a database that holds cases; a case that fails is skipped.
    segment = object_files(server, tampered["case_id"], "/segments/applicant-video/")[0]
    flip_byte(segment, 100)
    code, out, err = await takan("reindex", "--data", str(data), *database_options())
    assert code == 1, out + err
    assert "already holds cases; pass --force" in err
    code, out, err = await takan("reindex", "--data", str(data), *database_options(), "--force")
    assert code == 1, out + err
    assert f"FAILED: case {tampered['case_id']}: " in out, out
    assert "(skipped)" in out, out
    assert "reindexed 1 of 2 cases" in out, out

    store = open_store(current_database(), data)
    try:
        rebuilt = await store.cases.get(case_id)
        assert rebuilt is not None
        assert (rebuilt.title, rebuilt.address, rebuilt.applicant_name) == (
            case["title"],
            case["address"],
            case["applicant_name"],
        )
        inspection = await store.inspections.get(inspection_id)
        assert inspection is not None
        assert inspection.outcome == "pass"
        assert inspection.ended_at == next(
            i["ended_at"] for i in case["inspections"] if i["inspection_id"] == inspection_id
        )
        names = [p["display_name"] for p in await store.participants.of(inspection_id)]
        assert "张三" in names
        assert "李四" not in names
        assert await store.inspections.get(deleted["inspection_id"]) is not None
        assert await store.cases.get(tampered["case_id"]) is None
        user = await store.users.by_name("inspector1")
        assert user is not None
        assert check_password(user_password("inspector1"), user.password_hash)
    finally:
        store.close()
