"""A load client: many (publisher, inspector) pairs that cost the client as little CPU as aiortc
allows, so that the CPU goes to the server under test.

Run by the benchmarks as ``python tests/bench/_loadclient.py`` (see ``LoadClientProcess`` in
_load.py). Reads one JSON spec line on stdin, connects every inspection, prints
``{"event": "ready", ...}``, then answers ``snap`` with counters and ``stop`` by hanging up.

- Publishers send a pre-encoded clip (``EncodedClip``) from a MediaStreamTrack whose ``recv()``
  returns ``av.Packet``s: aiortc's sender packs them without encoding. Time stamps run on across
  loops, and frames are paced at the clip's rate.
- Receivers do not decode: ``server.live.media.passthrough`` is installed in this process and every
  receiver is marked, so remote tracks yield packets, which are counted.
- A publisher and its inspector live in the same process, so a received frame (identified by its
  bytes, then by its RTP time stamp) can be timed from the moment its publisher sent it: that is
  the relay latency (client packing + loopback + server + jitter buffer), not glass-to-glass.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import av
from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from server.live.media import passthrough
from tests.bench._clip import EncodedClip
from tests.bench._harness import AUDIO_CLOCK_RATE, VIDEO_CLOCK_RATE

logger = logging.getLogger("loadclient")

NEGOTIATION_TIMEOUT_S = 30.0


class PacketTrack(MediaStreamTrack):
    """Sends pre-encoded packets in a loop, paced to the wall clock."""

    def __init__(self, kind: str, packets: Sequence[tuple[bytes, bool]], rate_hz: float) -> None:
        super().__init__()
        self.kind = kind
        self._packets = packets
        self._rate = rate_hz
        self._clock_rate = VIDEO_CLOCK_RATE if kind == "video" else AUDIO_CLOCK_RATE
        self._period = round(self._clock_rate / rate_hz)
        self._time_base = Fraction(1, self._clock_rate)
        self._start: float | None = None
        self.sent_at: list[float] = []
        self.keyframe_requests = 0

    @property
    def period(self) -> int:
        return self._period

    @property
    def sent(self) -> int:
        return len(self.sent_at)

    async def recv(self) -> av.Packet[Any]:
        if self.readyState != "live":
            raise MediaStreamError
        number = len(self.sent_at)
        now = time.monotonic()
        if self._start is None:
            self._start = now
        due = self._start + number / self._rate
        if due > now:
            await asyncio.sleep(due - now)
        data, keyframe = self._packets[number % len(self._packets)]
        packet = av.Packet(data)
        packet.pts = packet.dts = number * self._period
        packet.time_base = self._time_base
        packet.is_keyframe = keyframe
        self.sent_at.append(time.monotonic())
        return packet

    def on_keyframe_request(self) -> None:
        """Called by passthrough's patched RTCRtpSender on a PLI/FIR from the server."""
        self.keyframe_requests += 1


class FrameClock:
    """When did the publisher send the frame an inspector just received?"""

    def __init__(self, index_of: dict[bytes, int], track: PacketTrack) -> None:
        self._index_of = index_of
        self._track = track
        self._offset: int | None = None

    def sent_at(self, data: bytes, pts: int) -> float | None:
        period, sent = self._track.period, self._track.sent_at
        if self._offset is None:
            index = self._index_of.get(data)
            if index is None:
                return None  # not our bytes (a re-encoding server): no latency
            loop = len(self._index_of)
            number = len(sent) - 1 - ((len(sent) - 1 - index) % loop)
            if number < 0:
                return None
            self._offset = number * period - pts
        number, rest = divmod(pts + self._offset, period)
        if rest or not 0 <= number < len(sent):
            return None
        return sent[number]


@dataclass(slots=True)
class VideoCounter:
    frames: int = 0
    keyframes: int = 0
    first_at: float | None = None
    last_at: float | None = None
    last_pts: int | None = None
    max_gap_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    first_frame: asyncio.Event = field(default_factory=asyncio.Event)

    def on_packet(self, packet: av.Packet[Any], clock: FrameClock | None) -> None:
        now = time.monotonic()
        if self.last_at is not None:
            self.max_gap_s = max(self.max_gap_s, now - self.last_at)
        self.frames += 1
        self.keyframes += int(packet.is_keyframe)
        self.first_at = self.first_at or now
        self.last_at = now
        self.last_pts = packet.pts
        if clock is not None and packet.pts is not None:
            sent = clock.sent_at(bytes(packet), packet.pts)
            if sent is not None:
                self.latencies_ms.append((now - sent) * 1000)
        self.first_frame.set()


async def _drain(track: MediaStreamTrack, on_packet: Callable[[Any], None]) -> None:
    while True:
        try:
            item = await track.recv()
        except MediaStreamError:
            return
        on_packet(item)


