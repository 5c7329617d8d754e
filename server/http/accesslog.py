"""Access log lines that never contain a token (invite tokens travel in /join/<token> paths)."""

from __future__ import annotations

import re

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from server.http.api import CLIENT_ADDRESS

_TOKEN_PATH = re.compile(r"^/join/[^/?]+")


def redact(path: str) -> str:
    return _TOKEN_PATH.sub("/join/<redacted>", path)


class RedactingAccessLogger(AbstractAccessLogger):
    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            '%s "%s %s" %s %.1fms',
            request.get(CLIENT_ADDRESS) or request.remote,
            request.method,
            redact(request.path),  # path only: query strings are never logged
            response.status,
            time * 1000,
        )
