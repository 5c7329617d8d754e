"""What every REST handler reads from a request: its JSON body, bounded and validated."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from server.errors import BadJson, BadRequest, UnsupportedMediaType

MAX_BODY_BYTES = 64 * 1024


async def json_body(request: web.Request) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise UnsupportedMediaType("send the body as Content-Type: application/json")
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise BadRequest(f"body is over {MAX_BODY_BYTES} bytes")
    raw = bytearray()  # read() answers what has arrived so far: a slow body comes in pieces
    while len(raw) <= MAX_BODY_BYTES:
        piece = await request.content.read(MAX_BODY_BYTES + 1 - len(raw))
        if not piece:
            break
        raw += piece
    if len(raw) > MAX_BODY_BYTES:
        raise BadRequest(f"body is over {MAX_BODY_BYTES} bytes")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadJson("body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise BadJson("body must be a JSON object")
    return body