def _prefer(transceiver: RTCRtpTransceiver, kind: str) -> None:
    wanted = ("video/vp8", "video/rtx") if kind == "video" else ("audio/opus",)
    codecs = RTCRtpSender.getCapabilities(kind).codecs
    transceiver.setCodecPreferences([c for c in codecs if c.mimeType.lower() in wanted])


# ---------------------------------------------------------------- signalling


class Link(Protocol):
    async def exchange(self, offer_sdp: str) -> str: ...

    async def close(self) -> None: ...


class TakanLink:
    """A participant's signalling WebSocket (docs/signalling.md), kept open and read."""

    def __init__(self, http: aiohttp.ClientSession, ws_url: str, hello: dict[str, Any]) -> None:
        self._http = http
        self._ws_url = ws_url
        self._hello = hello
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._answer: asyncio.Future[str] | None = None
        self.errors: list[str] = []

    async def open(self, consent: bool) -> None:
        self._ws = ws = await self._http.ws_connect(self._ws_url, timeout=aiohttp.ClientWSTimeout())
        await ws.send_json({"v": 1, "type": "hello", **self._hello})
        async with asyncio.timeout(NEGOTIATION_TIMEOUT_S):
            while True:
                message = await ws.receive_json()
                if message["type"] == "welcome":
                    break
                if message["type"] == "error":
                    raise RuntimeError(f"hello refused: {message}")
        if consent and not message.get("consented"):
            await ws.send_json({"v": 1, "type": "consent", "accepted": True})
        self._reader = asyncio.create_task(self._read(ws))

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for frame in ws:
            if frame.type != aiohttp.WSMsgType.TEXT:
                continue
            message = json.loads(frame.data)
            if message["type"] == "answer" and self._answer and not self._answer.done():
                self._answer.set_result(message["sdp"])
            elif message["type"] == "error":
                self.errors.append(f"{message.get('code')}: {message.get('reason')}")
                if self._answer and not self._answer.done():
                    self._answer.set_exception(RuntimeError(self.errors[-1]))

    async def exchange(self, offer_sdp: str) -> str:
        assert self._ws is not None
        self._answer = asyncio.get_running_loop().create_future()
        await self._ws.send_json({"v": 1, "type": "offer", "sdp": offer_sdp})
        return await asyncio.wait_for(self._answer, NEGOTIATION_TIMEOUT_S)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._ws is not None:
            await self._ws.close()


class BaselineLink:
    """The baseline server's one-shot HTTP offer/answer."""

    def __init__(self, http: aiohttp.ClientSession, base_url: str, room: str, role: str) -> None:
        self._http = http
        self._url = f"{base_url}/offer"
        self._body = {"room": room, "role": role}

    async def exchange(self, offer_sdp: str) -> str:
        body = {**self._body, "sdp": offer_sdp}
        async with self._http.post(self._url, json=body) as response:
            response.raise_for_status()
            answer = await response.json()
        return str(answer["sdp"])

    async def close(self) -> None:
        return None


# ---------------------------------------------------------------- participants


@dataclass
class Peer:
    pc: RTCPeerConnection
    link: Link
    readers: list[asyncio.Task[None]] = field(default_factory=list)

    async def negotiate(self, on_track: Callable[[MediaStreamTrack], None]) -> None:
        offer = await self.pc.createOffer()
        await self.pc.setLocalDescription(offer)
        answer = await self.link.exchange(self.pc.localDescription.sdp)
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        for transceiver in self.pc.getTransceivers():
            if transceiver.receiver.track is not None:
                passthrough.mark_passthrough(transceiver.receiver)
                on_track(transceiver.receiver.track)

    async def close(self) -> None:
        for reader in self.readers:
            reader.cancel()
        await self.pc.close()
        await self.link.close()


