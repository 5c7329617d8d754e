"""Signalling messages, version 1 (server.protocol): what is accepted and what error is sent."""

from __future__ import annotations

import json
from typing import Any

import pytest

from server.live.protocol import (
    MAX_MESSAGE_BYTES,
    SCHEMAS,
    ClientMessage,
    ProtocolError,
    error_message,
    parse_message,
)


def _raw(**message: Any) -> str:
    return json.dumps({"v": 1, **message})


def _refused(raw: str | bytes) -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        parse_message(raw)
    return caught.value


SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"

VALID: dict[str, dict[str, Any]] = {
    "hello": {"token": "abc.def", "inspection_id": "a" * 32, "name": "检查员"},
    "consent": {"accepted": True, "lang": "zh-CN"},
    "offer": {"sdp": SDP},
    "ice": {
        "candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host",
        "sdpMid": "0",
        "sdpMLineIndex": 0,
    },
    "chat": {"text": "请把镜头转向屋顶"},
    "control": {"action": "zoom", "value": 2.5},
    "control_result": {"action": "torch", "ok": False, "reason": "no torch", "value": None},
    "stats": {
        "stats": {"bitrate_kbps": 1200.5, "fps": 30, "width": 1280, "height": 720, "rtt_ms": None}
    },
    "end": {},
    "ping": {},
    "location": {"lat": 30.2741, "lon": 120.1551, "accuracy": 12, "at": "2026-01-01T08:00:00Z"},
    "location_denied": {"reason": "permission denied"},
    "challenge": {"kind": "instruction", "text": "请展示门牌号"},
    "challenge_shown": {"challenge_id": "0123456789abcdef" * 2},
    "challenge_judge": {"challenge_id": "f" * 32, "judgement": "failed", "note": "看不清"},
}


def test_every_documented_client_message_type_has_a_valid_example() -> None:
    assert set(VALID) == set(SCHEMAS)


@pytest.mark.parametrize("kind", sorted(VALID))
def test_valid_message_of_each_type_is_parsed_with_its_fields(kind: str) -> None:
    message = parse_message(_raw(type=kind, **VALID[kind]))
    assert message == ClientMessage(kind, VALID[kind])


def test_unknown_extra_fields_are_dropped_not_passed_on() -> None:
    message = parse_message(_raw(type="chat", text="hi", admin=True))
    assert message.fields == {"text": "hi"}


def test_optional_fields_may_be_left_out() -> None:
    assert parse_message(_raw(type="hello")).fields == {}
    assert parse_message(_raw(type="consent", accepted=True)).fields == {"accepted": True}
    assert parse_message(_raw(type="ice", candidate=None)).fields == {"candidate": None}
    assert parse_message(_raw(type="control_result", action="zoom", ok=True)).get("reason") is None


def test_bytes_input_is_parsed_like_text() -> None:
    assert parse_message(_raw(type="ping").encode()).type == "ping"


@pytest.mark.parametrize(
    "raw",
    ["not json", "{", "", "\x00", b"\xff\xfe{}"],
    ids=["words", "truncated", "empty", "nul", "not-utf8"],
)
def test_text_that_is_not_json_is_refused_as_bad_json(raw: str | bytes) -> None:
    error = _refused(raw)
    assert (error.code, error.ref) == ("bad_json", None)


@pytest.mark.parametrize("raw", ["[1, 2]", '"hello"', "42", "null", "true"])
def test_json_that_is_not_an_object_is_refused_as_bad_json(raw: str) -> None:
    error = _refused(raw)
    assert error.code == "bad_json"
    assert error.reason == "message must be a JSON object"


def test_message_over_64_kib_is_refused_as_too_large() -> None:
    raw = _raw(type="chat", text="x" * MAX_MESSAGE_BYTES)
    assert _refused(raw).code == "too_large"


def test_message_of_exactly_64_kib_is_not_too_large() -> None:
    head = _raw(type="ping", pad="")
    raw = head[:-2] + "x" * (MAX_MESSAGE_BYTES - len(head)) + '"}'
    assert len(raw) == MAX_MESSAGE_BYTES
    assert parse_message(raw).type == "ping"


def test_limit_counts_bytes_so_multibyte_text_over_64_kib_is_too_large() -> None:
    raw = json.dumps({"v": 1, "type": "ping", "pad": "界" * 30_000}, ensure_ascii=False)
    assert len(raw) < MAX_MESSAGE_BYTES < len(raw.encode())
    assert _refused(raw).code == "too_large"


@pytest.mark.parametrize(
    ("message", "ref"),
    [
        ({"type": "ping"}, "ping"),
        ({"v": 2, "type": "ping"}, "ping"),
        ({"v": "1", "type": "chat", "text": "hi"}, "chat"),
        ({"v": 1.5, "type": "ping"}, "ping"),
        ({"v": None}, None),
    ],
    ids=["missing", "two", "string", "float", "no-type"],
)
def test_missing_or_wrong_version_is_refused_as_bad_version(
    message: dict[str, Any], ref: str | None
) -> None:
    error = _refused(json.dumps(message))
    assert (error.code, error.ref) == ("bad_version", ref)


