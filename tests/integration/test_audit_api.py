"""Auditors find cases, check their integrity, read raw objects and replay; every replay,
verification and refusal is a chain entry of the case."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import aiohttp
import pytest

from tests.conftest import LiveServer
from tests.integration.recorded_case import flip_byte, record_inspection


def invite_token(invite: dict[str, Any]) -> str:
    return str(invite["applicant_url"]).rsplit("/", 1)[1]


async def fetch(server: LiveServer, path: str, username: str) -> tuple[int, dict[str, str], bytes]:
    headers = {"Authorization": f"Bearer {await server.token(username)}"}
    async with (
        aiohttp.ClientSession() as http,
        http.get(server.base_url + path, headers=headers) as response,
    ):
        return response.status, dict(response.headers), await response.read()


async def chain(server: LiveServer, case_id: str) -> list[dict[str, Any]]:
    status, page = await server.request("GET", f"/api/cases/{case_id}/audit?limit=500", "auditor1")
    assert status == 200, page
    return list(page["entries"])


async def search(server: LiveServer, query: str, username: str = "auditor1") -> dict[str, Any]:
    status, body = await server.request("GET", f"/api/cases?{query}", username)
    assert status == 200, body
    return dict(body)


def ids(page: dict[str, Any]) -> list[str]:
    return [case["case_id"] for case in page["cases"]]


# search


@pytest.fixture
async def six_cases(live_server: LiveServer) -> LiveServer:
    """Six cases of two inspectors, on three dates, with outcomes set as a conclusion would."""
    rows = [
        ("HZ-2026-001", "inspector1", "张三", "2026-01-05", "pass"),
        ("HZ-2026-002", "inspector1", "李四", "2026-01-05", "fail"),
        ("HZ-2026-003", "inspector1", "Wang Wu", "2026-02-10", None),
        ("SH-2026-001", "inspector2", "张三丰", "2026-02-10", "correction"),
        ("SH-2026-002", "inspector2", "wang xiaoming", "2026-03-20", "pass"),
        ("SH-2026-003", "inspector2", "赵六", "2026-03-20", "no-inspection"),
    ]
    for case_id, inspector, applicant, day, outcome in rows:
        await live_server.new_case(inspector, case_id=case_id, applicant_name=applicant)
        if outcome != "no-inspection":
            status, _ = await live_server.request(
                "POST", f"/api/cases/{case_id}/inspections", inspector
            )
            assert status == 201
        await live_server.sql(
            "UPDATE cases SET created_at = ? WHERE case_id = ?", (f"{day}T08:00:00.000Z", case_id)
        )
        if outcome not in (None, "no-inspection"):
            await live_server.sql(
                "UPDATE inspections SET outcome = ? WHERE case_id = ?", (outcome, case_id)
            )
    return live_server


async def test_auditor_searches_by_case_id_applicant_inspector_dates_and_outcome(
    six_cases: LiveServer,
) -> None:
    server = six_cases
    everything = await search(server, "")
    assert everything["total"] == 6
    assert (everything["offset"], everything["limit"]) == (0, 50)
    assert ids(await search(server, "case_id=hz-2026")) == [
        "HZ-2026-003",
        "HZ-2026-002",
        "HZ-2026-001",
    ]
    assert set(ids(await search(server, "applicant=%E5%BC%A0%E4%B8%89"))) == {
        "HZ-2026-001",
        "SH-2026-001",
    }
    assert set(ids(await search(server, "applicant=WANG"))) == {"HZ-2026-003", "SH-2026-002"}
    assert set(ids(await search(server, "inspector=inspector2"))) == {
        "SH-2026-001",
        "SH-2026-002",
        "SH-2026-003",
    }
    assert set(ids(await search(server, "from=2026-02-10&to=2026-02-10"))) == {
        "HZ-2026-003",
        "SH-2026-001",
    }
    assert set(ids(await search(server, "from=2026-03-01"))) == {"SH-2026-002", "SH-2026-003"}
    assert set(ids(await search(server, "outcome=pass"))) == {"HZ-2026-001", "SH-2026-002"}
    assert set(ids(await search(server, "outcome=none"))) == {"HZ-2026-003", "SH-2026-003"}
    combined = await search(server, "outcome=pass&inspector=inspector1&applicant=%E5%BC%A0")
    assert ids(combined) == ["HZ-2026-001"]
    row = combined["cases"][0]
    assert row["created_by"] == "inspector1"
    assert row["inspections"] == 1
    assert row["outcomes"] == ["pass"]
    assert row["last_inspection_at"] is not None
    assert row["created_at"] == "2026-01-05T08:00:00.000Z"


async def test_search_pages_and_sorts(six_cases: LiveServer) -> None:
    server = six_cases
    first = await search(server, "sort=case_id&order=asc&limit=4")
    second = await search(server, "sort=case_id&order=asc&limit=4&offset=4")
    assert first["total"] == second["total"] == 6
    assert ids(first) + ids(second) == sorted(ids(first) + ids(second))
    assert (len(ids(first)), len(ids(second))) == (4, 2)
    by_name = ids(await search(server, "sort=applicant_name&order=asc&applicant=wang"))
    assert by_name == ["HZ-2026-003", "SH-2026-002"]  # "Wang Wu" < "wang xiaoming", no case
    newest = ids(await search(server, "limit=2"))
    assert newest == ["SH-2026-003", "SH-2026-002"]


async def test_inspector_search_sees_only_own_cases(six_cases: LiveServer) -> None:
    page = await search(six_cases, "", "inspector1")
    assert page["total"] == 3
    assert all(case_id.startswith("HZ") for case_id in ids(page))
    assert (await search(six_cases, "inspector=inspector2", "inspector1"))["total"] == 0


@pytest.mark.parametrize(
    ("query", "mentions"),
    [
        ("from=2026-13-01", "from"),
        ("to=20260101", "to"),
        ("from=yesterday", "from"),
        ("from=2026-03-02&to=2026-03-01", "after"),
        ("limit=201", "limit"),
        ("limit=0", "limit"),
        ("limit=100000000000", "limit"),
        ("offset=-1", "offset"),
        ("sort=title", "sort"),
        ("order=up", "order"),
        ("outcome=maybe", "outcome"),
        ("colour=red", "unknown"),
        ("applicant=" + "x" * 101, "applicant"),
    ],
)
async def test_bad_search_input_is_a_clear_400(
    live_server: LiveServer, query: str, mentions: str
) -> None:
    status, body = await live_server.request("GET", f"/api/cases?{query}", "auditor1")
    assert status == 400, body
    assert body["error"] == "bad_request"
    assert mentions in body["reason"]


# a recorded case: detail, integrity, objects, replay


async def test_case_detail_integrity_objects_and_replay_of_a_recorded_case(
    live_server: LiveServer,
) -> None:
    recorded = await record_inspection(live_server)
    case_id, inspection_id = recorded["case_id"], recorded["inspection_id"]
    empty = await record_inspection(live_server, seconds=0, case_id=case_id)

    status, case = await live_server.request("GET", f"/api/cases/{case_id}", "auditor1")
    assert status == 200, case
    first = next(i for i in case["inspections"] if i["inspection_id"] == inspection_id)
    assert first["created_by"] == "inspector1"
    assert first["status"] == "ended"
    assert [p["role"] for p in first["participants"]].count("applicant") >= 1
    assert 0 < first["duration_s"] < 60
    assert {"outcome", "concluded_at"} <= set(first)

    status, integrity = await live_server.request(
        "GET", f"/api/cases/{case_id}/integrity", "auditor1"
    )
    assert status == 200, integrity
    assert integrity["state"] == "verified"
    assert (integrity["where"], integrity["reason"]) == (None, None)
    assert integrity["inspections"] == {
        inspection_id: "verified",
        empty["inspection_id"]: "verified",
    }
    assert integrity["segments"] >= 2  # applicant video and audio at least
    assert integrity["key_fingerprint"] == live_server.services.archive.signer.fingerprint
    verified = [e for e in await chain(live_server, case_id) if e["kind"] == "verified"]
    assert verified[-1]["body"] == {
        "by": "auditor1",
        "role": "auditor",
        "state": "verified",
        "where": None,
        "disagreements": 0,
    }

    # Raw objects: the stored bytes, typed by suffix.
    manifest_key = f"inspections/{inspection_id}/manifest.json"
    status, headers, raw = await fetch(
        live_server, f"/api/cases/{case_id}/objects/{manifest_key}", "auditor1"
    )
    assert status == 200
    assert headers["Content-Type"].startswith("application/json")
    assert headers["Cache-Control"] == "no-store"
    manifest = json.loads(raw)["manifest"]
    segment = manifest["segments"][0]
    relative = segment["key"].removeprefix(f"cases/{case_id}/")
    status, headers, raw = await fetch(
        live_server, f"/api/cases/{case_id}/objects/{relative}", "inspector1"
    )
    assert status == 200
    assert headers["Content-Type"] == "video/webm"
    assert hashlib.sha256(raw).hexdigest() == segment["sha256"]
    # The listing: every stored object of the case, relative keys, as verification sees them.
    status, listing = await live_server.request("GET", f"/api/cases/{case_id}/objects", "auditor1")
    assert status == 200, listing
    assert listing["case_id"] == case_id
    assert listing["objects"] == sorted(listing["objects"])
    assert {manifest_key, relative, "chain/000000000000.json"} <= set(listing["objects"])
    fingerprint = manifest["key_fingerprint"].removeprefix("sha256:")
    status, headers, raw = await fetch(
        live_server, f"/api/cases/{case_id}/objects/keys/{fingerprint}.pub", "admin1"
    )
    assert (status, headers["Content-Type"], len(raw)) == (200, "application/octet-stream", 32)

    # Replay and what the browser found are chain entries.
    status, replay = await live_server.request(
        "POST", f"/api/inspections/{inspection_id}/replay", "auditor1"
    )
    assert status == 200, replay
    assert replay == {
        "case_id": case_id,
        "case_number": case_id,  # a valid case ID is its own number
        "inspection_id": inspection_id,
        "manifest_key": manifest_key,
        "audit_url": f"/api/cases/{case_id}/audit",
        "objects_url": f"/api/cases/{case_id}/objects/",
    }
    finding = {"state": "broken", "segments_checked": 5, "broken": [relative]}
    status, answer = await live_server.request(
        "POST", f"/api/inspections/{inspection_id}/replay-verified", "auditor1", json=finding
    )
    assert status == 200, answer
    entries = await chain(live_server, case_id)
    replayed = [e["body"] for e in entries if e["kind"] == "replayed"]
    assert replayed == [{"by": "auditor1", "role": "auditor", "inspection_id": inspection_id}]
    found = [e["body"] for e in entries if e["kind"] == "replay_verified"]
    assert found == [
        {"by": "auditor1", "role": "auditor", "inspection_id": inspection_id, **finding}
    ]

    # A changed segment: the case is broken there, naming the object and only its inspection.
    flip_byte(live_server.data_dir / "archive" / segment["key"], 100)
    status, integrity = await live_server.request(
        "GET", f"/api/cases/{case_id}/integrity", "admin1"
    )
    assert status == 200, integrity
    assert integrity["state"] == "broken"
    assert integrity["where"] == segment["key"]
    assert "SHA-256" in integrity["reason"]
    assert integrity["inspections"] == {
        inspection_id: "broken",
        empty["inspection_id"]: "verified",
    }
    verified = [e for e in await chain(live_server, case_id) if e["kind"] == "verified"]
    assert verified[-1]["body"]["state"] == "broken"
    assert verified[-1]["body"]["where"] == segment["key"]


@pytest.mark.parametrize(
    ("key", "status", "error"),
    [
        ("..%2F..%2Ftoken-secret.key", 400, "bad_request"),
        ("inspections/..%2F..%2Fx.json", 400, "bad_request"),
        ("notes.txt", 400, "bad_request"),
        ("chain/.hidden.json", 400, "bad_request"),
        ("chain/000000009999.json", 404, "not_found"),
    ],
)
async def test_object_keys_are_checked_against_the_layout(
    live_server: LiveServer, key: str, status: int, error: str
) -> None:
    case = await live_server.new_case()
    got, body = await live_server.request(
        "GET", f"/api/cases/{case['case_id']}/objects/{key}", "auditor1"
    )
    assert (got, body["error"]) == (status, error), body


@pytest.mark.parametrize(
    "finding",
    [
        {"state": "fine", "segments_checked": 1, "broken": []},
        {"state": "verified", "segments_checked": -1, "broken": []},
        {"state": "verified", "segments_checked": True, "broken": []},
        {"state": "verified", "segments_checked": 1.5, "broken": []},
        {"state": "verified", "segments_checked": 3, "broken": ["chain/000000000000.json"]},
        {"state": "broken", "segments_checked": 3, "broken": "chain/000000000000.json"},
        {"state": "broken", "segments_checked": 3, "broken": ["../../x"]},
        {"state": "broken", "segments_checked": 3, "broken": [7]},
        {"state": "broken", "segments_checked": 3, "broken": ["keys/abc.pub"] * 2},
        {"state": "broken", "segments_checked": 3, "broken": ["a.json"] * 1001},
        {"state": "verified", "segments_checked": 3, "broken": [], "extra": 1},
        {"state": "verified", "broken": []},
        {"state": "verified", "segments_checked": 3, "broken": [], "where": "chain entry 1"},
        {"state": "broken", "segments_checked": 3, "broken": [], "where": 7},
        {"state": "broken", "segments_checked": 3, "broken": [], "reason": ""},
        {"state": "broken", "segments_checked": 3, "broken": [], "reason": "x" * 1001},
    ],
)
async def test_replay_verified_refuses_bad_findings(
    live_server: LiveServer, finding: dict[str, Any]
) -> None:
    invite = await live_server.new_inspection()
    iid = invite["inspection_id"]
    status, _ = await live_server.request("POST", f"/api/inspections/{iid}/end", "inspector1")
    assert status == 200
    status, body = await live_server.request(
        "POST", f"/api/inspections/{iid}/replay-verified", "auditor1", json=finding
    )
    assert (status, body["error"]) == (400, "bad_request"), body
    kinds = [e["kind"] for e in await chain(live_server, invite["case_id"])]
    assert "replay_verified" not in kinds


async def test_an_active_inspection_cannot_be_replayed_yet(live_server: LiveServer) -> None:
    invite = await live_server.new_inspection()
    iid = invite["inspection_id"]
    status, body = await live_server.request("POST", f"/api/inspections/{iid}/replay", "auditor1")
    assert (status, body["error"]) == (409, "conflict")
    good = {"state": "verified", "segments_checked": 0, "broken": []}
    status, body = await live_server.request(
        "POST", f"/api/inspections/{iid}/replay-verified", "auditor1", json=good
    )
    assert (status, body["error"]) == (409, "conflict")


# roles and denials


AUDITOR_PATHS = (
    ("GET", "/api/cases/{case}/integrity"),
    ("GET", "/api/cases/{case}/export"),
    ("GET", "/api/cases/{case}/audit"),
    ("GET", "/api/cases/{case}/objects/chain/000000000000.json"),
    ("GET", "/api/cases/{case}/objects"),
    ("GET", "/api/cases/{case}"),
    ("POST", "/api/inspections/{inspection}/replay"),
)


async def test_other_inspectors_and_applicants_are_refused_and_each_refusal_is_chained(
    live_server: LiveServer,
) -> None:
    invite = await live_server.new_inspection()
    case_id, iid = invite["case_id"], invite["inspection_id"]
    token = invite_token(invite)
    for method, template in AUDITOR_PATHS:
        path = template.format(case=case_id, inspection=iid)
        status, body = await live_server.request(method, path, "inspector2")
        assert (status, body["error"]) == (403, "forbidden"), (path, body)
        status, body = await live_server.request(
            method, path, headers={"Authorization": f"Bearer {token}"}
        )
        assert (status, body["error"]) == (403, "forbidden"), (path, body)
        assert "invite" in body["reason"]
    status, body = await live_server.request(
        "GET", "/api/cases", headers={"Authorization": f"Bearer {token}"}
    )
    assert (status, body["error"]) == (403, "forbidden")
    denied = [e["body"] for e in await chain(live_server, case_id) if e["kind"] == "access_denied"]
    expected = []
    for method, template in AUDITOR_PATHS:
        path = template.format(case=case_id, inspection=iid)
        expected += [
            {"by": "inspector2", "role": "inspector", "method": method, "path": path},
            {"by": "applicant", "role": "applicant", "method": method, "path": path},
        ]
    assert denied == expected


async def test_the_owning_inspector_auditor_and_admin_may_read_the_audit_trail(
    live_server: LiveServer,
) -> None:
    invite = await live_server.new_inspection()
    for username in ("inspector1", "auditor1", "admin1"):
        status, page = await live_server.request(
            "GET", f"/api/cases/{invite['case_id']}/audit", username
        )
        assert status == 200, page
        assert [e["kind"] for e in page["entries"]] == ["signing_key", "case_created", "invited"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/cases/NO-SUCH-CASE/integrity",
        "/api/cases/NO-SUCH-CASE/export",
        "/api/cases/NO-SUCH-CASE/objects/chain/000000000000.json",
        "/api/cases/NO-SUCH-CASE/objects",
        "/api/inspections/0123456789abcdef0123456789abcdef/replay",
    ],
)
async def test_unknown_cases_and_inspections_are_404(live_server: LiveServer, path: str) -> None:
    method = "POST" if path.endswith("/replay") else "GET"
    status, body = await live_server.request(method, path, "auditor1")
    assert (status, body["error"]) == (404, "not_found"), body
