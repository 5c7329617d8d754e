"""The REST API (docs/api.md) against a real server: every endpoint, good input and bad."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from server.security.tokens import InviteToken, SessionToken
from tests.conftest import LiveServer


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: Any


async def call(
    server: LiveServer,
    method: str,
    path: str,
    token: str | None = None,
    **kwargs: Any,
) -> Answer:
    """One request; unlike ``LiveServer.request`` this keeps the headers and takes a raw token."""
    headers = dict(kwargs.pop("headers", {}))
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, server.base_url + path, headers=headers, **kwargs) as response,
    ):
        text = await response.text()
        body: Any = json.loads(text) if response.content_type == "application/json" else text
        return Answer(response.status, dict(response.headers), body)


def assert_error(
    status: int, body: Any, expected_status: int, code: str, *named: str, **details: Any
) -> None:
    """An error answer: the status, ``{"error": code, "reason": ...}``, the ``details`` given
    (``attempts_left=9``), a 429's ``retry_after`` (whole seconds) and nothing else but the
    ``field`` at fault (and its length ``limit``) when a body's member is."""
    assert status == expected_status, body
    assert isinstance(body, dict), body
    expected = {"error", "reason", *details}
    optional = {"field", "limit"} - expected
    if expected_status == 429:
        expected.add("retry_after")
        assert isinstance(body.get("retry_after"), int), body
        assert 1 <= body["retry_after"] <= 60, body
    assert set(body) - optional == expected, body
    assert body["error"] == code, body
    assert isinstance(body["reason"], str), body
    assert body["reason"], body
    for word in named:
        assert word in body["reason"], body
    for key, value in details.items():
        assert body[key] == value, body


def invite_token(invite: dict[str, Any]) -> str:
    return str(invite["applicant_url"]).rsplit("/", 1)[-1]


async def login(server: LiveServer, username: str, password: str) -> Answer:
    return await call(
        server, "POST", "/api/login", json={"username": username, "password": password}
    )


# Login, logout, me


async def test_login_returns_token_role_expiry_and_an_http_only_cookie(
    live_server: LiveServer,
) -> None:
    answer = await login(live_server, "inspector1", live_server.passwords["inspector1"])
    assert answer.status == 200, answer.body
    assert answer.body["username"] == "inspector1"
    assert answer.body["role"] == "inspector"
    assert answer.body["expires_at"].endswith("Z")
    assert isinstance(answer.body["token"], str)
    cookie = answer.headers["Set-Cookie"]
    assert cookie.startswith(f"takan_session={answer.body['token']};")
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "Path=/" in cookie


async def test_me_answers_who_is_logged_in_with_bearer_token(live_server: LiveServer) -> None:
    for username, role in (
        ("inspector1", "inspector"),
        ("auditor1", "auditor"),
        ("admin1", "admin"),
    ):
        status, body = await live_server.request("GET", "/api/me", username)
        assert (status, body) == (200, {"username": username, "role": role})


async def test_me_answers_with_the_session_cookie_instead_of_a_header(
    live_server: LiveServer,
) -> None:
    token = await live_server.token("auditor1")
    answer = await call(live_server, "GET", "/api/me", cookies={"takan_session": token})
    assert (answer.status, answer.body) == (200, {"username": "auditor1", "role": "auditor"})


async def test_login_with_wrong_password_is_refused_with_unauthorized(
    live_server: LiveServer,
) -> None:
    answer = await login(live_server, "inspector1", "not-the-password")
    assert_error(
        answer.status, answer.body, 401, "unauthorized", "invalid username or password",
        attempts_left=9,
    )  # fmt: skip
    assert "Set-Cookie" not in answer.headers


