"""The signalling WebSocket (docs/signalling.md) against a real server.

Every refusal is an ``error`` message with the documented code and ``ref``, and the same socket
keeps working afterwards (a ``ping`` still gets a ``pong``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from server.consent_notice import DEFAULT_NOTICE
from server.http.accesslog import RedactingAccessLogger, redact
from server.http.app import create_app
from server.security.tokens import InviteToken
from server.settings import Settings
from tests.conftest import LiveServer, add_users
from tests.integration.peers import invite_token, join

# Messages that arrive whenever somebody joins, leaves or consents; tests that wait for a reply
# to their own message skip these.
BACKGROUND = ("presence",)


@dataclass
class Client:
    """One signalling socket, read strictly in order."""

    ws: aiohttp.ClientWebSocketResponse
    seen: list[dict[str, Any]] = field(default_factory=list)

    async def send(self, **message: Any) -> None:
        await self.ws.send_json({"v": 1, **message})

    async def send_raw(self, data: str | bytes) -> None:
        if isinstance(data, bytes):
            await self.ws.send_bytes(data)
        else:
            await self.ws.send_str(data)

    async def next(self, skip: tuple[str, ...] = BACKGROUND, timeout: float = 10) -> dict[str, Any]:
        """The next message whose type is not in ``skip``."""
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.ws.receive()
                assert frame.type == aiohttp.WSMsgType.TEXT, f"socket gave {frame!r}"
                message: dict[str, Any] = json.loads(frame.data)
                assert message.get("v") == 1, message
                self.seen.append(message)
                if message["type"] not in skip:
                    return message

    async def receive(self, kind: str, timeout: float = 10) -> dict[str, Any]:
        """The next message of type ``kind``, skipping any others."""
        async with asyncio.timeout(timeout):
            while True:
                message = await self.next(skip=())
                if message["type"] == kind:
                    return message

    async def expect_error(self, code: str, ref: str | None) -> dict[str, Any]:
        message = await self.next()
        assert message["type"] == "error", message
        assert (message["code"], message["ref"]) == (code, ref), message
        assert isinstance(message["reason"], str), message
        assert message["reason"], message
        return message

    async def assert_usable(self) -> None:
        """The socket is open and answers: a ping gets a pong."""
        await self.send(type="ping")
        assert await self.next() == {"v": 1, "type": "pong"}

    async def hello(self, **fields: Any) -> dict[str, Any]:
        await self.send(type="hello", **fields)
        return await self.next()

    async def closed_by_server(self, timeout: float = 10) -> None:
        """Read (and keep) messages until the server closes the socket."""
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.ws.receive()
                if frame.type == aiohttp.WSMsgType.TEXT:
                    self.seen.append(json.loads(frame.data))
                    continue
                assert frame.type in (
                    aiohttp.WSMsgType.CLOSE,
                    aiohttp.WSMsgType.CLOSING,
                    aiohttp.WSMsgType.CLOSED,
                ), frame
                return


@asynccontextmanager
async def connect(server: LiveServer) -> AsyncIterator[Client]:
    async with aiohttp.ClientSession() as http, http.ws_connect(server.ws_url) as ws:
        yield Client(ws)


@asynccontextmanager
async def applicant_of(
    server: LiveServer, invite: dict[str, Any], consent: bool = False
) -> AsyncIterator[Client]:
    async with connect(server) as client:
        welcome = await client.hello(token=invite_token(invite))
        assert welcome["type"] == "welcome", welcome
        assert welcome["role"] == "applicant"
        if consent:
            await client.send(type="consent", accepted=True, lang="en")
        yield client


@asynccontextmanager
async def inspector_of(
    server: LiveServer, invite: dict[str, Any], username: str = "inspector1"
) -> AsyncIterator[Client]:
    async with connect(server) as client:
        welcome = await client.hello(
            token=await server.token(username), inspection_id=invite["inspection_id"]
        )
        assert welcome["type"] == "welcome", welcome
        assert welcome["role"] == "inspector"
        yield client


def parse_utc(stamp: str) -> float:
    assert stamp.endswith("Z"), stamp
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()


# Garbage and malformed messages


async def test_text_that_is_not_json_is_refused_with_bad_json_and_socket_stays_usable(
    live_server: LiveServer,
) -> None:
    async with connect(live_server) as client:
        for garbage in ("hello there", "{", "", "{'v': 1}", "\x00"):
            await client.send_raw(garbage)
            await client.expect_error("bad_json", None)
        await client.assert_usable()


async def test_json_that_is_not_an_object_is_refused_with_bad_json(
    live_server: LiveServer,
) -> None:
    async with connect(live_server) as client:
        for document in ('[{"v": 1, "type": "ping"}]', '"ping"', "1", "null"):
            await client.send_raw(document)
            await client.expect_error("bad_json", None)
        await client.assert_usable()


async def test_binary_frame_is_refused_with_bad_json_and_socket_stays_usable(
    live_server: LiveServer,
) -> None:
    async with connect(live_server) as client:
        await client.send_raw(b'{"v": 1, "type": "ping"}')
        error = await client.expect_error("bad_json", None)
        assert "binary" in error["reason"]
        await client.assert_usable()


@pytest.mark.parametrize("size", [64 * 1024 + 1, 1024 * 1024, 4 * 1024 * 1024 - 1024])
async def test_message_over_64_kib_is_refused_as_too_large_and_socket_stays_usable(
    live_server: LiveServer, size: int
) -> None:
    async with connect(live_server) as client:
        head = '{"v": 1, "type": "chat", "text": "'
        await client.send_raw(head + "x" * (size - len(head) - 2) + '"}')
        await client.expect_error("too_large", None)
        await client.assert_usable()


async def test_multibyte_message_over_64_kib_on_the_wire_is_too_large(
    live_server: LiveServer,
) -> None:
    async with connect(live_server) as client:
        # 30 000 characters but 90 000 bytes: the limit is on bytes.
        await client.send_raw(
            json.dumps({"v": 1, "type": "ping", "p": "界" * 30_000}, ensure_ascii=False)
        )
        await client.expect_error("too_large", None)
        await client.assert_usable()


@pytest.mark.parametrize(
    ("message", "ref"),
    [
        ({"type": "ping"}, "ping"),
        ({"v": 2, "type": "ping"}, "ping"),
        ({"v": "1", "type": "hello"}, "hello"),
        ({"v": 0}, None),
    ],
    ids=["missing", "two", "string", "zero-no-type"],
)
async def test_missing_or_wrong_version_is_refused_with_bad_version(
    live_server: LiveServer, message: dict[str, Any], ref: str | None
) -> None:
    async with connect(live_server) as client:
        await client.send_raw(json.dumps(message))
        await client.expect_error("bad_version", ref)
        await client.assert_usable()


async def test_unknown_type_is_refused_naming_it(live_server: LiveServer) -> None:
    async with connect(live_server) as client:
        await client.send(type="subscribe")
        error = await client.expect_error("unknown_type", "subscribe")
        assert "subscribe" in error["reason"]
        await client.send(type=["ping"])
        await client.expect_error("bad_message", None)
        await client.assert_usable()


async def test_hello_with_wrongly_typed_fields_is_a_bad_message(live_server: LiveServer) -> None:
    async with connect(live_server) as client:
        await client.send(type="hello", token=12345)
        error = await client.expect_error("bad_message", "hello")
        assert "'token'" in error["reason"]
        await client.send(type="hello", token="abc.def", name="n" * 65)
        await client.expect_error("bad_message", "hello")
        await client.assert_usable()


async def test_wrongly_typed_fields_after_joining_are_bad_messages_naming_the_field(
    live_server: LiveServer,
) -> None:
    invite = await live_server.new_inspection()
    async with applicant_of(live_server, invite, consent=True) as applicant:
        cases: tuple[tuple[dict[str, Any], str], ...] = (
            ({"type": "chat", "text": 42}, "text"),
            ({"type": "chat", "text": ""}, "text"),
            ({"type": "chat"}, "text"),
            ({"type": "ice", "candidate": None, "sdpMLineIndex": "0"}, "sdpMLineIndex"),
            ({"type": "offer", "sdp": None}, "sdp"),
            ({"type": "control_result", "action": "zoom", "ok": "yes"}, "ok"),
            ({"type": "stats", "stats": "fast"}, "stats"),
            ({"type": "consent", "accepted": False}, "accepted"),
        )
        for message, named in cases:
            await applicant.send(**message)
            error = await applicant.expect_error("bad_message", message["type"])
            assert f"'{named}'" in error["reason"], error
        await applicant.assert_usable()
    async with inspector_of(live_server, invite) as inspector:
        await inspector.send(type="control", action="zoom", value=0)
        await inspector.expect_error("bad_message", "control")
        await inspector.send(type="control", action="switch_camera", value="back")
        await inspector.expect_error("bad_message", "control")
        await inspector.assert_usable()


# Order of messages


async def test_ping_before_hello_gets_a_pong(live_server: LiveServer) -> None:
    async with connect(live_server) as client:
        await client.assert_usable()


@pytest.mark.parametrize(
    "message",
    [
        {"type": "chat", "text": "hi"},
        {"type": "offer", "sdp": "v=0 and more"},
        {"type": "ice", "candidate": None},
        {"type": "consent", "accepted": True},
        {"type": "control", "action": "torch", "value": True},
        {"type": "control_result", "action": "torch", "ok": True},
        {"type": "stats", "stats": {"fps": 30}},
        {"type": "end"},
    ],
    ids=lambda message: str(message["type"]),
)
async def test_message_before_hello_is_refused_with_not_joined(
    live_server: LiveServer, message: dict[str, Any]
) -> None:
    async with connect(live_server) as client:
        await client.send(**message)
        await client.expect_error("not_joined", message["type"])
        await client.assert_usable()


async def test_second_hello_is_refused_with_already_joined(live_server: LiveServer) -> None:
    invite = await live_server.new_inspection()
    async with applicant_of(live_server, invite) as applicant:
        welcome_count = sum(m["type"] == "welcome" for m in applicant.seen)
        await applicant.send(type="hello", token=invite_token(invite))
        await applicant.expect_error("already_joined", "hello")
        await applicant.assert_usable()
        assert sum(m["type"] == "welcome" for m in applicant.seen) == welcome_count
    async with inspector_of(live_server, invite) as inspector:
        await inspector.send(
            type="hello",
            token=await live_server.token("inspector1"),
            inspection_id=invite["inspection_id"],
        )
        await inspector.expect_error("already_joined", "hello")
        await inspector.assert_usable()


async def test_applicant_offer_before_consent_is_refused_with_consent_required(
    live_server: LiveServer,
) -> None:
    invite = await live_server.new_inspection()
    async with applicant_of(live_server, invite) as applicant:
        assert applicant.seen[0]["consented"] is False
        await applicant.send(type="offer", sdp="v=0\r\nnot really an offer\r\n")
        await applicant.expect_error("consent_required", "offer")
        await applicant.assert_usable()
        # After consent the offer is looked at (and this one cannot be applied).
        await applicant.send(type="consent", accepted=True)
        await applicant.send(type="offer", sdp="v=0\r\nnot really an offer\r\n")
        await applicant.expect_error("negotiation_failed", "offer")
        await applicant.assert_usable()
    status, body = await live_server.request(
        "GET", f"/api/inspections/{invite['inspection_id']}", "inspector1"
    )
    assert status == 200
    assert body["consented_at"] is not None


async def test_inspector_offer_needs_no_consent(live_server: LiveServer) -> None:
    invite = await live_server.new_inspection()
    async with inspector_of(live_server, invite) as inspector:
        await inspector.send(type="offer", sdp="v=0\r\nnot really an offer\r\n")
        await inspector.expect_error("negotiation_failed", "offer")
        await inspector.assert_usable()


async def test_ice_candidate_before_an_offer_is_refused_as_out_of_order(
    live_server: LiveServer,
) -> None:
    invite = await live_server.new_inspection()
    candidate = "candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host"
    async with applicant_of(live_server, invite, consent=True) as applicant:
        await applicant.send(type="ice", candidate=candidate, sdpMid="0", sdpMLineIndex=0)
        await applicant.expect_error("out_of_order", "ice")
        await applicant.assert_usable()
    async with inspector_of(live_server, invite) as inspector:
        await inspector.send(type="ice", candidate=None)
        await inspector.expect_error("out_of_order", "ice")
        await inspector.assert_usable()


async def test_ice_candidates_after_an_offer_are_taken_and_malformed_ones_refused(
    live_server: LiveServer,
) -> None:
    invite = await live_server.new_inspection()
    applicant = await join(live_server.ws_url, token=invite_token(invite))

    async def answer_to_ping() -> dict[str, Any]:
        await applicant.send(type="ping")
        return await applicant.receive("pong", "error")

    try:
        await applicant.send(type="consent", accepted=True)
        await applicant.connect_media("applicant")
        for good in (
            {"candidate": "candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host", "sdpMid": "0"},
            {"candidate": "1 1 udp 2130706431 127.0.0.1 50001 typ host", "sdpMLineIndex": 0},
            {
                "candidate": "candidate:2 1 udp 1 192.0.2.1 9 typ srflx raddr 0.0.0.0 rport 0",
                "sdpMid": "0",
                "sdpMLineIndex": 0,
            },
            {"candidate": "candidate:3 1 udp 1 not-an-address 9 typ host", "sdpMid": "0"},
            {"candidate": None},
            {"candidate": ""},
        ):
            await applicant.send(type="ice", **good)
            assert (await answer_to_ping())["type"] == "pong", good
        for bad in (
            {"candidate": "candidate:garbage", "sdpMid": "0"},
            {"candidate": "candidate:1 x udp 1 127.0.0.1 9 typ host", "sdpMid": "0"},
            {"candidate": "candidate:1 1 udp 1 127.0.0.1 port typ host", "sdpMid": "0"},
            {"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host"},
        ):
            await applicant.send(type="ice", **bad)
            error = await answer_to_ping()
            assert (error["type"], error["code"], error["ref"]) == ("error", "bad_message", "ice")
            assert (await applicant.receive("pong", "error"))["type"] == "pong", bad
    finally:
        await applicant.close()


# Roles


@pytest.mark.parametrize(
    "message",
    [
        {"type": "control", "action": "torch", "value": True},
        {"type": "end"},
    ],
    ids=["control", "end"],
)
async def test_applicant_may_not_send_inspector_messages(
    live_server: LiveServer, message: dict[str, Any]
) -> None:
    invite = await live_server.new_inspection()
    async with (
        inspector_of(live_server, invite),
        applicant_of(live_server, invite, consent=True) as applicant,
    ):
        await applicant.send(**message)
        await applicant.expect_error("forbidden", message["type"])
        await applicant.assert_usable()
    inspection = await live_server.services.store.inspections.get(invite["inspection_id"])
    assert inspection is not None
    assert inspection.status == "active"


@pytest.mark.parametrize(
    "message",
    [
        {"type": "control_result", "action": "torch", "ok": True},
        {"type": "consent", "accepted": True},
    ],
    ids=["control_result", "consent"],
)
async def test_inspector_may_not_send_applicant_messages(
    live_server: LiveServer, message: dict[str, Any]
) -> None:
    invite = await live_server.new_inspection()
    async with inspector_of(live_server, invite) as inspector:
        await inspector.send(**message)
        await inspector.expect_error("forbidden", message["type"])
        await inspector.assert_usable()
    inspection = await live_server.services.store.inspections.get(invite["inspection_id"])
    assert inspection is not None
    assert inspection.consented_at is None  # an inspector cannot consent for the applicant


@pytest.mark.parametrize("username", ["auditor1", "admin1"])
async def test_auditor_or_admin_cannot_join_a_live_inspection(
    live_server: LiveServer, username: str
) -> None:
    invite = await live_server.new_inspection()
    async with connect(live_server) as client:
        error = await client.hello(
            token=await live_server.token(username), inspection_id=invite["inspection_id"]
        )
        assert error["type"] == "error", error
        assert (error["code"], error["ref"]) == ("forbidden", "hello")
        await client.assert_usable()


async def test_inspector_cannot_join_another_inspectors_inspection(
    live_server: LiveServer,
) -> None:
    invite = await live_server.new_inspection("inspector1")
    async with connect(live_server) as client:
        error = await client.hello(
            token=await live_server.token("inspector2"), inspection_id=invite["inspection_id"]
        )
        assert error["type"] == "error", error
        assert (error["code"], error["ref"]) == ("forbidden", "hello")
        await client.assert_usable()
    assert live_server.services.live.get(invite["inspection_id"]) is None


# Tokens


async def _refused_hello(server: LiveServer, code: str, **hello: Any) -> None:
    async with connect(server) as client:
        error = await client.hello(**hello)
        assert error["type"] == "error", error
        assert (error["code"], error["ref"]) == (code, "hello"), error
        await client.assert_usable()


async def test_hello_without_a_token_is_unauthorized(live_server: LiveServer) -> None:
    await _refused_hello(live_server, "unauthorized")
    await _refused_hello(live_server, "unauthorized", token="")
    await _refused_hello(live_server, "unauthorized", token=None, name="张三")


async def test_forged_invite_is_refused_with_unauthorized(live_server: LiveServer) -> None:
    invite = await live_server.new_inspection()
    real = invite_token(invite)
    payload, mac = real.split(".")
    for forged in (
        "forged.invite",
        f"{payload}.{mac[::-1]}",
        f"{payload[:-3]}AAA.{mac}",
        "界.界",
    ):
        await _refused_hello(live_server, "unauthorized", token=forged)


async def test_expired_invite_is_refused_with_unauthorized(live_server: LiveServer) -> None:
    invite = await live_server.new_inspection()
    expired = live_server.services.signer.sign_invite(
        InviteToken(invite["case_id"], invite["inspection_id"], int(time.time()) - 1)
    )
    await _refused_hello(live_server, "unauthorized", token=expired)


async def test_invite_for_another_case_is_refused_with_unauthorized(
    live_server: LiveServer,
) -> None:
    invite = await live_server.new_inspection()
    other = await live_server.new_inspection()
    signer, expires_at = live_server.services.signer, int(time.time()) + 600
    mismatched = signer.sign_invite(
        InviteToken(other["case_id"], invite["inspection_id"], expires_at)
    )
    await _refused_hello(live_server, "unauthorized", token=mismatched)
    nowhere = signer.sign_invite(InviteToken(invite["case_id"], "0" * 32, expires_at))
    await _refused_hello(live_server, "unauthorized", token=nowhere)


async def test_invite_token_does_not_let_anyone_join_as_inspector(
    live_server: LiveServer,
) -> None:
    invite = await live_server.new_inspection()
    other = await live_server.new_inspection()
    async with connect(live_server) as client:
        # inspection_id is ignored for an invite: the applicant lands in the invite's inspection.
        welcome = await client.hello(
            token=invite_token(invite), inspection_id=other["inspection_id"]
        )
        assert welcome["type"] == "welcome", welcome
        assert welcome["role"] == "applicant"
        assert welcome["inspection"]["inspection_id"] == invite["inspection_id"]


async def test_revoked_or_expired_session_is_refused_with_unauthorized(
    live_server: LiveServer,
) -> None:
    invite = await live_server.new_inspection()
    token = await live_server.token("inspector1")
    status, _ = await live_server.request("POST", "/api/logout", "inspector1")
    assert status == 200
    await _refused_hello(
        live_server, "unauthorized", token=token, inspection_id=invite["inspection_id"]
    )


async def test_inspector_joins_with_the_session_cookie_and_a_null_token(
    live_server: LiveServer,
) -> None:
    invite = await live_server.new_inspection()
    token = await live_server.token("inspector1")
    async with (
        aiohttp.ClientSession(cookies={"takan_session": token}) as http,
        http.ws_connect(live_server.ws_url) as ws,
    ):
        client = Client(ws)
        welcome = await client.hello(token=None, inspection_id=invite["inspection_id"])
        assert (welcome["type"], welcome["role"]) == ("welcome", "inspector")


async def test_inspector_hello_needs_an_existing_inspection_id(live_server: LiveServer) -> None:
    token = await live_server.token("inspector1")
    await _refused_hello(live_server, "bad_message", token=token)
    await _refused_hello(live_server, "unauthorized", token=token, inspection_id="f" * 32)


async def test_socket_that_failed_hello_can_then_join_with_a_good_token(
    live_server: LiveServer,
) -> None:
    invite = await live_server.new_inspection()
    async with connect(live_server) as client:
        refused = await client.hello(token="forged.invite")
        assert refused["code"] == "unauthorized"
        welcome = await client.hello(token=invite_token(invite))
        assert welcome["type"] == "welcome", welcome


async def test_invite_of_an_ended_inspection_is_refused_and_the_socket_closed(
    live_server: LiveServer,
) -> None:
    invite = await live_server.new_inspection()
    status, _ = await live_server.request(
        "POST", f"/api/inspections/{invite['inspection_id']}/end", "inspector1"
    )
    assert status == 200
    async with connect(live_server) as client:
        error = await client.hello(token=invite_token(invite))
        assert (error["type"], error["code"]) == ("error", "inspection_ended")
        await client.closed_by_server()
    async with connect(live_server) as client:
        error = await client.hello(
            token=await live_server.token("inspector1"), inspection_id=invite["inspection_id"]
        )
        assert (error["type"], error["code"]) == ("error", "inspection_ended")


# Joining, presence, chat, control


async def test_welcome_describes_case_inspection_and_who_is_here(live_server: LiveServer) -> None:
    invite = await live_server.new_inspection()
    async with applicant_of(live_server, invite) as applicant:
        welcome = applicant.seen[0]
        media = welcome.pop("media")
        assert (media["state"], media["since"], media["source"]) == ("none", None, None)
        assert welcome == {
            "v": 1,
            "type": "welcome",
            "participant_id": "applicant",
            "role": "applicant",
            "resumed": False,
            "consented": False,
            "case": {
                "case_id": invite["case_id"],
                "case_number": invite["case_id"],  # a case ID given alone is its own number
                "title": "新建厂房踏勘",
                "address": "杭州市西湖区文三路 100 号",
            },
            "inspection": {
                "inspection_id": invite["inspection_id"],
                "status": "active",
                "inspector_name": "inspector1",
                "inspectors": ["inspector1"],
            },
            "notice": DEFAULT_NOTICE.for_page(),
            "ice_servers": [],
            "participants": [
                {
                    "participant_id": "applicant",
                    "role": "applicant",
                    "name": "张三",
                    "connected": True,
                }
            ],
        }


async def test_presence_tells_everybody_who_joins_and_who_leaves(live_server: LiveServer) -> None:
    invite = await live_server.new_inspection()
    async with applicant_of(live_server, invite) as applicant:
        async with inspector_of(live_server, invite) as inspector:
            assert [p["participant_id"] for p in inspector.seen[0]["participants"]] == [
                "applicant",
                "inspector-1",
            ]
            while True:
                presence = await applicant.receive("presence")
                if len(presence["participants"]) == 2:
                    break
            assert presence["participants"][1] == {
                "participant_id": "inspector-1",
                "role": "inspector",
                "name": "inspector1",
                "connected": True,
            }
        presence = await applicant.receive("presence")
        # Who left stays listed, offline: the others see that somebody has gone.
        assert [(p["participant_id"], p["connected"]) for p in presence["participants"]] == [
            ("applicant", True),
            ("inspector-1", False),
        ]


async def test_applicant_who_reconnects_is_resumed_and_need_not_consent_again(
    live_server: LiveServer,
) -> None:
    invite = await live_server.new_inspection()
    async with applicant_of(live_server, invite, consent=True) as applicant:
        await applicant.assert_usable()  # the consent has been handled
    async with connect(live_server) as again:
        welcome = await again.hello(token=invite_token(invite))
        assert (welcome["resumed"], welcome["consented"]) == (True, True)
        await again.send(type="offer", sdp="v=0\r\nnot really an offer\r\n")
        await again.expect_error("negotiation_failed", "offer")  # not consent_required


async def test_second_connection_of_the_applicant_replaces_the_first(
    live_server: LiveServer,
) -> None:
    invite = await live_server.new_inspection()
    async with applicant_of(live_server, invite) as first, applicant_of(live_server, invite):
        replaced = await first.receive("error")
        assert replaced["code"] == "replaced"
        await first.closed_by_server()


async def test_chat_reaches_both_sides_stamped_with_server_utc_time(
    live_server: LiveServer,
) -> None:
    invite = await live_server.new_inspection()
    async with (
        applicant_of(live_server, invite) as applicant,
        inspector_of(live_server, invite) as inspector,
    ):
        before = time.time()
        await applicant.send(type="chat", text="屋顶在这里 🏠")
        for side in (applicant, inspector):
            chat = await side.receive("chat")
            assert chat["from"] == {
                "participant_id": "applicant",
                "role": "applicant",
                "name": "张三",
            }
            assert chat["text"] == "屋顶在这里 🏠"
            assert before - 1 <= parse_utc(chat["at"]) <= time.time() + 1
        await inspector.send(type="chat", text="x" * 2000)
        for side in (inspector, applicant):
            chat = await side.receive("chat")
            assert chat["from"] == {
                "participant_id": "inspector-1",
                "role": "inspector",
                "name": "inspector1",
            }
            assert chat["text"] == "x" * 2000
            parse_utc(chat["at"])


async def test_control_goes_to_the_applicant_and_its_result_back_to_the_inspector(
    live_server: LiveServer,
) -> None:
    invite = await live_server.new_inspection()
    async with (
        applicant_of(live_server, invite, consent=True) as applicant,
        inspector_of(live_server, invite) as inspector,
    ):
        await inspector.send(type="control", action="zoom", value=2.5)
        control = await applicant.receive("control")
        assert control == {
            "v": 1,
            "type": "control",
            "action": "zoom",
            "value": 2.5,
            "from": {"participant_id": "inspector-1", "name": "inspector1"},
        }
        await applicant.send(
            type="control_result", action="zoom", ok=False, reason="no zoom", value=1
        )
        result = await inspector.receive("control_result")
        assert result == {
            "v": 1,
            "type": "control_result",
            "action": "zoom",
            "ok": False,
            "reason": "no zoom",
            "value": 1,
        }
        # The applicant does not get its own result back; a ping proves nothing is queued.
        await applicant.assert_usable()
        assert not [m for m in applicant.seen if m["type"] == "control_result"]


async def test_control_while_the_applicant_is_away_is_refused(live_server: LiveServer) -> None:
    invite = await live_server.new_inspection()
    async with inspector_of(live_server, invite) as inspector:
        await inspector.send(type="control", action="torch", value=True)
        await inspector.expect_error("unavailable", "control")
        await inspector.assert_usable()


async def test_stats_are_passed_to_the_other_participants_only(live_server: LiveServer) -> None:
    invite = await live_server.new_inspection()
    async with (
        applicant_of(live_server, invite) as applicant,
        inspector_of(live_server, invite) as inspector,
    ):
        stats = {"bitrate_kbps": 1800, "fps": 29.97, "width": 1280, "height": 720, "rtt_ms": None}
        await applicant.send(type="stats", stats=stats)
        peer_stats = await inspector.receive("peer_stats")
        assert peer_stats["from"] == {"participant_id": "applicant", "role": "applicant"}
        assert peer_stats["stats"] == stats
        await applicant.assert_usable()
        assert not [m for m in applicant.seen if m["type"] == "peer_stats"]


async def test_end_from_the_inspector_ends_it_for_everybody(live_server: LiveServer) -> None:
    invite = await live_server.new_inspection()
    async with (
        applicant_of(live_server, invite) as applicant,
        inspector_of(live_server, invite) as inspector,
    ):
        await inspector.send(type="end")
        for side in (applicant, inspector):
            ended = await side.receive("ended")
            assert ended == {"v": 1, "type": "ended", "reason": "ended by inspector1"}
            await side.closed_by_server()
            assert side.ws.close_code == aiohttp.WSCloseCode.OK
    inspection = await live_server.services.store.inspections.get(invite["inspection_id"])
    assert inspection is not None
    assert inspection.status == "ended"
    assert live_server.services.live.get(invite["inspection_id"]) is None
    status, body = await live_server.request(
        "POST", f"/api/inspections/{invite['inspection_id']}/end", "inspector1"
    )
    assert (status, body["error"]) == (409, "conflict")


async def test_ending_over_rest_hangs_up_connected_participants(live_server: LiveServer) -> None:
    invite = await live_server.new_inspection()
    async with (
        applicant_of(live_server, invite) as applicant,
        inspector_of(live_server, invite) as inspector,
    ):
        status, _ = await live_server.request(
            "POST", f"/api/inspections/{invite['inspection_id']}/end", "inspector1"
        )
        assert status == 200
        for side in (applicant, inspector):
            assert (await side.receive("ended"))["reason"] == "ended by inspector1"
            await side.closed_by_server()


async def test_more_than_50_messages_a_second_are_refused_then_the_socket_recovers(
    live_server: LiveServer,
) -> None:
    async with connect(live_server) as client:
        burst = 150  # at least 60 land in one second even on a slow machine
        for _ in range(burst):
            await client.send(type="ping")
        answers = [await client.next() for _ in range(burst)]
        assert all(a["type"] == "pong" for a in answers[:50]), answers[:50]
        limited = [a for a in answers if a["type"] == "error"]
        assert limited, "no message was refused"
        assert {(a["code"], a["ref"]) for a in limited} == {("rate_limited", None)}
        await asyncio.sleep(1.1)
        await client.assert_usable()


# Logs


async def test_server_logs_never_contain_a_bearer_or_invite_token(
    live_server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    invite = await live_server.new_inspection()
    caplog.set_level(logging.DEBUG)
    bearer = await live_server.token("inspector2")  # a fresh login, inside the capture
    invite_secret = invite_token(invite)
    async with applicant_of(live_server, invite, consent=True) as applicant:
        await applicant.send(type="chat", text="hello")
        await applicant.receive("chat")
    async with connect(live_server) as client:
        refused = await client.hello(token=bearer, inspection_id=invite["inspection_id"])
        assert refused["code"] == "forbidden"  # inspector2 is not this inspection's inspector
        refused = await client.hello(token=invite_secret[:-4] + "AAAA")
        assert refused["code"] == "unauthorized"
        refused = await client.hello(token=bearer + "x")
        assert refused["code"] == "unauthorized"
    status, _ = await live_server.request(
        "GET", "/api/me", headers={"Authorization": f"Bearer {bearer}"}
    )
    assert status == 200
    assert caplog.records, "nothing was logged at all: the check would prove nothing"
    logged = caplog.text + "".join(
        repr(record.__dict__) + record.getMessage() for record in caplog.records
    )
    bearer_mac, invite_mac = bearer.split(".")[1], invite_secret.split(".")[1]
    for secret in (bearer, invite_secret, bearer_mac, invite_mac):
        assert secret not in logged


def test_access_log_path_redaction_hides_invite_tokens() -> None:
    assert redact("/join/eyJjYXNlIjoiQSJ9.c2lnbmF0dXJl") == "/join/<redacted>"
    assert redact("/join/abc.def/extra") == "/join/<redacted>/extra"
    assert redact("/api/cases/CASE-1") == "/api/cases/CASE-1"
    assert redact("/j") == "/j"
    assert redact("/static/join/x.js") == "/static/join/x.js"


@pytest.fixture
async def access_logged_server(tmp_path: Path) -> AsyncIterator[str]:
    """A server that writes access logs the way ``takan serve`` does; yields its base URL."""
    data_dir = tmp_path / "access-data"
    data_dir.mkdir()
    add_users(data_dir)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = create_app(Settings(data_dir=data_dir, port=port))
    runner = web.AppRunner(
        app,
        access_log_class=RedactingAccessLogger,
        access_log=logging.getLogger("aiohttp.access"),
    )
    await runner.setup()
    await web.SockSite(runner, sock).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_access_log_never_contains_the_invite_token_of_a_join_page(
    access_logged_server: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "eyJjYXNlIjoiQy0xIn0.c2VjcmV0LXNpZ25hdHVyZQ"
    async with aiohttp.ClientSession() as http:
        for path in (f"/join/{secret}", f"/j?code={secret}", f"/api/health?token={secret}"):
            async with http.get(access_logged_server + path) as response:
                await response.read()
    async with asyncio.timeout(5):
        while sum(r.name == "aiohttp.access" for r in caplog.records) < 3:
            await asyncio.sleep(0.05)
    access = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert any('"GET /join/<redacted>"' in line for line in access), access
    assert any('"GET /api/health"' in line for line in access), access
    assert secret not in caplog.text


async def test_session_cookie_from_another_site_does_not_join(live_server: LiveServer) -> None:
    invite = await live_server.new_inspection()
    token = await live_server.token("inspector1")
    async with (
        aiohttp.ClientSession(cookies={"takan_session": token}) as http,
        http.ws_connect(live_server.ws_url, headers={"Origin": "https://evil.example"}) as ws,
    ):
        await ws.send_json(
            {"v": 1, "type": "hello", "token": None, "inspection_id": invite["inspection_id"]}
        )
        reply = await ws.receive_json()
        assert (reply["type"], reply["code"]) == ("error", "unauthorized")
