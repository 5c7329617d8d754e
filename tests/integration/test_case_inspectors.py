"""Two staff, not one (《行政许可法》第三十四条): a case names its inspectors; any of them opens,
joins and runs its inspections; each assignment is chained, and the report lists them all."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.conftest import (
    LiveServer,
    database_options,
    lose_database,
    running_server,
    user_password,
)
from tests.integration.evidence_helpers import chain
from tests.integration.peers import join
from tests.integration.recorded_case import takan
from tests.integration.test_reindex import (
    conclude,
    takan_with_stdin,
    wait_for_report,
)
from tests.integration.test_rest_api import assert_error


async def two_staff_case(server: LiveServer, **fields: Any) -> dict[str, Any]:
    return await server.new_case("inspector1", inspectors=["inspector2"], **fields)


async def test_a_case_names_two_inspectors_and_either_runs_its_inspection(
    live_server: LiveServer,
) -> None:
    case = await two_staff_case(live_server)
    assert case["inspectors"] == ["inspector1", "inspector2"]
    case_id = case["case_id"]
    for name in ("inspector1", "inspector2"):
        status, page = await live_server.request("GET", "/api/cases", name)
        assert status == 200, page
        assert [c["case_id"] for c in page["cases"]] == [case_id], name
        status, shown = await live_server.request("GET", f"/api/cases/{case_id}", name)
        assert status == 200, shown
        assert shown["inspectors"] == ["inspector1", "inspector2"]

    # The second inspector opens the inspection; both join it live.
    status, invite = await live_server.request(
        "POST", f"/api/cases/{case_id}/inspections", "inspector2"
    )
    assert status == 201, invite
    joined = []
    try:
        for name in ("inspector2", "inspector1"):
            peer = await join(
                live_server.ws_url,
                token=await live_server.token(name),
                inspection_id=invite["inspection_id"],
            )
            joined.append(peer)
            assert peer.welcome["type"] == "welcome", peer.welcome
    finally:
        for peer in joined:
            await peer.close()
    status, inspection = await live_server.request(
        "GET", f"/api/inspections/{invite['inspection_id']}", "inspector1"
    )
    assert status == 200, inspection
    assert inspection["inspectors"] == ["inspector1", "inspector2"]

    entries = await chain(live_server, case_id)
    [created] = [e for e in entries if e.kind == "case_created"]
    assert created.body["inspectors"] == ["inspector1", "inspector2"]
    assert created.body["by"] == "inspector1"
    names = [e.body["name"] for e in entries if e.kind == "joined"]
    assert names == ["inspector2", "inspector1"]

    # The report of the concluded inspection names both.
    status, _ = await live_server.request(
        "POST", f"/api/inspections/{invite['inspection_id']}/end", "inspector2"
    )
    assert status == 200
    await conclude(live_server, invite["inspection_id"], "pass")
    html = (await wait_for_report(live_server, invite["inspection_id"], 1)).decode()
    assert "inspector1、inspector2" in html


async def test_an_inspector_not_assigned_sees_nothing_of_the_case(live_server: LiveServer) -> None:
    case = await live_server.new_case("inspector1")
    case_id = case["case_id"]
    status, body = await live_server.request("GET", f"/api/cases/{case_id}", "inspector2")
    assert_error(status, body, 403, "forbidden", "not one of this case's inspectors")
    status, body = await live_server.request(
        "POST", f"/api/cases/{case_id}/inspections", "inspector2"
    )
    assert_error(status, body, 403, "forbidden")
    status, page = await live_server.request("GET", "/api/cases", "inspector2")
    assert page["cases"] == []
    status, invite = await live_server.request(
        "POST", f"/api/cases/{case_id}/inspections", "inspector1"
    )
    peer = await join(
        live_server.ws_url,
        token=await live_server.token("inspector2"),
        inspection_id=invite["inspection_id"],
    )
    try:
        assert (peer.welcome["type"], peer.welcome["code"]) == ("error", "forbidden")
        assert "not one of this case's inspectors" in peer.welcome["reason"]
    finally:
        await peer.close()


async def test_inspectors_are_assigned_and_taken_off_later_each_step_chained(
    live_server: LiveServer,
) -> None:
    case = await live_server.new_case("inspector1")
    case_id = case["case_id"]
    path = f"/api/cases/{case_id}/inspectors"

    # Only the case's own inspectors (or an admin) choose who inspects it.
    status, body = await live_server.request(
        "POST", path, "inspector2", json={"inspector": "inspector2"}
    )
    assert_error(status, body, 403, "forbidden")
    status, body = await live_server.request(
        "POST", path, "auditor1", json={"inspector": "inspector2"}
    )
    assert_error(status, body, 403, "forbidden")

    status, body = await live_server.request(
        "POST", path, "inspector1", json={"inspector": "inspector2"}
    )
    assert status == 201, body
    assert body == {"case_id": case_id, "inspectors": ["inspector1", "inspector2"]}
    status, shown = await live_server.request("GET", f"/api/cases/{case_id}", "inspector2")
    assert status == 200, shown

    status, body = await live_server.request(
        "POST", path, "inspector1", json={"inspector": "inspector2"}
    )
    assert_error(status, body, 409, "conflict", "already inspects")
    assert body["field"] == "inspector"

    # The colleague takes the case's creator off; the last one stays.
    status, body = await live_server.request("DELETE", f"{path}/inspector1", "inspector2")
    assert status == 200, body
    assert body["inspectors"] == ["inspector2"]
    status, body = await live_server.request("GET", f"/api/cases/{case_id}", "inspector1")
    assert_error(status, body, 403, "forbidden")
    status, body = await live_server.request("DELETE", f"{path}/inspector2", "inspector2")
    assert_error(status, body, 409, "conflict", "only inspector")

    steps = [
        (e.kind, e.body["inspector"], e.body["by"])
        for e in await chain(live_server, case_id)
        if e.kind.startswith("inspector_")
    ]
    assert steps == [
        ("inspector_assigned", "inspector2", "inspector1"),
        ("inspector_unassigned", "inspector1", "inspector2"),
    ]
    status, integrity = await live_server.request(
        "GET", f"/api/cases/{case_id}/integrity", "auditor1"
    )
    assert (integrity["state"], integrity["disagreements"]) == ("verified", []), integrity


async def test_who_is_named_as_an_inspector_is_checked(live_server: LiveServer) -> None:
    base = {"title": "t", "address": "a"}
    for inspectors, words in (
        ("inspector2", "list of user names"),
        (["nobody"], "no user 'nobody'"),
        (["auditor1"], "'auditor1' is an auditor, not an inspector"),
        ([""], "by user name"),
        ([7], "by user name"),
        (["inspector2"] * 21, "at most 20"),
    ):
        status, body = await live_server.request(
            "POST",
            "/api/cases",
            "inspector1",
            json={**base, "case_id": "NAMED-1", "inspectors": inspectors},
        )
        assert_error(status, body, 400, "bad_request", words)
        assert body["field"] == "inspectors", body
    # An admin creates a case for others, so must name at least one.
    status, body = await live_server.request(
        "POST", "/api/cases", "admin1", json={**base, "case_id": "ADMIN-1"}
    )
    assert_error(status, body, 400, "bad_request", "at least one inspector")
    status, body = await live_server.request(
        "POST",
        "/api/cases",
        "admin1",
        json={**base, "case_id": "ADMIN-1", "inspectors": ["inspector2"]},
    )
    assert status == 201, body
    assert body["inspectors"] == ["inspector2"]
    status, listed = await live_server.request("GET", "/api/inspectors", "admin1")
    assert listed == {"inspectors": ["inspector1", "inspector2"]}
    status, body = await live_server.request("GET", "/api/inspectors", "auditor1")
    assert_error(status, body, 403, "forbidden")
    status, body = await live_server.request(
        "POST", "/api/cases/ADMIN-1/inspectors", "admin1", json={"inspector": "auditor1"}
    )
    assert_error(status, body, 400, "bad_request", "not an inspector")


async def test_an_edited_assignment_is_named_and_reindex_rebuilds_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with running_server(data) as server:
        case = await two_staff_case(server)
        case_id = case["case_id"]
        await server.services.store.db.write(
            lambda tx: tx.run(
                "DELETE FROM case_inspectors WHERE case_id = ? AND user_id ="
                " (SELECT id FROM users WHERE username = 'inspector2')",
                (case_id,),
            )
        )
        status, integrity = await server.request(
            "GET", f"/api/cases/{case_id}/integrity", "auditor1"
        )
        assert integrity["state"] == "disagrees", integrity
        said = "\n".join(d["text"] for d in integrity["disagreements"])
        assert (
            "database says inspectors inspector1; chain entry 1 says 'inspector1, inspector2'"
            in said
        )

    await asyncio.to_thread(lose_database, data)
    code, out, err = await takan("reindex", "--data", str(data), *database_options())
    assert code == 0, out + err
    for name in ("inspector1", "inspector2", "auditor1"):
        role = "auditor" if name == "auditor1" else "inspector"
        code, out, err = await takan_with_stdin(
            user_password(name),
            *("user", "add", name, "--role", role, "--data", str(data), *database_options()),
        )
        assert code == 0, out + err
    async with running_server(data) as server:
        status, shown = await server.request("GET", f"/api/cases/{case_id}", "inspector2")
        assert status == 200, shown
        assert shown["inspectors"] == ["inspector1", "inspector2"]
