# ruff: noqa: RUF001 - Chinese text uses full-width punctuation on purpose
"""Checklist templates and marks, the signed conclusion and the inspector's dashboard, over REST."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from recorder.conclusion import Conclusion
from recorder.signing import verify_signature
from recorder.storage import LocalStorage
from recorder.verify import verify_case
from server.http.api_report import REPORT_TASKS
from tests.conftest import LiveServer
from tests.integration.evidence_helpers import chain, kinds, mark_open_items, publishing
from tests.integration.peers import join, wait_until

BUILDING_ITEMS = ["site_sign", "boundary", "structure", "fire_access", "safety"]


async def building_inspection(server: LiveServer) -> dict[str, Any]:
    case = await server.new_case(case_type="建设工程")
    status, created = await server.request(
        "POST", f"/api/cases/{case['case_id']}/inspections", "inspector1"
    )
    assert status == 201, created
    return {**created, "case_id": case["case_id"]}


async def test_default_templates_are_seeded_in_chinese_and_only_admins_edit_them(
    live_server: LiveServer,
) -> None:
    status, listed = await live_server.request("GET", "/api/checklist-templates", "inspector1")
    assert status == 200, listed
    by_id = {t["template_id"]: t for t in listed["templates"]}
    assert {"default", "building", "food", "environment"} <= set(by_id)
    assert by_id["building"]["name"] == "建设工程现场踏勘"
    assert [i["item_id"] for i in by_id["building"]["items"]] == BUILDING_ITEMS

    body = {
        "case_type": "建设工程",
        "name": "建设工程现场踏勘(2026版)",
        "items": [
            {"item_id": "site_sign", "text": "公示牌清晰可见", "required_photos": 1},
            {"item_id": "height", "text": "建筑高度符合规划", "required_photos": 0},
        ],
    }
    path = "/api/checklist-templates/building"
    status, answer = await live_server.request("PUT", path, "inspector1", json=body)
    assert (status, answer["error"]) == (403, "forbidden")
    status, saved = await live_server.request("PUT", path, "admin1", json=body)
    assert status == 200, saved
    assert (saved["version"], saved["name"]) == (2, "建设工程现场踏勘(2026版)")
    status, fetched = await live_server.request("GET", path, "auditor1")
    assert (status, fetched) == (200, saved)

    status, created = await live_server.request(
        "PUT", "/api/checklist-templates/fire-check", "admin1", json={**body, "case_type": "消防"}
    )
    assert (status, created["version"]) == (200, 1)


async def test_bad_templates_are_refused_precisely(live_server: LiveServer) -> None:
    item = {"item_id": "a", "text": "文字", "required_photos": 0}
    cases: list[tuple[str, Any, str]] = [
        ("building", {"name": "x", "items": []}, "1 to 100 items"),
        ("building", {"name": " ", "items": [item]}, "'name' is required"),
        ("building", {"name": "x", "items": [item, item]}, "appears twice"),
        ("building", {"name": "x", "items": [{**item, "item_id": "A b"}]}, "item_id"),
        ("building", {"name": "x", "items": [{**item, "required_photos": 99}]}, "0..20"),
        ("building", {"name": "x", "items": [{**item, "text": ""}]}, "text must be"),
        ("building", {"name": "x", "items": [item], "owner": 1}, "unknown field 'owner'"),
        ("Bad%20Id", {"name": "x", "items": [item]}, "template_id must be"),
    ]
    for template_id, body, reason in cases:
        status, answer = await live_server.request(
            "PUT", f"/api/checklist-templates/{template_id}", "admin1", json=body
        )
        assert (status, answer["error"]) == (400, "bad_request"), (body, answer)
        assert reason in answer["reason"], (reason, answer)
    status, answer = await live_server.request("GET", "/api/checklist-templates/nope", "inspector1")
    assert (status, answer["error"]) == (404, "not_found")


async def test_marks_are_chained_and_the_page_sees_what_is_missing(
    live_server: LiveServer,
) -> None:
    invite = await building_inspection(live_server)
    case_id, inspection_id = invite["case_id"], invite["inspection_id"]
    path = f"/api/inspections/{inspection_id}/checklist"
    status, checklist = await live_server.request("GET", path, "inspector1")
    assert status == 200, checklist
    assert checklist["template_id"] == "building"
    assert checklist["missing"] == BUILDING_ITEMS

    before = await kinds(live_server, case_id)
    status, marked = await live_server.request(
        "POST", f"{path}/boundary", "inspector1", json={"done": True, "note": "与红线一致"}
    )
    assert status == 200, marked
    assert "boundary" in marked["missing"]  # it needs one photo
    item = next(i for i in marked["items"] if i["item_id"] == "boundary")
    assert (item["done"], item["note"], item["photos"]) == (True, "与红线一致", [])
    entries = await kinds(live_server, case_id)
    assert entries == [*before, "checklist_mark"]

    # Photos: real snapshots of this inspection satisfy required_photos.
    async with publishing(live_server, invite, 320, 240):
        status, snap = await live_server.request(
            "POST", f"/api/inspections/{inspection_id}/snapshots", "inspector1"
        )
    assert status == 201, snap
    status, marked = await live_server.request(
        "POST",
        f"{path}/boundary",
        "inspector1",
        json={"done": True, "note": "四至清楚", "snapshot_ids": [snap["snapshot_id"]]},
    )
    assert status == 200, marked
    assert "boundary" not in marked["missing"]
    status, again = await live_server.request("GET", path, "auditor1")
    assert (status, again["missing"]) == (200, marked["missing"])


async def test_bad_marks_are_refused_and_nothing_is_written(live_server: LiveServer) -> None:
    invite = await building_inspection(live_server)
    other = await live_server.new_inspection()
    case_id, inspection_id = invite["case_id"], invite["inspection_id"]
    path = f"/api/inspections/{inspection_id}/checklist"
    await live_server.request("GET", path, "inspector1")
    before = await kinds(live_server, case_id)
    cases: list[tuple[str, Any, int, str]] = [
        ("licence_display", {"done": True}, 400, "not in this inspection's checklist template"),
        ("boundary", {"done": "yes"}, 400, "'verdict' (or the older 'done'"),
        ("boundary", {"done": True, "note": "长" * 501}, 400, "at most 500"),
        ("boundary", {"done": True, "snapshot_ids": ["0" * 32]}, 400, "not a snapshot of this"),
        ("boundary", {"done": True, "snapshot_ids": "x"}, 400, "'snapshot_ids' must be"),
        ("boundary", {"done": True, "photos": []}, 400, "unknown field 'photos'"),
    ]
    for item_id, body, expected, reason in cases:
        status, answer = await live_server.request(
            "POST", f"{path}/{item_id}", "inspector1", json=body
        )
        assert status == expected, (body, answer)
        assert reason in answer["reason"], (reason, answer)
    status, answer = await live_server.request(
        "POST", f"{path}/boundary", "inspector2", json={"done": True}
    )
    assert (status, answer["error"]) == (403, "forbidden")
    status, answer = await live_server.request(
        "POST",
        f"/api/inspections/{other['inspection_id']}/checklist/boundary",
        "inspector1",
        json={"done": True},
    )
    assert status == 400, answer  # the other case has no type: the default template
    assert "'default'" in answer["reason"]
    assert await kinds(live_server, case_id) == before
    assert await live_server.rows("SELECT * FROM checklist_marks") == []


async def test_items_get_a_verdict_and_a_pass_is_refused_naming_the_failing_item(
    live_server: LiveServer,
) -> None:
    invite = await building_inspection(live_server)
    case_id, inspection_id = invite["case_id"], invite["inspection_id"]
    path = f"/api/inspections/{inspection_id}/checklist"
    for item_id, body, reason in (
        ("boundary", {"verdict": "done"}, "'verdict' must be one of pass, fail, not_applicable"),
        ("boundary", {"verdict": "pass", "done": True}, "not both"),
    ):
        status, answer = await live_server.request(
            "POST", f"{path}/{item_id}", "inspector1", json=body
        )
        assert (status, answer["error"]) == (400, "bad_request"), (body, answer)
        assert reason in answer["reason"], answer
    status, answer = await live_server.request(
        "POST", f"{path}/boundary", "inspector1", json={"verdict": "pass", "note": "长" * 501}
    )
    assert (status, answer["field"], answer["limit"]) == (400, "note", 500), answer

    status, marked = await live_server.request(
        "POST", f"{path}/safety", "inspector1", json={"verdict": "fail", "note": "无护栏"}
    )
    assert status == 200, marked
    status, marked = await live_server.request(
        "POST", f"{path}/site_sign", "inspector1", json={"verdict": "not_applicable"}
    )
    verdicts = {i["item_id"]: (i["verdict"], i["done"]) for i in marked["items"]}
    assert verdicts["safety"] == ("fail", True)
    assert verdicts["site_sign"] == ("not_applicable", True)
    assert verdicts["boundary"] == (None, False)
    await mark_open_items(live_server, inspection_id)  # so that only 不符合 stands in the way

    before = await kinds(live_server, case_id)
    conclusion = f"/api/inspections/{inspection_id}/conclusion"
    status, answer = await live_server.request(
        "POST", conclusion, "inspector1", json={"outcome": "pass", "reason": "符合要求"}
    )
    assert (status, answer["error"], answer["items"]) == (
        409,
        "checklist_blocks_conclusion",
        "safety",
    ), answer
    assert "不符合" in answer["reason"]
    status, answer = await live_server.request(
        "POST", conclusion, "inspector1", json={"outcome": "fail", "reason": "现场不合格"}
    )
    assert (status, answer["items"]) == (409, "safety"), answer
    assert "does not name" in answer["reason"]
    assert await kinds(live_server, case_id) == before
    status, signed = await live_server.request(
        "POST", conclusion, "inspector1", json={"outcome": "fail", "reason": "safety 无护栏"}
    )
    assert status == 201, signed
    assert (signed["outcome"], signed["reason"]) == ("fail", "safety 无护栏")


async def test_a_pass_is_refused_while_required_items_are_unmarked_naming_them(
    live_server: LiveServer,
) -> None:
    invite = await building_inspection(live_server)
    case_id, inspection_id = invite["case_id"], invite["inspection_id"]
    path = f"/api/inspections/{inspection_id}/checklist"
    for item_id, verdict in (("site_sign", "not_applicable"), ("structure", "not_applicable")):
        status, marked = await live_server.request(
            "POST", f"{path}/{item_id}", "inspector1", json={"verdict": verdict}
        )
        assert status == 200, marked
    counts = marked["counts"]
    assert (counts["items"], counts["marked"], counts["not_applicable"]) == (5, 2, 2)
    assert marked["missing"] == ["boundary", "fire_access", "safety"]

    before = await kinds(live_server, case_id)
    conclusion = f"/api/inspections/{inspection_id}/conclusion"
    status, answer = await live_server.request(
        "POST", conclusion, "inspector1", json={"outcome": "pass", "reason": "符合要求"}
    )
    assert (status, answer["error"]) == (409, "checklist_blocks_conclusion"), answer
    assert answer["items"] == "boundary,fire_access,safety"
    assert [(p["item_id"], p["problem"]) for p in answer["problems"]] == [
        ("boundary", "unmarked"),
        ("fire_access", "unmarked"),
        ("safety", "unmarked"),
    ]
    assert answer["problems"][0]["text"] == "场地四至边界与审批红线一致"
    assert "boundary 场地四至边界与审批红线一致: not yet marked (未核查)" in answer["reason"]
    assert await kinds(live_server, case_id) == before  # refused: nothing chained

    # A fail or a correction may be signed with items open (the reason says why).
    status, signed = await live_server.request(
        "POST", conclusion, "inspector1", json={"outcome": "correction", "reason": "需补充材料"}
    )
    assert status == 201, signed


async def test_an_item_a_template_marks_not_required_may_stay_unmarked_for_a_pass(
    live_server: LiveServer,
) -> None:
    items = [
        {"item_id": "gate", "text": "大门标识", "required_photos": 0},
        {"item_id": "extra", "text": "周边情况", "required_photos": 0, "required": False},
    ]
    for bad, field, reason in (
        ("no", "items[1].required", "required must be true or false"),
        (None, "items[1].required", "required must be true or false"),
    ):
        body = {
            "case_type": "单项",
            "name": "单项",
            "items": [items[0], {**items[1], "required": bad}],
        }
        status, answer = await live_server.request(
            "PUT", "/api/checklist-templates/single", "admin1", json=body
        )
        assert (status, answer["field"]) == (400, field), answer
        assert reason in answer["reason"], answer
    status, saved = await live_server.request(
        "PUT",
        "/api/checklist-templates/single",
        "admin1",
        json={"case_type": "单项", "name": "单项", "items": items},
    )
    assert status == 200, saved
    assert [i["required"] for i in saved["items"]] == [True, False]

    case = await live_server.new_case(case_type="单项")
    status, invite = await live_server.request(
        "POST", f"/api/cases/{case['case_id']}/inspections", "inspector1"
    )
    assert status == 201, invite
    inspection_id = invite["inspection_id"]
    path = f"/api/inspections/{inspection_id}/checklist"
    status, checklist = await live_server.request("GET", path, "inspector1")
    assert (checklist["missing"], checklist["counts"]["required"]) == (["gate"], 1), checklist
    conclusion = f"/api/inspections/{inspection_id}/conclusion"
    status, answer = await live_server.request(
        "POST", conclusion, "inspector1", json={"outcome": "pass", "reason": "符合要求"}
    )
    assert (status, answer["items"]) == (409, "gate"), answer
    status, marked = await live_server.request(
        "POST", f"{path}/gate", "inspector1", json={"verdict": "pass", "note": "清晰"}
    )
    assert (status, marked["missing"]) == (200, []), marked
    status, signed = await live_server.request(
        "POST", conclusion, "inspector1", json={"outcome": "pass", "reason": "符合要求"}
    )
    assert status == 201, signed
    # The conclusion chains the checklist it was reached against, optional items said so.
    [chained] = [
        e.body for e in await chain(live_server, case["case_id"]) if e.kind == "conclusion"
    ]
    assert [i["required"] for i in chained["checklist"]["items"]] == [True, False]


async def test_photos_are_picked_per_item_and_a_pass_verdict_needs_its_photos(
    live_server: LiveServer,
) -> None:
    invite = await building_inspection(live_server)
    case_id, inspection_id = invite["case_id"], invite["inspection_id"]
    path = f"/api/inspections/{inspection_id}/checklist"
    async with publishing(live_server, invite, 320, 240):
        shots = []
        for _ in range(2):
            status, snap = await live_server.request(
                "POST", f"/api/inspections/{inspection_id}/snapshots", "inspector1"
            )
            assert status == 201, snap
            shots.append(snap["snapshot_id"])
    one, two = shots
    before = await kinds(live_server, case_id)
    for photos, reason in (
        ([one, one], "snapshot_ids[1]: snapshot '" + one + "' is picked twice"),
        ([one, 7], "snapshot_ids[1] must be a snapshot id"),
        ([one, "../x"], "snapshot_ids[1] must be a snapshot id"),
        (["f" * 32], "snapshot '" + "f" * 32 + "' is not a snapshot of this inspection"),
        ([one] * 51, "holds 51 photos; at most 50"),
        ({"id": one}, "must be a list of snapshot ids"),
    ):
        status, answer = await live_server.request(
            "POST",
            f"{path}/structure",
            "inspector1",
            json={"verdict": "pass", "snapshot_ids": photos},
        )
        assert (status, answer["field"]) == (400, "snapshot_ids"), (photos, answer)
        assert reason in answer["reason"], (reason, answer)
    assert await kinds(live_server, case_id) == before

    # Different items, different photos; structure wants two but has one.
    for item_id, verdict, photos in (
        ("site_sign", "pass", [two]),
        ("boundary", "pass", [one]),
        ("structure", "pass", [one]),
        ("fire_access", "not_applicable", []),
        ("safety", "fail", [two, one]),
    ):
        status, marked = await live_server.request(
            "POST",
            f"{path}/{item_id}",
            "inspector1",
            json={"verdict": verdict, "snapshot_ids": photos},
        )
        assert status == 200, marked
    picked = {i["item_id"]: i["photos"] for i in marked["items"]}
    assert picked == {
        "site_sign": [two],
        "boundary": [one],
        "structure": [one],
        "fire_access": [],
        "safety": [two, one],
    }
    assert (marked["missing"], marked["failing"]) == (["structure"], ["safety"])
    counts = marked["counts"]
    assert (counts["marked"], counts["pass"], counts["fail"]) == (5, 3, 1)
    marks = [e.body for e in await chain(live_server, case_id) if e.kind == "checklist_mark"]
    assert marks[-1]["snapshot_ids"] == [two, one]

    conclusion = f"/api/inspections/{inspection_id}/conclusion"
    status, answer = await live_server.request(
        "POST", conclusion, "inspector1", json={"outcome": "pass", "reason": "符合要求"}
    )
    assert status == 409, answer
    assert answer["problems"] == [
        {"item_id": "structure", "text": "主体结构与施工图一致，无违规加建", "problem": "photos",
         "have": 1, "need": 2},
        {"item_id": "safety", "text": "围挡、安全网等安全防护措施到位", "problem": "fail",
         "have": 2, "need": 1},
    ]  # fmt: skip
    assert (
        "structure 主体结构与施工图一致，无违规加建: marked 符合 with too few photos, 1 of 2"
        in (answer["reason"])
    )
    status, marked = await live_server.request(
        "POST", f"{path}/structure", "inspector1", json={"verdict": "pass", "snapshot_ids": shots}
    )
    assert (status, marked["missing"]) == (200, []), marked
    status, answer = await live_server.request(
        "POST", conclusion, "inspector1", json={"outcome": "pass", "reason": "符合要求"}
    )
    assert (status, answer["items"]) == (409, "safety"), answer  # still 不符合


async def test_conclusion_is_signed_ends_the_inspection_and_is_final(
    live_server: LiveServer,
) -> None:
    invite = await live_server.new_inspection()
    case_id, inspection_id = invite["case_id"], invite["inspection_id"]
    await mark_open_items(live_server, inspection_id)  # the checklist allows a pass
    path = f"/api/inspections/{inspection_id}/conclusion"
    before = await kinds(live_server, case_id)
    for body, reason in (
        ({"outcome": "pass"}, "'reason' is required"),
        ({"outcome": "pass", "reason": "   "}, "'reason' is required"),
        ({"outcome": "maybe", "reason": "x"}, "'outcome' must be one of pass, fail, correction"),
        ({"outcome": "pass", "reason": "x" * 2001}, "at most 2000"),
        ({"outcome": "pass", "reason": "x", "corrects": "1"}, "'corrects' must be"),
    ):
        status, answer = await live_server.request("POST", path, "inspector1", json=body)
        assert (status, answer["error"]) == (400, "bad_request"), (body, answer)
        assert reason in answer["reason"], (reason, answer)
    status, answer = await live_server.request(
        "POST", path, "inspector1", json={"outcome": "pass", "reason": "x", "corrects": 3}
    )
    assert (status, answer["error"]) == (409, "conflict")
    status, answer = await live_server.request(
        "POST", path, "inspector2", json={"outcome": "pass", "reason": "x"}
    )
    assert (status, answer["error"]) == (403, "forbidden")
    assert await kinds(live_server, case_id) == before
    status, inspection = await live_server.request(
        "GET", f"/api/inspections/{inspection_id}", "inspector1"
    )
    assert (inspection["status"], inspection["outcome"]) == ("active", None)

    reason = "现场与申报材料一致 符合要求。"
    status, signed = await live_server.request(
        "POST", path, "inspector1", json={"outcome": "pass", "reason": reason}
    )
    assert status == 201, signed
    assert (signed["outcome"], signed["reason"], signed["refers_to"]) == ("pass", reason, None)
    assert signed["report_pdf_url"] == f"/api/inspections/{inspection_id}/report.pdf"
    status, keys = await live_server.request("GET", "/api/keys")
    [key] = keys["keys"]
    assert signed["key_fingerprint"] == key["fingerprint"]
    message = Conclusion(inspection_id, "pass", reason, "inspector1", signed["at"], None).message()
    assert verify_signature(
        base64.b64decode(key["public_key"]), message, base64.b64decode(signed["signature"])
    )
    status, inspection = await live_server.request(
        "GET", f"/api/inspections/{inspection_id}", "auditor1"
    )
    assert (inspection["status"], inspection["outcome"]) == ("ended", "pass")
    assert inspection["conclusion_reason"] == reason
    chained = await kinds(live_server, case_id)
    assert chained[len(before) :][:2] == ["conclusion", "ended"]
    assert "manifest" in chained[len(before) :]

    status, answer = await live_server.request(
        "POST", path, "inspector1", json={"outcome": "fail", "reason": "again"}
    )
    assert (status, answer["error"]) == (409, "conflict")
    assert f"'corrects': {signed['chain_seq']}" in answer["reason"]
    status, answer = await live_server.request(
        "POST",
        f"/api/inspections/{inspection_id}/checklist/site_identity",
        "inspector1",
        json={"done": True},
    )
    assert (status, answer["error"]) == (409, "conflict")

    status, corrected = await live_server.request(
        "POST",
        path,
        "inspector1",
        json={"outcome": "correction", "reason": "需补正消防材料", "corrects": signed["chain_seq"]},
    )
    assert status == 201, corrected
    assert corrected["refers_to"] == signed["chain_seq"]
    status, stale = await live_server.request(
        "POST",
        path,
        "inspector1",
        json={"outcome": "pass", "reason": "x", "corrects": signed["chain_seq"]},
    )
    assert (status, stale["error"]) == (409, "conflict")
    status, inspection = await live_server.request(
        "GET", f"/api/inspections/{inspection_id}", "inspector1"
    )
    assert inspection["outcome"] == "correction"

    # The conclusion triggers the report (server/reports/publish.py): it appears and verifies.
    async with asyncio.timeout(120):
        while True:
            status, html = await live_server.request("GET", signed["report_html_url"], "auditor1")
            if status == 200:
                break
            assert status in (202, 409), html
            await asyncio.sleep(0.5)
    assert case_id in html
    await live_server.app[REPORT_TASKS].close()
    await live_server.services.archive.drain()
    report = verify_case(LocalStorage(live_server.data_dir / "archive"), case_id)
    assert report.conclusions == 2


async def test_dashboard_shows_today_live_and_awaiting_conclusion(
    live_server: LiveServer,
) -> None:
    waiting = await live_server.new_inspection()
    running = await live_server.new_inspection()
    concluded = await live_server.new_inspection()
    await live_server.new_inspection("inspector2")
    for invite in (waiting, concluded):
        status, _ = await live_server.request(
            "POST", f"/api/inspections/{invite['inspection_id']}/end", "inspector1"
        )
        assert status == 200
    status, _ = await live_server.request(
        "POST",
        f"/api/inspections/{concluded['inspection_id']}/conclusion",
        "inspector1",
        json={"outcome": "fail", "reason": "现场不符"},
    )
    assert status == 201
    token = running["applicant_url"].rsplit("/", 1)[1]
    applicant = await join(live_server.ws_url, token=token, name="张三")
    try:
        assert applicant.welcome["type"] == "welcome", applicant.welcome
        live = live_server.services.live
        await wait_until(
            lambda: (i := live.get(running["inspection_id"])) is not None and bool(i.participants)
        )
        status, board = await live_server.request("GET", "/api/dashboard", "inspector1")
    finally:
        await applicant.close()
    assert status == 200, board
    ids = {name: [i["inspection_id"] for i in board[name]] for name in board}
    assert set(ids["today"]) == {
        waiting["inspection_id"],
        running["inspection_id"],
        concluded["inspection_id"],
    }
    assert ids["live"] == [running["inspection_id"]]
    assert ids["awaiting_conclusion"] == [waiting["inspection_id"]]
    item = board["awaiting_conclusion"][0]
    assert item["title"] == "新建厂房踏勘"
    assert item["case_id"] == waiting["case_id"]
    status, answer = await live_server.request("GET", "/api/dashboard", "auditor1")
    assert (status, answer["error"]) == (403, "forbidden")
