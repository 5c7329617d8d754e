"""One participant's peer connection and the message loop that negotiates and keeps it.

The client always offers; the server answers. aiortc gathers all local candidates before
``setLocalDescription`` returns, so the offer is complete and the client never trickles; it does
accept candidates the server trickles with ``ice``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Final

from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.sdp import candidate_from_sdp

from client.exceptions import ClientError, ProtocolError
from client.signalling import IceServer, Message, SignallingSession

logger = logging.getLogger(__name__)

ANSWER_TIMEOUT_S: Final = 20.0
QUIET_TYPES: Final = frozenset({"presence", "chat", "pong", "peer_stats", "control_result"})

MessageHandler = Callable[[Message], Awaitable[None]]


def new_peer_connection(ice_servers: Iterable[IceServer]) -> RTCPeerConnection:
    """A peer connection using exactly the server's ICE servers (none means host candidates)."""
    servers = [
        RTCIceServer(urls=list(server.urls), username=server.username, credential=server.credential)
        for server in ice_servers
    ]
    # An explicit list, even empty: left as None, aiortc would ask a public Google STUN server.
    return RTCPeerConnection(RTCConfiguration(iceServers=servers))


@dataclass(slots=True)
class TrackConsumers:
    """Owns the tasks that read remote tracks until they end."""

    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def consume(self, track: MediaStreamTrack, on_frame: Callable[[object], None]) -> None:
        task = asyncio.create_task(_drain(track, on_frame), name=f"consume-{track.kind}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _drain(track: MediaStreamTrack, on_frame: Callable[[object], None]) -> None:
    while True:
        try:
            frame = await track.recv()
        except MediaStreamError:
            logger.info("remote %s track ended", track.kind)
            return
        on_frame(frame)


@dataclass(slots=True)
class Conversation:
    """Offers once, then handles server messages until time is up, a stop, or ``ended``.

    ``on_message`` gets every message this loop does not handle itself (e.g. ``control``).
    """

    session: SignallingSession
    pc: RTCPeerConnection
    on_message: MessageHandler | None = None
    answered: asyncio.Event = field(default_factory=asyncio.Event)
    _failed: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, seconds: float | None, stop: asyncio.Event) -> str:
        """Why it ended: ``"time"``, ``"stopped"`` or ``"ended: <reason>"``.

        Raises :class:`ClientError` when the server closes the socket, rejects the session, never
        answers the offer, or the peer connection fails.
        """

        @self.pc.on("connectionstatechange")
        def _state_changed() -> None:
            logger.info("peer connection state=%s", self.pc.connectionState)
            if self.pc.connectionState == "failed":
                self._failed.set()

        offer = await self.pc.createOffer()
        await self.pc.setLocalDescription(offer)
        await self.session.send("offer", sdp=self.pc.localDescription.sdp)
        started = time.monotonic()
        waits: dict[asyncio.Task[object], str] = {
            asyncio.create_task(self._read_messages()): "messages",
            asyncio.create_task(stop.wait()): "stopped",
            asyncio.create_task(self._failed.wait()): "failed",
            asyncio.create_task(self._answer_watchdog()): "no answer",
        }
        if seconds is not None:
            waits[asyncio.create_task(asyncio.sleep(seconds))] = "time"
        try:
            done, _ = await asyncio.wait(list(waits), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()
            await asyncio.gather(*waits, return_exceptions=True)
        finished = next(iter(done))
        outcome = waits[finished]
        logger.info("conversation over after %.1f s: %s", time.monotonic() - started, outcome)
        if outcome in ("messages", "no answer"):
            return str(finished.result())  # or raises what the task raised
        if outcome == "failed":
            raise ClientError("the peer connection failed (ICE or DTLS could not connect)")
        return outcome

    async def _answer_watchdog(self) -> None:
        try:
            await asyncio.wait_for(self.answered.wait(), ANSWER_TIMEOUT_S)
        except TimeoutError:
            raise ProtocolError(f"no answer to the offer within {ANSWER_TIMEOUT_S:g} s") from None
        await asyncio.Event().wait()  # answered: never completes, so it never ends the run

    async def _read_messages(self) -> str:
        while True:
            message = await self.session.receive()
            if message is None:
                raise ProtocolError("the server closed the connection")
            kind = message["type"]
            if kind == "answer":
                await self._apply_answer(message)
            elif kind == "ice":
                await self._add_candidate(message)
            elif kind == "ended":
                return f"ended: {message.get('reason', '')}".rstrip(": ")
            elif kind == "error":
                logger.warning(
                    "server error code=%s ref=%s reason=%s",
                    message.get("code"),
                    message.get("ref"),
                    message.get("reason"),
                )
            elif self.on_message is not None and kind not in QUIET_TYPES:
                await self.on_message(message)
            else:
                logger.debug("message type=%s", kind)

    async def _apply_answer(self, message: Message) -> None:
        sdp = message.get("sdp")
        if not isinstance(sdp, str):
            raise ProtocolError("the answer has no sdp")
        if self.pc.signalingState != "have-local-offer":
            logger.warning("unexpected answer in state %s, ignored", self.pc.signalingState)
            return
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        except (ValueError, AssertionError) as error:
            raise ProtocolError(f"the server's answer cannot be applied: {error}") from None
        self.answered.set()
        logger.info("answer applied")

    async def _add_candidate(self, message: Message) -> None:
        line = message.get("candidate")
        mid = message.get("sdpMid")
        index = message.get("sdpMLineIndex")
        if line is None or line == "":
            await self.pc.addIceCandidate(None)
            return
        if not isinstance(line, str):
            logger.warning("ice message with a non-string candidate ignored")
            return
        try:
            candidate = candidate_from_sdp(line.removeprefix("candidate:"))
        except (AssertionError, ValueError, IndexError):
            logger.warning("unparseable remote candidate ignored: %s", line[:100])
            return
        candidate.sdpMid = mid if isinstance(mid, str) else None
        candidate.sdpMLineIndex = index if isinstance(index, int) else None
        if candidate.sdpMid is None and candidate.sdpMLineIndex is None:
            candidate.sdpMLineIndex = 0
        await self.pc.addIceCandidate(candidate)