async def test_login_as_unknown_user_gets_the_same_answer_as_a_wrong_password(
    live_server: LiveServer,
) -> None:
    unknown = await login(live_server, "nobody", "whatever")
    wrong = await login(live_server, "inspector1", "whatever")
    assert (unknown.status, unknown.body) == (wrong.status, wrong.body)


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"password": "x"}, "username"),
        ({"username": "inspector1"}, "password"),
        ({"username": 5, "password": "x"}, "username"),
        ({"username": "inspector1", "password": ["x"]}, "password"),
        ({"username": "", "password": "x"}, "username"),
        ({"username": "u" * 65, "password": "x"}, "username"),
    ],
)
async def test_login_without_a_proper_username_or_password_is_a_bad_request(
    live_server: LiveServer, body: dict[str, Any], named: str
) -> None:
    status, answer = await live_server.request("POST", "/api/login", json=body)
    assert_error(status, answer, 400, "bad_request", f"'{named}'")


async def test_eleventh_failed_login_from_one_address_is_rate_limited_with_retry_after(
    live_server: LiveServer,
) -> None:
    for _ in range(10):
        answer = await login(live_server, "inspector1", "guess")
        assert answer.status == 401, answer.body
    limited = await login(live_server, "inspector1", "guess")
    assert_error(limited.status, limited.body, 429, "rate_limited", "for this account")
    assert int(limited.headers["Retry-After"]) == limited.body["retry_after"]
    # While limited, even the right password waits: guessing cannot continue.
    right = await login(live_server, "inspector1", live_server.passwords["inspector1"])
    assert_error(right.status, right.body, 429, "rate_limited")
    assert "Retry-After" in right.headers


async def test_successful_logins_do_not_count_towards_the_rate_limit(
    live_server: LiveServer,
) -> None:
    for _ in range(12):
        answer = await login(live_server, "admin1", live_server.passwords["admin1"])
        assert answer.status == 200, answer.body


async def test_logout_revokes_the_token_at_once(live_server: LiveServer) -> None:
    answer = await login(live_server, "inspector1", live_server.passwords["inspector1"])
    token = answer.body["token"]
    assert (await call(live_server, "GET", "/api/me", token)).status == 200
    out = await call(live_server, "POST", "/api/logout", token)
    assert (out.status, out.body) == (200, {"ok": True})
    assert "takan_session=" in out.headers["Set-Cookie"]  # the cookie is cleared
    again = await call(live_server, "GET", "/api/me", token)
    assert_error(again.status, again.body, 401, "unauthorized", "revoked")
    cookie = await call(live_server, "GET", "/api/cases", cookies={"takan_session": token})
    assert_error(cookie.status, cookie.body, 401, "unauthorized")


async def test_logout_of_one_session_leaves_the_users_other_sessions_working(
    live_server: LiveServer,
) -> None:
    password = live_server.passwords["inspector1"]
    first = (await login(live_server, "inspector1", password)).body["token"]
    second = (await login(live_server, "inspector1", password)).body["token"]
    await call(live_server, "POST", "/api/logout", first)
    assert (await call(live_server, "GET", "/api/me", second)).status == 200


async def test_logout_without_a_token_or_with_a_revoked_one_is_unauthorized(
    live_server: LiveServer,
) -> None:
    status, body = await live_server.request("POST", "/api/logout")
    assert_error(status, body, 401, "unauthorized", "login required")
    token = await live_server.token("inspector1")
    assert (await call(live_server, "POST", "/api/logout", token)).status == 200
    again = await call(live_server, "POST", "/api/logout", token)
    assert_error(again.status, again.body, 401, "unauthorized", "revoked")


async def test_request_without_a_token_is_refused_with_unauthorized(
    live_server: LiveServer,
) -> None:
    for method, path in (
        ("GET", "/api/me"),
        ("GET", "/api/cases"),
        ("GET", "/api/cases/CASE-X"),
        ("POST", "/api/cases/CASE-X/inspections"),
        ("GET", "/api/inspections/" + "a" * 32),
        ("GET", "/api/inspections/" + "a" * 32 + "/qr.svg"),
        ("POST", "/api/inspections/" + "a" * 32 + "/end"),
    ):
        status, body = await live_server.request(method, path)
        assert_error(status, body, 401, "unauthorized", "login required")
    status, body = await live_server.request("POST", "/api/cases", json={"case_id": "C-1"})
    assert_error(status, body, 401, "unauthorized")


