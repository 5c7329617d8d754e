"""The HTTP face of a timestamp authority (RFC 3161 §3.4): POST a query, read the reply. Thin:
every check of what comes back is ``recorder.timestamps.check_token``'s."""

from __future__ import annotations

import aiohttp

from recorder.timestamps import MAX_REPLY_BYTES, TsaUnavailable

QUERY_TYPE = "application/timestamp-query"
REPLY_TYPE = "application/timestamp-reply"
DEFAULT_TIMEOUT_S = 10.0


class HttpTsaClient:
    """One connection pool for every TSA request of a process; ``close`` it at the end."""

    def __init__(self, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def post(self, url: str, query: bytes) -> bytes:
        """The TSA's reply to ``query``; TsaUnavailable if there is none to read."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.post(
                url, data=query, headers={"Content-Type": QUERY_TYPE}
            ) as response:
                if response.status != 200:
                    raise TsaUnavailable(f"{url} answered HTTP {response.status}")
                if response.content_type != REPLY_TYPE:
                    raise TsaUnavailable(
                        f"{url} answered {response.content_type}, not {REPLY_TYPE}"
                    )
                if (response.content_length or 0) > MAX_REPLY_BYTES:
                    raise TsaUnavailable(f"{url} answered {response.content_length} bytes")
                reply = bytearray()
                async for chunk in response.content.iter_chunked(16 * 1024):
                    reply += chunk
                    if len(reply) > MAX_REPLY_BYTES:
                        raise TsaUnavailable(f"{url} answered more than {MAX_REPLY_BYTES} bytes")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TsaUnavailable(f"{url}: {exc or type(exc).__name__}") from exc
        return bytes(reply)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
