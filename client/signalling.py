"""The WebSocket session of one participant: connect, ``hello``, ``welcome``, then JSON messages.

aiohttp and JSON errors are translated here into the client's exception tree.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Final

import aiohttp

from client.endpoints import Endpoint
from client.exceptions import ProtocolError, RejectedError, UnreachableError, UsageError

logger = logging.getLogger(__name__)

PROTOCOL_VERSION: Final = 1
MAX_MESSAGE_BYTES: Final = 64 * 1024
MAX_REDIRECTS: Final = 3
FATAL_CODES: Final = frozenset(
    {
        "unauthorized",
        "forbidden",
        "inspection_ended",
        "negotiation_failed",
        "consent_required",
        "not_joined",
        "bad_version",
    }
)
"""``error`` codes after which this client cannot usefully go on."""

Message = dict[str, Any]


@dataclass(frozen=True, slots=True)
class IceServer:
    """One STUN or TURN server from ``welcome.ice_servers``."""

    urls: tuple[str, ...]
    username: str | None = None
    credential: str | None = None

    def __post_init__(self) -> None:
        if not self.urls or not all(isinstance(url, str) and url for url in self.urls):
            raise ValueError("an ICE server needs at least one URL")

    @classmethod
    def from_json(cls, value: Any) -> IceServer:
        if not isinstance(value, dict):
            raise ValueError(f"an ICE server must be an object, got {type(value).__name__}")
        urls = value.get("urls")
        listed = (urls,) if isinstance(urls, str) else tuple(urls) if isinstance(urls, list) else ()
        username, credential = value.get("username"), value.get("credential")
        return cls(
            urls=listed,
            username=username if isinstance(username, str) else None,
            credential=credential if isinstance(credential, str) else None,
        )


@dataclass(frozen=True, slots=True)
class Welcome:
    """What the server said about this participant after ``hello``."""

    participant_id: str
    role: str
    resumed: bool
    consented: bool
    ice_servers: tuple[IceServer, ...]
    inspection_id: str | None
    case_id: str | None

    @classmethod
    def from_message(cls, message: Message) -> Welcome:
        try:
            servers = tuple(IceServer.from_json(item) for item in message.get("ice_servers") or [])
        except (TypeError, ValueError) as error:
            raise ProtocolError(f"welcome has unusable ice_servers: {error}") from None
        inspection = message.get("inspection")
        case = message.get("case")
        return cls(
            participant_id=str(message.get("participant_id", "")),
            role=str(message.get("role", "")),
            resumed=message.get("resumed") is True,
            consented=message.get("consented") is True,
            ice_servers=servers,
            inspection_id=_text_field(inspection, "inspection_id"),
            case_id=_text_field(case, "case_id"),
        )


class SignallingSession:
    """An open, joined WebSocket. Use :func:`connect` to get one."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, welcome: Welcome) -> None:
        self._ws = ws
        self.welcome = welcome

    async def send(self, type_: str, **fields: Any) -> None:
        """Send one message; a closed socket is a :class:`ProtocolError`."""
        message = {"v": PROTOCOL_VERSION, "type": type_, **fields}
        try:
            await self._ws.send_str(json.dumps(message, separators=(",", ":")))
        except (aiohttp.ClientError, ConnectionError, RuntimeError) as error:
            raise ProtocolError(
                f"cannot send {type_!r}: the connection is closed ({error})"
            ) from None

    async def receive(self) -> Message | None:
        """The next message, ``None`` once the server closed the socket.

        An ``error`` whose code is in :data:`FATAL_CODES` raises :class:`RejectedError`; other
        ``error`` messages are returned like any message.
        """
        return await _receive(self._ws)

    async def close(self) -> None:
        await self._ws.close()


@asynccontextmanager
async def connect(
    endpoint: Endpoint,
    *,
    name: str | None = None,
    verify_tls: bool = True,
    timeout_s: float = 15.0,
) -> AsyncIterator[SignallingSession]:
    """Open the WebSocket, say ``hello`` and wait for ``welcome``, following a ``redirect`` to
    the node that runs the inspection; closes the socket on exit."""
    async with aiohttp.ClientSession() as http:
        ws_url = endpoint.ws_url
        for _ in range(MAX_REDIRECTS + 1):
            ws = await _open(http, ws_url, verify_tls=verify_tls, timeout_s=timeout_s)
            try:
                joined = await _join(ws, endpoint, name, timeout_s)
            except BaseException:
                await ws.close()
                raise
            if isinstance(joined, Welcome):
                break
            await ws.close()
            logger.info("redirected to node %s: %s", joined.node, joined.url)
            ws_url = joined.url
        else:
            raise ProtocolError(f"redirected more than {MAX_REDIRECTS} times; last to {ws_url}")
        try:
            session = SignallingSession(ws, joined)
            logger.info(
                "joined role=%s participant_id=%s inspection_id=%s",
                session.welcome.role,
                session.welcome.participant_id,
                session.welcome.inspection_id,
            )
            yield session
        finally:
            await ws.close()