@pytest.mark.parametrize(
    "header",
    ["Basic aW5zcGVjdG9yMTpwdw==", "Bearer", "Bearer    ", "Token abc.def", "abc.def"],
)
async def test_authorization_header_that_is_not_a_bearer_token_is_unauthorized(
    live_server: LiveServer, header: str
) -> None:
    status, body = await live_server.request("GET", "/api/me", headers={"Authorization": header})
    assert_error(status, body, 401, "unauthorized")


async def test_forged_token_is_refused_with_unauthorized(live_server: LiveServer) -> None:
    real = await live_server.token("auditor1")
    payload, mac = real.split(".")
    for forged in (
        "forged.token",
        payload + "." + mac[::-1],
        real.replace(payload, payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB")),
        "x" * 5000,
        "é.é",
    ):
        answer = await call(live_server, "GET", "/api/me", forged)
        assert_error(answer.status, answer.body, 401, "unauthorized")


async def test_session_signed_for_another_role_without_a_session_row_is_unauthorized(
    live_server: LiveServer,
) -> None:
    # A correctly signed token whose session was never issued (or was deleted) is refused.
    signer = live_server.services.signer
    token = signer.sign_session(
        SessionToken(1, "inspector1", "admin", "never-issued", int(time.time()) + 600)
    )
    answer = await call(live_server, "GET", "/api/me", token)
    assert_error(answer.status, answer.body, 401, "unauthorized", "revoked or expired")


async def test_expired_session_token_is_refused_with_unauthorized(
    live_server: LiveServer,
) -> None:
    token = live_server.services.signer.sign_session(
        SessionToken(1, "inspector1", "inspector", "old", int(time.time()) - 5)
    )
    answer = await call(live_server, "GET", "/api/me", token)
    assert_error(answer.status, answer.body, 401, "unauthorized", "expired")


async def test_invite_token_cannot_be_used_as_a_login(live_server: LiveServer) -> None:
    invite = await live_server.new_inspection()
    # An applicant's invite is a real credential, refused for anything but the applicant's own.
    answer = await call(live_server, "GET", "/api/cases", invite_token(invite))
    assert_error(answer.status, answer.body, 403, "forbidden", "invite")
    signed = live_server.services.signer.sign_invite(
        InviteToken(invite["case_id"], invite["inspection_id"], int(time.time()) + 600)
    )
    answer = await call(live_server, "GET", "/api/me", signed)
    assert_error(answer.status, answer.body, 403, "forbidden", "invite")


# Request bodies


async def test_malformed_json_body_is_refused_with_bad_json(live_server: LiveServer) -> None:
    for path, user in (
        ("/api/login", None),
        ("/api/cases", "inspector1"),
        ("/api/join/code", None),
    ):
        status, body = await live_server.request(
            "POST", path, user, data=b'{"case_id": ', headers={"Content-Type": "application/json"}
        )
        assert_error(status, body, 400, "bad_json", "not valid JSON")


async def test_body_that_is_not_utf8_is_refused_with_bad_json(live_server: LiveServer) -> None:
    status, body = await live_server.request(
        "POST", "/api/login", data=b"\xff\xfe{}", headers={"Content-Type": "application/json"}
    )
    assert_error(status, body, 400, "bad_json")


@pytest.mark.parametrize("document", [[1, 2], "text", 42, None])
async def test_json_body_that_is_not_an_object_is_refused_with_bad_json(
    live_server: LiveServer, document: Any
) -> None:
    status, body = await live_server.request(
        "POST",
        "/api/cases",
        "inspector1",
        data=json.dumps(document),
        headers={"Content-Type": "application/json"},
    )
    assert_error(status, body, 400, "bad_json", "JSON object")


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"],
)
async def test_body_not_sent_as_json_is_refused_with_unsupported_media_type(
    live_server: LiveServer, content_type: str
) -> None:
    # A cross-site HTML form can only send these types: none of them may change anything.
    for path, user in (
        ("/api/login", None),
        ("/api/cases", "inspector1"),
        ("/api/join/code", None),
    ):
        status, body = await live_server.request(
            "POST",
            path,
            user,
            data=b"username=a&password=b",
            headers={"Content-Type": content_type},
        )
        assert_error(status, body, 415, "unsupported_media_type", "application/json")


