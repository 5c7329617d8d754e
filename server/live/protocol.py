"""Signalling messages, version 1 (pure): parsing and validation of what clients send.

See docs/signalling.md. Every problem becomes a ProtocolError with the code the client receives.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

VERSION = 1
MAX_MESSAGE_BYTES = 64 * 1024
CONTROL_ACTIONS = ("switch_camera", "torch", "zoom")
CHALLENGE_KINDS = ("code", "instruction")
JUDGEMENTS = ("passed", "failed")


class ProtocolError(Exception):
    def __init__(self, code: str, reason: str, ref: str | None = None) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.ref = ref

    def to_message(self) -> dict[str, Any]:
        return error_message(self.code, self.reason, self.ref)


def error_message(code: str, reason: str, ref: str | None = None) -> dict[str, Any]:
    return {"v": VERSION, "type": "error", "code": code, "reason": reason, "ref": ref}


Check = Callable[[Any], str | None]  # returns a complaint or None


def _string(max_len: int, min_len: int = 0, nullable: bool = False) -> Check:
    def check(value: Any) -> str | None:
        if value is None and nullable:
            return None
        if not isinstance(value, str):
            return "must be a string" + (" or null" if nullable else "")
        if not min_len <= len(value) <= max_len:
            return f"must be {min_len}-{max_len} characters"
        return None

    return check


def _int_or_null(value: Any) -> str | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
        return None
    return "must be a non-negative integer or null"


def _true(value: Any) -> str | None:
    return None if value is True else "must be true"


def _bool(value: Any) -> str | None:
    return None if isinstance(value, bool) else "must be a boolean"


def _lang(value: Any) -> str | None:
    return None if value in ("zh-CN", "en") else "must be 'zh-CN' or 'en'"


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _finite(value: Any) -> str | None:
    return None if _number(value) else "must be a finite number"


def _one_of(*choices: str) -> Check:
    def check(value: Any) -> str | None:
        return None if value in choices else f"must be one of {', '.join(choices)}"

    return check


def _sha256_hex(value: Any) -> str | None:
    if isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value):
        return None
    return "must be 64 lower-case hex digits (a SHA-256)"


def _hex_id(value: Any) -> str | None:
    if isinstance(value, str) and len(value) == 32 and all(c in "0123456789abcdef" for c in value):
        return None
    return "must be 32 lower-case hex digits"


def _stats(value: Any) -> str | None:
    if not isinstance(value, dict) or len(value) > 20:
        return "must be an object of at most 20 entries"
    for key, item in value.items():
        if len(key) > 40 or not (item is None or _number(item) or isinstance(item, str)):
            return f"entry {key[:40]!r} must be a number, a short string or null"
        if isinstance(item, str) and len(item) > 100:
            return f"entry {key[:40]!r} is too long"
    return None


def _any_small(value: Any) -> str | None:
    if value is None or isinstance(value, bool | str) or _number(value):
        return None if not isinstance(value, str) or len(value) <= 100 else "is too long"
    return "must be a number, a boolean, a short string or null"


@dataclass(frozen=True, slots=True)
class Field:
    check: Check
    required: bool = True


SCHEMAS: dict[str, dict[str, Field]] = {
    "hello": {
        "token": Field(_string(4096, nullable=True), required=False),
        "inspection_id": Field(_string(64, nullable=True), required=False),
        "name": Field(_string(64, nullable=True), required=False),
    },
    "consent": {
        "accepted": Field(_true),
        "lang": Field(_lang, required=False),
        # the SHA-256 of the notice the page showed (welcome's notice.sha256)
        "notice_sha256": Field(_sha256_hex, required=False),
    },
    "offer": {"sdp": Field(_string(60_000, min_len=10))},
    "ice": {
        "candidate": Field(_string(2000, nullable=True)),
        "sdpMid": Field(_string(64, nullable=True), required=False),
        "sdpMLineIndex": Field(_int_or_null, required=False),
    },
    "chat": {"text": Field(_string(2000, min_len=1))},
    "control": {
        "action": Field(_one_of(*CONTROL_ACTIONS)),
        "value": Field(_any_small, required=False),
    },
    "control_result": {
        "action": Field(_one_of(*CONTROL_ACTIONS)),
        "ok": Field(_bool),
        "reason": Field(_string(200, nullable=True), required=False),
        "value": Field(_any_small, required=False),
    },
    "stats": {"stats": Field(_stats)},
    "location": {
        "lat": Field(_finite),
        "lon": Field(_finite),
        "accuracy": Field(_finite),
        "at": Field(_string(64, min_len=1)),
    },
    "location_denied": {"reason": Field(_string(200, nullable=True), required=False)},
    "challenge": {
        "kind": Field(_one_of(*CHALLENGE_KINDS)),
        "text": Field(_string(200, nullable=True), required=False),
    },
    "challenge_shown": {"challenge_id": Field(_hex_id)},
    "challenge_judge": {
        "challenge_id": Field(_hex_id),
        "judgement": Field(_one_of(*JUDGEMENTS)),
        "note": Field(_string(500, nullable=True), required=False),
    },
    "end": {},
    "ping": {},
}


@dataclass(frozen=True, slots=True)
class ClientMessage:
    type: str
    fields: dict[str, Any]

    def get(self, name: str, default: Any = None) -> Any:
        return self.fields.get(name, default)


def _too_large(raw: str | bytes) -> bool:
    """Over MAX_MESSAGE_BYTES in UTF-8 (a text frame's size on the wire), not in characters."""
    if isinstance(raw, bytes) or len(raw) > MAX_MESSAGE_BYTES:
        return len(raw) > MAX_MESSAGE_BYTES
    if len(raw) * 4 <= MAX_MESSAGE_BYTES:  # UTF-8 takes at most 4 bytes a character
        return False
    return len(raw.encode("utf-8", "surrogatepass")) > MAX_MESSAGE_BYTES


def parse_message(raw: str | bytes) -> ClientMessage:
    if _too_large(raw):
        raise ProtocolError("too_large", f"message is over {MAX_MESSAGE_BYTES} bytes")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError("bad_json", "message is not valid JSON") from exc
    if not isinstance(data, dict):
        raise ProtocolError("bad_json", "message must be a JSON object")
    kind = data.get("type")
    ref = kind if isinstance(kind, str) and len(kind) <= 40 else None
    if data.get("v") != VERSION:
        raise ProtocolError("bad_version", f"field 'v' must be {VERSION}", ref)
    if not isinstance(kind, str):
        raise ProtocolError("bad_message", "field 'type' must be a string")
    schema = SCHEMAS.get(kind)
    if schema is None:
        raise ProtocolError("unknown_type", f"unknown message type {ref!r}", ref)
    fields: dict[str, Any] = {}
    for name, field in schema.items():
        if name not in data:
            if field.required:
                raise ProtocolError("bad_message", f"field {name!r} is required", ref)
            continue
        complaint = field.check(data[name])
        if complaint:
            raise ProtocolError("bad_message", f"field {name!r} {complaint}", ref)
        fields[name] = data[name]
    if kind == "control":
        _check_control_value(fields, ref)
    if kind == "challenge" and fields["kind"] == "instruction":
        text = fields.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ProtocolError("bad_message", "an instruction challenge needs a 'text'", ref)
    return ClientMessage(kind, fields)


def _check_control_value(fields: dict[str, Any], ref: str | None) -> None:
    action: str = fields["action"]
    value: Any = fields.get("value")
    if action == "switch_camera" and value not in ("user", "environment"):
        raise ProtocolError(
            "bad_message", "switch_camera value must be 'user' or 'environment'", ref
        )
    if action == "torch" and not isinstance(value, bool):
        raise ProtocolError("bad_message", "torch value must be a boolean", ref)
    if action == "zoom" and not (_number(value) and 0 < float(value) <= 100):
        raise ProtocolError("bad_message", "zoom value must be a number in (0, 100]", ref)