async def _open(
    http: aiohttp.ClientSession, ws_url: str, *, verify_tls: bool, timeout_s: float
) -> aiohttp.ClientWebSocketResponse:
    try:
        async with asyncio.timeout(timeout_s):  # the whole handshake, DNS and TCP included
            return await http.ws_connect(
                ws_url,
                heartbeat=20.0,
                max_msg_size=MAX_MESSAGE_BYTES,
                ssl=verify_tls,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=5.0),
            )
    except aiohttp.WSServerHandshakeError as error:
        raise UnreachableError(
            f"{ws_url} did not accept a WebSocket (HTTP {error.status} {error.message})"
        ) from None
    except aiohttp.InvalidURL as error:
        raise UsageError(f"invalid server URL {ws_url}: {error}") from None
    except aiohttp.ClientConnectorError as error:
        raise UnreachableError(
            f"cannot reach {error.host}:{error.port}: {_os_reason(error.os_error)}"
        ) from None
    except (aiohttp.ClientError, OSError) as error:
        raise UnreachableError(f"cannot connect to {ws_url}: {error}") from None
    except TimeoutError:
        raise UnreachableError(f"timed out connecting to {ws_url}") from None


@dataclass(frozen=True, slots=True)
class Redirect:
    """The server does not run the inspection: the node that does, and its WebSocket URL."""

    node: str
    url: str

    @classmethod
    def from_message(cls, message: Message) -> Redirect:
        url, node = message.get("url"), message.get("node")
        if not isinstance(url, str) or not url.startswith(("ws://", "wss://")):
            raise ProtocolError(f"a redirect needs a ws:// or wss:// url, got {url!r}")
        return cls(node if isinstance(node, str) else "", url)


async def _join(
    ws: aiohttp.ClientWebSocketResponse, endpoint: Endpoint, name: str | None, timeout_s: float
) -> Welcome | Redirect:
    hello = {"v": PROTOCOL_VERSION, "type": "hello", **endpoint.hello(name)}
    try:
        await ws.send_str(json.dumps(hello, separators=(",", ":")))
    except (aiohttp.ClientError, ConnectionError) as error:
        raise ProtocolError(f"the server closed the connection before hello: {error}") from None
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                message = await _receive(ws)
                if message is None:
                    raise ProtocolError("the server closed the connection without a welcome")
                if message["type"] == "welcome":
                    return Welcome.from_message(message)
                if message["type"] == "redirect":
                    return Redirect.from_message(message)
                if message["type"] == "error":
                    raise _rejection(message)
                logger.debug("before welcome, ignored type=%s", message["type"])
    except TimeoutError:
        raise ProtocolError(f"no welcome within {timeout_s:g} s of hello") from None


async def _receive(ws: aiohttp.ClientWebSocketResponse) -> Message | None:
    while True:
        try:
            frame = await ws.receive()
        except (aiohttp.ClientError, ConnectionError) as error:
            logger.warning("websocket failed: %s", error)
            return None
        if frame.type == aiohttp.WSMsgType.TEXT:
            message = _parse(str(frame.data))
            if message["type"] == "error" and message.get("code") in FATAL_CODES:
                raise _rejection(message)
            return message
        if frame.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING):
            return None
        if frame.type == aiohttp.WSMsgType.CLOSED:
            return None
        if frame.type == aiohttp.WSMsgType.ERROR:
            logger.warning("websocket error: %s", ws.exception())
            return None
        logger.debug("ignored websocket frame type=%s", frame.type)


def _parse(text: str) -> Message:
    try:
        message = json.loads(text)
    except ValueError:
        raise ProtocolError(f"the server sent a message that is not JSON: {text[:80]!r}") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise ProtocolError(f"the server sent a message without a type: {text[:80]!r}")
    if message.get("v") != PROTOCOL_VERSION:
        logger.warning("message type=%s has v=%r, expected 1", message["type"], message.get("v"))
    return message


def _rejection(message: Message) -> RejectedError:
    code = str(message.get("code") or "error")
    reason = str(message.get("reason") or "")
    ref = message.get("ref")
    return RejectedError(code, reason, ref if isinstance(ref, str) else None)


def _text_field(parent: Any, key: str) -> str | None:
    if isinstance(parent, dict) and isinstance(parent.get(key), str):
        return str(parent[key])
    return None


def _os_reason(error: OSError) -> str:
    if error.errno is not None and error.errno > 0:  # not a resolver error (negative)
        return os.strerror(error.errno)
    return error.strerror or str(error)