async def test_body_over_64_kib_is_refused_as_a_bad_request(live_server: LiveServer) -> None:
    status, body = await live_server.request(
        "POST", "/api/cases", "inspector1", json={"case_id": "BIG-1", "title": "t" * 70_000}
    )
    assert_error(status, body, 400, "bad_request", "65536 bytes")


async def _trickled(data: bytes, piece: int = 500) -> AsyncIterator[bytes]:
    """A body sent slowly in pieces, as over a weak mobile connection."""
    for start in range(0, len(data), piece):
        yield data[start : start + piece]
        await asyncio.sleep(0.002)


async def test_body_arriving_slowly_in_pieces_is_read_whole(live_server: LiveServer) -> None:
    fields = {"case_id": "SLOW-1", "title": "t", "address": "a" * 300, "notes": "n" * 20_000}
    status, body = await live_server.request(
        "POST",
        "/api/cases",
        "inspector1",
        data=_trickled(json.dumps(fields).encode()),
        headers={"Content-Type": "application/json"},
    )
    assert status == 201, body
    assert body["address"] == "a" * 300


async def test_body_over_64_kib_arriving_in_pieces_is_refused_as_a_bad_request(
    live_server: LiveServer,
) -> None:
    raw = json.dumps({"case_id": "SLOW-2", "title": "t", "pad": "p" * 70_000}).encode()
    status, body = await live_server.request(
        "POST",
        "/api/cases",
        "inspector1",
        data=_trickled(raw, piece=8192),
        headers={"Content-Type": "application/json"},
    )
    assert_error(status, body, 400, "bad_request", "65536 bytes")


# Cases


async def test_inspector_creates_a_case_and_gets_it_back(live_server: LiveServer) -> None:
    fields = {
        "case_id": "HZ-2026.001_a",
        "title": "  新建厂房踏勘  ",
        "address": "杭州市西湖区文三路 100 号",
        "applicant_name": "张三",
        "applicant_phone": "13800000000",
        "case_type": "factory",
        "site_lat": 30.27,
        "site_lon": -180,
    }
    status, case = await live_server.request("POST", "/api/cases", "inspector1", json=fields)
    assert status == 201, case
    assert case == {
        **fields,
        "case_number": "HZ-2026.001_a",  # a valid case ID is its own number
        "title": "新建厂房踏勘",
        "site_lon": -180.0,
        "site_system": "wgs84",
        "site_input_lat": 30.27,
        "site_input_lon": -180.0,
        "created_at": case["created_at"],
        "inspectors": ["inspector1"],  # who creates a case inspects it
    }
    assert case["created_at"].endswith("Z")
    status, fetched = await live_server.request("GET", "/api/cases/HZ-2026.001_a", "inspector1")
    assert status == 200, fetched
    assert fetched == {**case, "inspections": []}


async def test_case_with_only_required_fields_gets_empty_optionals(live_server: LiveServer) -> None:
    status, case = await live_server.request(
        "POST", "/api/cases", "inspector1", json={"case_id": "7", "title": "t", "address": "a"}
    )
    assert status == 201, case
    assert case["applicant_name"] == case["applicant_phone"] == case["case_type"] == ""
    assert case["site_lat"] is None
    assert case["site_lon"] is None


@pytest.mark.parametrize(
    "case_id",
    [
        "../x",
        "..",
        "a..b",
        ".hidden",
        "-dash",
        "_under",
        "",
        "a/b",
        "a b",
        "案件1",
        "x" * 65,
        "x" * 200,
        "a\\b",
        "a\x00b",
    ],
)
async def test_case_id_outside_the_allowed_alphabet_is_a_bad_request(
    live_server: LiveServer, case_id: str
) -> None:
    status, body = await live_server.request(
        "POST", "/api/cases", "inspector1", json={"case_id": case_id, "title": "t", "address": "a"}
    )
    assert_error(status, body, 400, "bad_request", "case_id")