def test_unknown_type_is_refused_naming_it() -> None:
    error = _refused(_raw(type="dance"))
    assert (error.code, error.ref) == ("unknown_type", "dance")
    assert "dance" in error.reason


@pytest.mark.parametrize("kind", [None, 7, ["chat"], {"t": 1}])
def test_type_that_is_not_a_string_is_refused_as_bad_message(kind: Any) -> None:
    error = _refused(json.dumps({"v": 1, "type": kind}))
    assert (error.code, error.ref) == ("bad_message", None)


def test_very_long_type_is_not_echoed_back_as_ref() -> None:
    error = _refused(_raw(type="x" * 41))
    assert (error.code, error.ref) == ("unknown_type", None)


@pytest.mark.parametrize(
    ("kind", "fields", "named"),
    [
        ("hello", {"token": 123}, "token"),
        ("hello", {"name": "n" * 65}, "name"),
        ("hello", {"token": "t" * 4097}, "token"),
        ("consent", {}, "accepted"),
        ("consent", {"accepted": False}, "accepted"),
        ("consent", {"accepted": "yes"}, "accepted"),
        ("consent", {"accepted": True, "lang": "fr"}, "lang"),
        ("offer", {}, "sdp"),
        ("offer", {"sdp": "v=0"}, "sdp"),
        ("offer", {"sdp": {"type": "offer"}}, "sdp"),
        ("ice", {}, "candidate"),
        ("ice", {"candidate": 5}, "candidate"),
        ("ice", {"candidate": None, "sdpMLineIndex": "0"}, "sdpMLineIndex"),
        ("ice", {"candidate": None, "sdpMLineIndex": -1}, "sdpMLineIndex"),
        ("ice", {"candidate": None, "sdpMLineIndex": True}, "sdpMLineIndex"),
        ("ice", {"candidate": None, "sdpMid": 0}, "sdpMid"),
        ("chat", {}, "text"),
        ("chat", {"text": ""}, "text"),
        ("chat", {"text": "x" * 2001}, "text"),
        ("chat", {"text": ["hi"]}, "text"),
        ("control", {"action": "self_destruct", "value": 1}, "action"),
        ("control", {}, "action"),
        ("control", {"action": "zoom", "value": [1]}, "value"),
        ("control_result", {"action": "zoom"}, "ok"),
        ("control_result", {"action": "zoom", "ok": 1}, "ok"),
        ("control_result", {"action": "zoom", "ok": True, "reason": "r" * 201}, "reason"),
        ("stats", {}, "stats"),
        ("stats", {"stats": [1, 2]}, "stats"),
        ("stats", {"stats": {"fps": {"nested": 1}}}, "stats"),
        ("stats", {"stats": {f"k{i}": 1 for i in range(21)}}, "stats"),
    ],
)
def test_missing_or_wrongly_typed_field_is_refused_as_bad_message_naming_the_field(
    kind: str, fields: dict[str, Any], named: str
) -> None:
    error = _refused(_raw(type=kind, **fields))
    assert (error.code, error.ref) == ("bad_message", kind)
    assert f"'{named}'" in error.reason


def test_chat_of_exactly_2000_characters_is_accepted() -> None:
    assert parse_message(_raw(type="chat", text="字" * 2000)).get("text") == "字" * 2000


@pytest.mark.parametrize(
    ("action", "value"),
    [
        ("switch_camera", "user"),
        ("switch_camera", "environment"),
        ("torch", True),
        ("torch", False),
        ("zoom", 0.5),
        ("zoom", 100),
    ],
)
def test_control_with_a_valid_value_is_accepted(action: str, value: Any) -> None:
    message = parse_message(_raw(type="control", action=action, value=value))
    assert message.fields == {"action": action, "value": value}


@pytest.mark.parametrize(
    ("action", "value"),
    [
        ("switch_camera", "back"),
        ("switch_camera", None),
        ("torch", "on"),
        ("torch", 1),
        ("zoom", 0),
        ("zoom", -2),
        ("zoom", 101),
        ("zoom", True),
        ("zoom", "2"),
    ],
)
def test_control_with_a_value_wrong_for_its_action_is_refused(action: str, value: Any) -> None:
    raw = _raw(type="control", action=action, value=value)
    error = _refused(raw)
    assert (error.code, error.ref) == ("bad_message", "control")
    assert action in error.reason


def test_zoom_of_infinity_or_nan_is_refused() -> None:
    for value in ("Infinity", "NaN"):
        raw = '{"v": 1, "type": "control", "action": "zoom", "value": ' + value + "}"
        assert _refused(raw).code == "bad_message"


def test_error_message_has_the_documented_shape() -> None:
    assert error_message("bad_message", "field 'text' must be a string", "chat") == {
        "v": 1,
        "type": "error",
        "code": "bad_message",
        "reason": "field 'text' must be a string",
        "ref": "chat",
    }
    error = ProtocolError("not_joined", "send 'hello' first", "chat")
    assert error.to_message() == error_message("not_joined", "send 'hello' first", "chat")
    assert str(error) == "send 'hello' first"
