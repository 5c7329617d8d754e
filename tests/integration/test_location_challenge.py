"""Location fixes and liveness challenges over the signalling socket of a real server.

Each accepted fix and each step of a challenge is a chain event and reaches the inspectors; a bad
fix is refused with a precise error and leaves nothing behind.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from recorder.chain import ChainEntry
from server.live.geo import haversine_m
from tests.conftest import LiveServer
from tests.integration.test_signalling import applicant_of, inspector_of

# 杭州 西湖区 文三路: the case's site; the fixes below are some tens of metres away.
SITE_LAT, SITE_LON = 30.2741, 120.1551


def now_iso(offset_s: float = 0) -> str:
    stamp = datetime.now(UTC) + timedelta(seconds=offset_s)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def new_invite(server: LiveServer, **case_fields: Any) -> dict[str, Any]:
    case = await server.new_case("inspector1", **case_fields)
    status, created = await server.request(
        "POST", f"/api/cases/{case['case_id']}/inspections", "inspector1"
    )
    assert status == 201, created
    return {**created, "case_id": case["case_id"]}


async def chain(server: LiveServer, case_id: str) -> list[ChainEntry]:
    _, entries = await server.services.archive.chain_page(case_id, 0, 10_000)
    return entries


def of_kind(entries: list[ChainEntry], kind: str) -> list[dict[str, Any]]:
    return [entry.body for entry in entries if entry.kind == kind]


async def location_rows(server: LiveServer, inspection_id: str) -> list[dict[str, Any]]:
    return await server.rows(
        "SELECT * FROM locations WHERE inspection_id = ? ORDER BY id", (inspection_id,)
    )


async def test_fix_is_chained_and_inspector_sees_it_with_distance_to_the_site(
    live_server: LiveServer,
) -> None:
    invite = await new_invite(live_server, site_lat=SITE_LAT, site_lon=SITE_LON)
    async with (
        inspector_of(live_server, invite) as inspector,
        applicant_of(live_server, invite, consent=True) as applicant,
    ):
        fix_at = now_iso(-2)
        await applicant.send(type="location", lat=30.2745, lon=120.1555, accuracy=12.5, at=fix_at)
        ack = await applicant.receive("location_ack")
        assert ack["trail_count"] == 1
        seen = await inspector.receive("location")

    expected = haversine_m(30.2745, 120.1555, SITE_LAT, SITE_LON)
    assert 40 < expected < 80  # the fixture itself: some tens of metres
    assert seen["distance_m"] == pytest.approx(expected, abs=0.1)
    assert (seen["lat"], seen["lon"], seen["accuracy"]) == (30.2745, 120.1555, 12.5)
    assert seen["at"] == fix_at
    assert seen["trail_count"] == 1
    assert seen["site"] == {"lat": SITE_LAT, "lon": SITE_LON}

    [body] = of_kind(await chain(live_server, invite["case_id"]), "location")
    assert body == {
        "inspection_id": invite["inspection_id"],
        "participant_id": "applicant",
        "lat": "30.2745000",
        "lon": "120.1555000",
        "accuracy_m": "12.5",
        "fix_at": fix_at,
        "fix_source": "device",
        "distance_m": f"{expected:.1f}",
    }
    [row] = await location_rows(live_server, invite["inspection_id"])
    assert (row["lat"], row["lon"], row["fix_at"]) == ("30.2745000", "120.1555000", fix_at)


async def test_fix_without_site_coordinates_has_no_distance(live_server: LiveServer) -> None:
    invite = await new_invite(live_server)
    async with (
        inspector_of(live_server, invite) as inspector,
        applicant_of(live_server, invite, consent=True) as applicant,
    ):
        for n in range(3):
            await applicant.send(
                type="location", lat=-33.8 - n, lon=151.2, accuracy=5, at=now_iso()
            )
            await applicant.receive("location_ack")
        seen = [await inspector.receive("location") for _ in range(3)]
    assert [m["trail_count"] for m in seen] == [1, 2, 3]
    assert all(m["distance_m"] is None and m["site"] is None for m in seen)
    bodies = of_kind(await chain(live_server, invite["case_id"]), "location")
    assert [b["lat"] for b in bodies] == ["-33.8000000", "-34.8000000", "-35.8000000"]
    assert all(b["distance_m"] is None for b in bodies)


@pytest.mark.parametrize(
    ("fields", "complaint"),
    [
        ({"lat": 90.0001}, "'lat' must be between -90 and 90"),
        ({"lat": -91}, "'lat' must be between -90 and 90"),
        ({"lon": 180.5}, "'lon' must be between -180 and 180"),
        ({"accuracy": -1}, "'accuracy' must be between 0 and"),
        ({"accuracy": 100_001}, "'accuracy' must be between 0 and"),
        ({"lat": "30.1"}, "'lat' must be a finite number"),
        ({"lon": True}, "'lon' must be a finite number"),
        ({"at": "yesterday"}, "'at' must be an ISO 8601 time"),
        ({"at": "2026-01-01T08:00:00"}, "'at' must name its time zone"),
        ({"at": "STALE"}, "'at' is more than 10 minutes from the server's time"),
        ({"at": "FUTURE"}, "'at' is more than 10 minutes from the server's time"),
    ],
)
async def test_bad_fix_is_refused_precisely_and_nothing_is_written(
    live_server: LiveServer, fields: dict[str, Any], complaint: str
) -> None:
    invite = await new_invite(live_server, site_lat=SITE_LAT, site_lon=SITE_LON)
    times = {"STALE": now_iso(-11 * 60), "FUTURE": now_iso(11 * 60)}
    message = {"lat": 30.27, "lon": 120.15, "accuracy": 10, "at": now_iso(), **fields}
    message["at"] = times.get(message["at"], message["at"])
    async with applicant_of(live_server, invite, consent=True) as applicant:
        await applicant.assert_usable()  # consent is chained before we count
        before = len(await chain(live_server, invite["case_id"]))
        await applicant.send(type="location", **message)
        error = await applicant.expect_error("bad_message", "location")
        assert complaint in error["reason"], error
        await applicant.assert_usable()
        assert len(await chain(live_server, invite["case_id"])) == before
    assert await location_rows(live_server, invite["inspection_id"]) == []


async def test_fix_before_consent_is_refused(live_server: LiveServer) -> None:
    invite = await new_invite(live_server)
    async with applicant_of(live_server, invite) as applicant:
        await applicant.send(type="location", lat=1, lon=2, accuracy=3, at=now_iso())
        await applicant.expect_error("consent_required", "location")
    assert await location_rows(live_server, invite["inspection_id"]) == []


async def test_denied_location_is_chained_and_told_to_the_inspector(
    live_server: LiveServer,
) -> None:
    invite = await new_invite(live_server)
    async with (
        inspector_of(live_server, invite) as inspector,
        applicant_of(live_server, invite, consent=True) as applicant,
    ):
        await applicant.send(type="location_denied", reason="permission denied")
        told = await inspector.receive("location_denied")
        assert told["reason"] == "permission denied"
    [body] = of_kind(await chain(live_server, invite["case_id"]), "location_denied")
    assert body["reason"] == "permission denied"
    assert body["participant_id"] == "applicant"


async def test_roles_may_only_send_their_own_checks(live_server: LiveServer) -> None:
    invite = await new_invite(live_server)
    async with (
        inspector_of(live_server, invite) as inspector,
        applicant_of(live_server, invite, consent=True) as applicant,
    ):
        await inspector.send(type="location", lat=1, lon=2, accuracy=3, at=now_iso())
        await inspector.expect_error("forbidden", "location")
        await applicant.send(type="challenge", kind="code")
        await applicant.expect_error("forbidden", "challenge")
        await applicant.send(type="challenge_judge", challenge_id="0" * 32, judgement="passed")
        await applicant.expect_error("forbidden", "challenge_judge")
        await inspector.send(type="challenge_shown", challenge_id="0" * 32)
        await inspector.expect_error("forbidden", "challenge_shown")


async def test_code_challenge_shown_and_judged_is_audited_with_response_time(
    live_server: LiveServer,
) -> None:
    invite = await new_invite(live_server)
    async with (
        inspector_of(live_server, invite) as inspector,
        applicant_of(live_server, invite, consent=True) as applicant,
    ):
        await inspector.send(type="challenge", kind="code")
        shown_to_applicant = await applicant.receive("challenge")
        issued = await inspector.receive("challenge_state")
        challenge_id = shown_to_applicant["challenge_id"]
        code = shown_to_applicant["prompt"]
        assert shown_to_applicant["kind"] == "code"
        assert len(code) == 4
        assert code.isdigit()
        assert (issued["challenge_id"], issued["prompt"], issued["state"]) == (
            challenge_id,
            code,
            "issued",
        )

        await applicant.send(type="challenge_shown", challenge_id=challenge_id)
        shown = await inspector.receive("challenge_state")
        assert shown["state"] == "shown"
        assert isinstance(shown["response_ms"], int)
        assert shown["response_ms"] >= 0

        await applicant.send(type="challenge_shown", challenge_id=challenge_id)
        await applicant.expect_error("conflict", "challenge_shown")

        await inspector.send(
            type="challenge_judge", challenge_id=challenge_id, judgement="passed", note="看清了"
        )
        judged = await inspector.receive("challenge_state")
        assert (judged["state"], judged["judgement"], judged["note"]) == (
            "passed",
            "passed",
            "看清了",
        )
        closed = await applicant.receive("challenge_closed")
        assert closed["challenge_id"] == challenge_id

        await inspector.send(type="challenge_judge", challenge_id=challenge_id, judgement="failed")
        error = await inspector.expect_error("conflict", "challenge_judge")
        assert "already judged 'passed'" in error["reason"]

    entries = await chain(live_server, invite["case_id"])
    assert of_kind(entries, "challenge_issued") == [
        {
            "inspection_id": invite["inspection_id"],
            "challenge_id": challenge_id,
            "kind": "code",
            "prompt": code,
            "by": "inspector1",
            "issued_at": issued["issued_at"],
        }
    ]
    assert of_kind(entries, "challenge_shown") == [
        {
            "inspection_id": invite["inspection_id"],
            "challenge_id": challenge_id,
            "response_ms": shown["response_ms"],
            "shown_at": shown["shown_at"],
        }
    ]
    assert of_kind(entries, "challenge_judged") == [
        {
            "inspection_id": invite["inspection_id"],
            "challenge_id": challenge_id,
            "judgement": "passed",
            "note": "看清了",
            "by": "inspector1",
            "judged_at": judged["judged_at"],
        }
    ]


async def test_instruction_challenge_needs_text_and_unknown_ids_are_not_found(
    live_server: LiveServer,
) -> None:
    invite = await new_invite(live_server)
    async with (
        inspector_of(live_server, invite) as inspector,
        applicant_of(live_server, invite, consent=True) as applicant,
    ):
        await inspector.send(type="challenge", kind="instruction", text="   ")
        await inspector.expect_error("bad_message", "challenge")
        await inspector.send(type="challenge", kind="selfie")
        await inspector.expect_error("bad_message", "challenge")
        await inspector.send(type="challenge_judge", challenge_id="f" * 32, judgement="passed")
        await inspector.expect_error("not_found", "challenge_judge")
        await applicant.send(type="challenge_shown", challenge_id="nothex")
        await applicant.expect_error("bad_message", "challenge_shown")

        await inspector.send(type="challenge", kind="instruction", text="请拍门牌号")
        received = await applicant.receive("challenge")
        assert (received["kind"], received["prompt"]) == ("instruction", "请拍门牌号")
    kinds = [e.kind for e in await chain(live_server, invite["case_id"])]
    assert kinds.count("challenge_issued") == 1


async def test_challenge_without_applicant_is_unavailable(live_server: LiveServer) -> None:
    invite = await new_invite(live_server)
    async with inspector_of(live_server, invite) as inspector:
        await inspector.send(type="challenge", kind="code")
        await inspector.expect_error("unavailable", "challenge")


async def test_rejoining_pages_catch_up_on_location_and_open_challenges(
    live_server: LiveServer,
) -> None:
    invite = await new_invite(live_server, site_lat=SITE_LAT, site_lon=SITE_LON)
    async with (
        inspector_of(live_server, invite) as inspector,
        applicant_of(live_server, invite, consent=True) as applicant,
    ):
        await applicant.send(type="location", lat=30.2741, lon=120.1551, accuracy=8, at=now_iso())
        await applicant.receive("location_ack")
        await inspector.send(type="challenge", kind="instruction", text="展示门牌")
        pending = await applicant.receive("challenge")

    # Both reconnect: the inspector sees the last fix and the challenge, the applicant the
    # challenge it has not answered yet.
    async with applicant_of(live_server, invite) as applicant:
        again = await applicant.receive("challenge")
        assert again["challenge_id"] == pending["challenge_id"]
        async with inspector_of(live_server, invite) as inspector:
            location = await inspector.receive("location")
            assert location["distance_m"] == pytest.approx(0, abs=0.1)
            state = await inspector.receive("challenge_state")
            assert (state["challenge_id"], state["state"]) == (pending["challenge_id"], "issued")