async def test_case_id_of_64_characters_is_accepted(live_server: LiveServer) -> None:
    await live_server.new_case(case_id="C" * 64)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"case_id": None}, "case_id"),
        ({"case_id": 12}, "case_id"),
        ({"title": None}, "title"),
        ({"title": "   "}, "title"),
        ({"title": 5}, "title"),
        ({"title": "t" * 201}, "title"),
        ({"address": None}, "address"),
        ({"address": "a" * 301}, "address"),
        ({"applicant_name": 7}, "applicant_name"),
        ({"applicant_phone": "1" * 41}, "applicant_phone"),
        ({"case_type": ["a"]}, "case_type"),
        ({"site_lat": 90.01}, "site_lat"),
        ({"site_lat": -91}, "site_lat"),
        ({"site_lon": 180.5}, "site_lon"),
        ({"site_lat": "30.2"}, "site_lat"),
        ({"site_lat": True}, "site_lat"),
    ],
)
async def test_missing_or_invalid_case_field_is_a_bad_request_naming_it(
    live_server: LiveServer, change: dict[str, Any], named: str
) -> None:
    fields = {"case_id": "GOOD-1", "title": "t", "address": "a", **change}
    body = {k: v for k, v in fields.items() if v is not None}
    status, answer = await live_server.request("POST", "/api/cases", "inspector1", json=body)
    assert_error(status, answer, 400, "bad_request", f"'{named}'")
    status, _ = await live_server.request("GET", "/api/cases/GOOD-1", "admin1")
    assert status == 404  # nothing was stored


async def test_site_coordinate_of_nan_or_infinity_is_a_bad_request(
    live_server: LiveServer,
) -> None:
    for literal in ("NaN", "Infinity", "-Infinity"):
        raw = '{"case_id": "C-NAN", "title": "t", "address": "a", "site_lat": ' + literal + "}"
        status, body = await live_server.request(
            "POST",
            "/api/cases",
            "inspector1",
            data=raw,
            headers={"Content-Type": "application/json"},
        )
        assert_error(status, body, 400, "bad_request", "site_lat")


async def test_creating_an_existing_case_id_is_a_conflict(live_server: LiveServer) -> None:
    await live_server.new_case(case_id="DUP-1")
    status, body = await live_server.request(
        "POST", "/api/cases", "inspector2", json={"case_id": "DUP-1", "title": "t", "address": "a"}
    )
    assert_error(status, body, 409, "conflict", "DUP-1")


async def test_auditor_cannot_create_a_case(live_server: LiveServer) -> None:
    status, body = await live_server.request(
        "POST", "/api/cases", "auditor1", json={"case_id": "AUD-1", "title": "t", "address": "a"}
    )
    assert_error(status, body, 403, "forbidden", "auditor")


async def test_inspector_lists_only_own_cases_while_auditor_and_admin_list_all(
    live_server: LiveServer,
) -> None:
    mine = await live_server.new_case("inspector1")
    theirs = await live_server.new_case("inspector2")

    async def listed(username: str) -> set[str]:
        status, body = await live_server.request("GET", "/api/cases", username)
        assert status == 200, body
        return {case["case_id"] for case in body["cases"]}

    assert await listed("inspector1") == {mine["case_id"]}
    assert await listed("inspector2") == {theirs["case_id"]}
    assert await listed("auditor1") == {mine["case_id"], theirs["case_id"]}
    assert await listed("admin1") == {mine["case_id"], theirs["case_id"]}


async def test_inspector_cannot_read_another_inspectors_case(live_server: LiveServer) -> None:
    case = await live_server.new_case("inspector1")
    status, body = await live_server.request("GET", f"/api/cases/{case['case_id']}", "inspector2")
    assert_error(status, body, 403, "forbidden", "not one of this case's inspectors")


async def test_auditor_and_admin_read_any_case_with_its_inspections(
    live_server: LiveServer,
) -> None:
    invite = await live_server.new_inspection("inspector1")
    for username in ("auditor1", "admin1"):
        status, case = await live_server.request("GET", f"/api/cases/{invite['case_id']}", username)
        assert status == 200, case
        assert [i["inspection_id"] for i in case["inspections"]] == [invite["inspection_id"]]
        assert case["inspections"][0]["status"] == "active"