@dataclass
class LoadInspection:
    key: str
    clip: EncodedClip
    index_of: dict[bytes, int]
    video: PacketTrack = field(init=False)
    audio: PacketTrack = field(init=False)
    inspector_audio: PacketTrack = field(init=False)
    received: VideoCounter = field(default_factory=VideoCounter)
    received_audio: int = 0
    received_inspector_audio: int = 0
    peers: list[Peer] = field(default_factory=list)
    error: str | None = None

    def __post_init__(self) -> None:
        audio = [(data, True) for data in self.clip.audio]
        self.video = PacketTrack("video", self.clip.video, self.clip.fps)
        self.audio = PacketTrack("audio", audio, 50)
        self.inspector_audio = PacketTrack("audio", audio, 50)

    async def publish(self, link: Link) -> None:
        peer = Peer(RTCPeerConnection(RTCConfiguration(iceServers=[])), link)
        self.peers.append(peer)
        _prefer(peer.pc.addTransceiver(self.video, direction="sendonly"), "video")
        _prefer(peer.pc.addTransceiver(self.audio, direction="sendrecv"), "audio")

        def on_track(track: MediaStreamTrack) -> None:
            peer.readers.append(asyncio.create_task(_drain(track, self._count_inspector_audio)))

        await peer.negotiate(on_track)

    async def inspect(self, link: Link) -> None:
        peer = Peer(RTCPeerConnection(RTCConfiguration(iceServers=[])), link)
        self.peers.append(peer)
        _prefer(peer.pc.addTransceiver("video", direction="recvonly"), "video")
        _prefer(peer.pc.addTransceiver(self.inspector_audio, direction="sendrecv"), "audio")
        clock = FrameClock(self.index_of, self.video)

        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "video":
                task = _drain(track, lambda p: self.received.on_packet(p, clock))
            else:
                task = _drain(track, self._count_audio)
            peer.readers.append(asyncio.create_task(task))

        await peer.negotiate(on_track)

    def _count_audio(self, _: object) -> None:
        self.received_audio += 1

    def _count_inspector_audio(self, _: object) -> None:
        self.received_inspector_audio += 1

    def counters(self) -> dict[str, Any]:
        figures = {
            "sent_video": self.video.sent,
            "sent_audio": self.audio.sent,
            "recv_video": self.received.frames,
            "recv_keyframes": self.received.keyframes,
            "recv_audio": self.received_audio,
            "sent_inspector_audio": self.inspector_audio.sent,
            "recv_inspector_audio": self.received_inspector_audio,
            "last_pts": self.received.last_pts,
            "keyframe_requests": self.video.keyframe_requests,
            "max_gap_ms": round(self.received.max_gap_s * 1000, 1),
            "first_frame_at": self.received.first_at,
            "error": self.error,
        }
        self.received.max_gap_s = 0.0
        return figures

    async def close(self) -> None:
        for track in (self.video, self.audio, self.inspector_audio):
            track.stop()
        await asyncio.gather(*(peer.close() for peer in self.peers), return_exceptions=True)


# ---------------------------------------------------------------- the process


def _emit(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def _readline() -> str:
    return await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


async def _connect(
    spec: dict[str, Any], http: aiohttp.ClientSession, inspection: LoadInspection, item: Any
) -> None:
    # An item may name its own server and token: one load client, inspections on many servers.
    base_url = str(item.get("base_url") or spec["base_url"])
    if spec["mode"] == "takan":
        ws_url = base_url.replace("http://", "ws://") + "/ws"
        applicant = TakanLink(http, ws_url, {"token": item["invite_token"]})
        await applicant.open(consent=True)
        await inspection.publish(applicant)
        token = item.get("token") or spec["token"]
        hello = {"token": token, "inspection_id": item["inspection_id"]}
        inspector = TakanLink(http, ws_url, hello)
        await inspector.open(consent=False)
        await inspection.inspect(inspector)
    else:
        room = str(item["inspection_id"])
        await inspection.publish(BaselineLink(http, base_url, room, "applicant"))
        await inspection.inspect(BaselineLink(http, base_url, room, "inspector"))
    await asyncio.wait_for(inspection.received.first_frame.wait(), spec["first_frame_timeout_s"])


async def run(spec: dict[str, Any]) -> None:
    passthrough.install()
    clip = EncodedClip.load(Path(spec["clip"]))
    index_of = {data: index for index, (data, _) in enumerate(clip.video)}
    inspections = [LoadInspection(item["key"], clip, index_of) for item in spec["inspections"]]
    limit = asyncio.Semaphore(int(spec.get("concurrency", 4)))
    started = time.monotonic()

    async with aiohttp.ClientSession() as http:

        async def connect(inspection: LoadInspection, item: Any) -> None:
            async with limit:
                try:
                    await _connect(spec, http, inspection, item)
                except Exception as exc:
                    inspection.error = f"{type(exc).__name__}: {exc}"
                    logger.exception("inspection %s failed to connect", inspection.key)

        await asyncio.gather(
            *(connect(i, item) for i, item in zip(inspections, spec["inspections"], strict=True))
        )
        _emit(
            {
                "event": "ready",
                "ready": sum(1 for i in inspections if i.error is None),
                "errors": [i.error for i in inspections if i.error is not None],
                "setup_s": round(time.monotonic() - started, 2),
            }
        )
        try:
            while True:
                command = (await _readline()).strip()
                if command == "snap":
                    latencies: list[float] = []
                    for inspection in inspections:
                        latencies += inspection.received.latencies_ms
                        inspection.received.latencies_ms = []
                    _emit(
                        {
                            "event": "snap",
                            "t": time.monotonic(),
                            "inspections": {i.key: i.counters() for i in inspections},
                            "latencies_ms": [round(v, 2) for v in latencies],
                        }
                    )
                elif command in ("stop", ""):
                    break
        finally:
            await asyncio.gather(*(i.close() for i in inspections), return_exceptions=True)
    _emit({"event": "done"})


def main() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    spec = json.loads(sys.stdin.readline())
    asyncio.run(run(spec))


if __name__ == "__main__":
    main()
