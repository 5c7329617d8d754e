"""Real aiortc peers that speak Takan's signalling, for integration tests."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import (
    AudioStreamTrack,
    MediaStreamError,
    MediaStreamTrack,
    VideoStreamTrack,
)
from av import VideoFrame


@dataclass
class Received:
    video_frames: int = 0
    audio_frames: int = 0
    width: int = 0
    height: int = 0


@dataclass
class TestPeer:
    http: aiohttp.ClientSession
    ws: aiohttp.ClientWebSocketResponse
    welcome: dict[str, Any]
    pc: RTCPeerConnection | None = None
    received: Received = field(default_factory=Received)
    messages: list[dict[str, Any]] = field(default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def send(self, **message: Any) -> None:
        await self.ws.send_json({"v": 1, **message})

    async def receive(self, *types: str, timeout: float = 10) -> dict[str, Any]:
        """The next message of one of ``types`` (others are kept in ``messages``)."""
        async with asyncio.timeout(timeout):
            while True:
                message = await self.ws.receive_json()
                self.messages.append(message)
                if message["type"] in types:
                    return dict(message)

    def _read(self, track: MediaStreamTrack) -> None:
        async def read() -> None:
            with contextlib.suppress(MediaStreamError):
                while True:
                    frame = await track.recv()
                    if isinstance(frame, VideoFrame):
                        self.received.video_frames += 1
                        self.received.width, self.received.height = frame.width, frame.height
                    else:
                        self.received.audio_frames += 1

        self._tasks.append(asyncio.create_task(read()))

    async def connect_media(self, role: str, configuration: RTCConfiguration | None = None) -> None:
        pc = self.pc = RTCPeerConnection(configuration)
        if role == "applicant":
            pc.addTransceiver(VideoStreamTrack(), direction="sendonly")
        else:
            pc.addTransceiver("video", direction="recvonly")
        pc.addTransceiver(AudioStreamTrack(), direction="sendrecv")
        pc.on("track", self._read)
        await pc.setLocalDescription(await pc.createOffer())
        await self.send(type="offer", sdp=pc.localDescription.sdp)
        answer = await self.receive("answer", "error")
        assert answer["type"] == "answer", answer
        await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self.pc is not None:
            await self.pc.close()
        await self.ws.close()
        await self.http.close()


async def join(ws_url: str, **hello: Any) -> TestPeer:
    http = aiohttp.ClientSession()
    ws = await http.ws_connect(ws_url)
    await ws.send_json({"v": 1, "type": "hello", **hello})
    welcome = await ws.receive_json()
    return TestPeer(http, ws, welcome)


def invite_token(invite: dict[str, Any]) -> str:
    return str(invite["applicant_url"]).rsplit("/", 1)[-1]


async def publishing_applicant(ws_url: str, invite: dict[str, Any]) -> TestPeer:
    """The applicant of ``invite``, joined, consented and sending video and audio."""
    applicant = await join(ws_url, token=invite_token(invite))
    assert applicant.welcome["type"] == "welcome", applicant.welcome
    await applicant.send(type="consent", accepted=True)
    await applicant.connect_media("applicant")
    return applicant


async def watching_inspector(ws_url: str, token: str, invite: dict[str, Any]) -> TestPeer:
    """An inspector of ``invite``, joined and receiving the applicant's media."""
    inspector = await join(ws_url, token=token, inspection_id=invite["inspection_id"])
    assert inspector.welcome["role"] == "inspector", inspector.welcome
    await inspector.connect_media("inspector")
    return inspector


async def wait_until(predicate: Any, timeout: float = 15, what: str = "condition") -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.1)