async def test_unknown_case_is_not_found(live_server: LiveServer) -> None:
    status, body = await live_server.request("GET", "/api/cases/NO-SUCH-CASE", "admin1")
    assert_error(status, body, 404, "not_found", "NO-SUCH-CASE")
    status, body = await live_server.request(
        "POST", "/api/cases/NO-SUCH-CASE/inspections", "inspector1"
    )
    assert_error(status, body, 404, "not_found", "NO-SUCH-CASE")


async def test_case_id_with_encoded_traversal_in_the_path_is_a_bad_request(
    live_server: LiveServer,
) -> None:
    status, body = await live_server.request("GET", "/api/cases/..%2Fx", "admin1")
    assert_error(status, body, 400, "bad_request", "case_id")
    status, body = await live_server.request("GET", "/api/cases/" + "x" * 200, "admin1")
    assert_error(status, body, 400, "bad_request", "case_id")


# Inspections


async def test_starting_an_inspection_answers_links_code_and_expiry(
    live_server: LiveServer,
) -> None:
    case = await live_server.new_case("inspector1")
    status, invite = await live_server.request(
        "POST", f"/api/cases/{case['case_id']}/inspections", "inspector1"
    )
    assert status == 201, invite
    inspection_id = invite["inspection_id"]
    base = live_server.base_url
    assert len(inspection_id) == 32
    assert invite["applicant_url"].startswith(f"{base}/join/")
    assert invite["short_code"].isdigit()
    assert len(invite["short_code"]) == 6
    assert invite["qr_svg_url"] == f"/api/inspections/{inspection_id}/qr.svg"
    assert invite["inspector_url"] == f"{base}/inspect/{inspection_id}"
    assert invite["code_url"] == f"{base}/j"
    assert invite["invite_expires_at"].endswith("Z")
    opened = live_server.services.signer.open_invite(invite_token(invite), time.time())
    assert (opened.case_id, opened.inspection_id) == (case["case_id"], inspection_id)


async def test_auditor_cannot_start_an_inspection(live_server: LiveServer) -> None:
    case = await live_server.new_case("inspector1")
    status, body = await live_server.request(
        "POST", f"/api/cases/{case['case_id']}/inspections", "auditor1"
    )
    assert_error(status, body, 403, "forbidden", "auditor")


async def test_inspector_cannot_start_an_inspection_on_another_inspectors_case(
    live_server: LiveServer,
) -> None:
    case = await live_server.new_case("inspector1")
    status, body = await live_server.request(
        "POST", f"/api/cases/{case['case_id']}/inspections", "inspector2"
    )
    assert_error(status, body, 403, "forbidden")


async def test_inspector_reads_own_inspection_with_invite_data(live_server: LiveServer) -> None:
    invite = await live_server.new_inspection("inspector1")
    status, body = await live_server.request(
        "GET", f"/api/inspections/{invite['inspection_id']}", "inspector1"
    )
    assert status == 200, body
    assert body["status"] == "active"
    assert body["case"]["case_id"] == invite["case_id"]
    assert body["participants"] == []
    assert body["invite"]["short_code"] == invite["short_code"]
    assert body["invite"]["applicant_url"] == invite["applicant_url"]


async def test_auditor_reads_an_inspection_without_its_invite(live_server: LiveServer) -> None:
    invite = await live_server.new_inspection("inspector1")
    status, body = await live_server.request(
        "GET", f"/api/inspections/{invite['inspection_id']}", "auditor1"
    )
    assert status == 200, body
    assert body["inspection_id"] == invite["inspection_id"]
    assert "invite" not in body
    assert invite_token(invite) not in json.dumps(body)


async def test_inspector_cannot_read_another_inspectors_inspection(
    live_server: LiveServer,
) -> None:
    invite = await live_server.new_inspection("inspector1")
    path = f"/api/inspections/{invite['inspection_id']}"
    status, body = await live_server.request("GET", path, "inspector2")
    assert_error(status, body, 403, "forbidden")
    status, body = await live_server.request("GET", path + "/qr.svg", "inspector2")
    assert_error(status, body, 403, "forbidden")
    status, body = await live_server.request("POST", path + "/end", "inspector2")
    assert_error(status, body, 403, "forbidden")


@pytest.mark.parametrize("inspection_id", ["a" * 32, "not-an-id", "A" * 32, "a" * 33])
async def test_unknown_or_malformed_inspection_id_is_not_found(
    live_server: LiveServer, inspection_id: str
) -> None:
    for method, suffix in (("GET", ""), ("GET", "/qr.svg"), ("POST", "/end")):
        status, body = await live_server.request(
            method, f"/api/inspections/{inspection_id}{suffix}", "inspector1"
        )
        assert_error(status, body, 404, "not_found")


async def test_qr_code_is_an_svg_image_of_the_applicant_link(live_server: LiveServer) -> None:
    invite = await live_server.new_inspection("inspector1")
    answer = await call(
        live_server, "GET", invite["qr_svg_url"], await live_server.token("inspector1")
    )
    assert answer.status == 200
    assert answer.headers["Content-Type"].startswith("image/svg+xml")
    assert answer.headers["Cache-Control"] == "no-store"
    assert "<svg" in answer.body
    assert "</svg>" in answer.body


async def test_auditor_cannot_fetch_the_qr_code(live_server: LiveServer) -> None:
    invite = await live_server.new_inspection("inspector1")
    status, body = await live_server.request("GET", invite["qr_svg_url"], "auditor1")
    assert_error(status, body, 403, "forbidden")


async def test_ending_an_inspection_voids_its_invite_code_and_qr(live_server: LiveServer) -> None:
    invite = await live_server.new_inspection("inspector1")
    inspection_id = invite["inspection_id"]
    status, body = await live_server.request(
        "POST", f"/api/inspections/{inspection_id}/end", "inspector1"
    )
    assert status == 200, body
    assert body["inspection_id"] == inspection_id
    assert body["status"] == "ended"
    assert body["ended_at"].endswith("Z")

    status, again = await live_server.request(
        "POST", f"/api/inspections/{inspection_id}/end", "inspector1"
    )
    assert_error(status, again, 409, "conflict", "already ended")

    status, code = await live_server.request(
        "POST", "/api/join/code", json={"code": invite["short_code"]}
    )
    assert_error(status, code, 404, "not_found", attempts_left=9)
    status, qr = await live_server.request("GET", invite["qr_svg_url"], "inspector1")
    assert_error(status, qr, 404, "not_found")
    status, read = await live_server.request(
        "GET", f"/api/inspections/{inspection_id}", "inspector1"
    )
    assert status == 200, read
    assert read["status"] == "ended"
    assert read["ended_at"] == body["ended_at"]
    assert "invite" not in read

    async with aiohttp.ClientSession() as http, http.ws_connect(live_server.ws_url) as ws:
        await ws.send_json({"v": 1, "type": "hello", "token": invite_token(invite)})
        refused = await ws.receive_json(timeout=10)
        assert refused["type"] == "error"
        assert refused["code"] == "inspection_ended"
        closing = await ws.receive(timeout=10)
        assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)


async def test_auditor_cannot_end_an_inspection(live_server: LiveServer) -> None:
    invite = await live_server.new_inspection("inspector1")
    status, body = await live_server.request(
        "POST", f"/api/inspections/{invite['inspection_id']}/end", "auditor1"
    )
    assert_error(status, body, 403, "forbidden")


# Short codes


async def test_short_code_is_exchanged_for_the_applicant_link(live_server: LiveServer) -> None:
    invite = await live_server.new_inspection("inspector1")
    status, body = await live_server.request(
        "POST", "/api/join/code", json={"code": invite["short_code"]}
    )
    assert (status, body) == (200, {"applicant_url": invite["applicant_url"]})


def _other_code(*taken: str) -> str:
    return next(f"{n:06d}" for n in range(1_000_000) if f"{n:06d}" not in taken)


async def test_wrong_short_code_is_not_found(live_server: LiveServer) -> None:
    invite = await live_server.new_inspection("inspector1")
    status, body = await live_server.request(
        "POST", "/api/join/code", json={"code": _other_code(invite["short_code"])}
    )
    assert_error(status, body, 404, "not_found", "code", attempts_left=9)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"code": 123456},
        {"code": "12345"},
        {"code": "1234567"},
        {"code": "12a456"},
        {"code": None},
    ],
    ids=["missing", "number", "five", "seven", "letter", "null"],
)
async def test_malformed_short_code_is_a_bad_request(
    live_server: LiveServer, body: dict[str, Any]
) -> None:
    status, answer = await live_server.request("POST", "/api/join/code", json=body)
    assert_error(status, answer, 400, "bad_request", "'code'")


async def test_short_code_guessing_is_rate_limited_after_ten_misses(
    live_server: LiveServer,
) -> None:
    invite = await live_server.new_inspection("inspector1")
    wrong = _other_code(invite["short_code"])
    for _ in range(10):
        status, body = await live_server.request("POST", "/api/join/code", json={"code": wrong})
        assert status == 404, body
    limited = await call(live_server, "POST", "/api/join/code", json={"code": wrong})
    assert_error(limited.status, limited.body, 429, "rate_limited", "wrong codes")
    assert int(limited.headers["Retry-After"]) == limited.body["retry_after"]
    right = await call(live_server, "POST", "/api/join/code", json={"code": invite["short_code"]})
    assert_error(right.status, right.body, 429, "rate_limited")
    # Login has its own limiter: guessing codes does not lock anyone out of logging in.
    status, _ = await live_server.request(
        "POST",
        "/api/login",
        json={"username": "auditor1", "password": live_server.passwords["auditor1"]},
    )
    assert status == 200


# Public endpoints, unknown routes, OpenAPI, pages


async def test_config_and_health_answer_without_login(live_server: LiveServer) -> None:
    assert await live_server.request("GET", "/api/config") == (200, {"ice_servers": []})
    status, health = await live_server.request("GET", "/api/health")
    assert (status, health["ok"]) == (200, True)


async def test_unknown_api_path_is_not_found_as_json(live_server: LiveServer) -> None:
    status, body = await live_server.request("GET", "/api/nothing-here", "admin1")
    assert_error(status, body, 404, "not_found")


async def test_wrong_method_on_an_api_path_is_method_not_allowed_as_json(
    live_server: LiveServer,
) -> None:
    status, body = await live_server.request("DELETE", "/api/cases", "admin1")
    assert_error(status, body, 405, "method_not_allowed")
    status, body = await live_server.request("GET", "/api/login")
    assert_error(status, body, 405, "method_not_allowed")


async def test_openapi_document_describes_every_api_route_the_server_has(
    live_server: LiveServer,
) -> None:
    answer = await call(live_server, "GET", "/api/openapi.json")
    assert answer.status == 200
    assert answer.headers["Content-Type"].startswith("application/json")
    document = answer.body
    assert document["openapi"].startswith("3.")
    routed: set[tuple[str, str]] = set()
    for route in live_server.app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if path.startswith("/api/") and route.method != "HEAD":
            routed.add((path, route.method.lower()))
    routed.discard(("/api/openapi.json", "get"))  # the document need not describe itself
    described = {(path, method) for path, item in document["paths"].items() for method in item}
    assert routed, "no /api/ routes found"
    assert routed - described == set()
    assert described - routed == set()
    for path, method in described:
        responses = document["paths"][path][method]["responses"]
        assert any(code.startswith("2") for code in responses), (path, method)


@pytest.mark.parametrize(
    ("path", "filename"),
    [("/login", "login.html"), ("/join/{token}", "join.html"), ("/j", "code.html")],
)
async def test_page_is_served_as_html_without_caching_or_referrer(
    live_server: LiveServer, path: str, filename: str
) -> None:
    if not (live_server.services.settings.web_dir / filename).is_file():
        pytest.skip(f"web/{filename} is not written yet")
    if "{token}" in path:
        path = path.format(token=invite_token(await live_server.new_inspection()))
    answer = await call(live_server, "GET", path)
    assert answer.status == 200
    assert answer.headers["Content-Type"].startswith("text/html")
    assert "<html" in answer.body.lower()
    assert answer.headers["Referrer-Policy"] == "no-referrer"
    assert answer.headers["Cache-Control"] == "no-store"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
