"""The baseline for bench_live.py: the same publisher → inspector relay done the plain aiortc way.

aiortc decodes every received track; ``MediaRelay`` fans the decoded frames out and each viewer's
sender encodes them again. Same topology as Takan: the applicant's video and audio go to the
inspector, the inspector's audio goes back to the applicant; every published track is read from
the moment it arrives. Signalling is one HTTP call, ``POST /offer {room, role, sdp} → {sdp}``.

Run: ``python tests/bench/_baseline_server.py --port P`` (stopped by SIGTERM).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

logger = logging.getLogger("baseline")


@dataclass
class Room:
    relay: MediaRelay = field(default_factory=MediaRelay)
    sources: dict[str, asyncio.Future[MediaStreamTrack]] = field(default_factory=dict)
    peers: list[RTCPeerConnection] = field(default_factory=list)
    drains: list[asyncio.Task[None]] = field(default_factory=list)

    def source(self, name: str) -> asyncio.Future[MediaStreamTrack]:
        if name not in self.sources:
            self.sources[name] = asyncio.get_running_loop().create_future()
        return self.sources[name]

    def publish(self, name: str, track: MediaStreamTrack) -> None:
        future = self.source(name)
        if not future.done():
            future.set_result(track)
        self.drains.append(asyncio.create_task(_drain(self.relay.subscribe(track))))


ROOMS = web.AppKey("rooms", dict[str, Room])


async def _drain(track: MediaStreamTrack) -> None:
    with contextlib.suppress(MediaStreamError):
        while True:
            await track.recv()


class LateRelayedTrack(MediaStreamTrack):
    """A viewer's track on a source that may not be published yet."""

    def __init__(self, kind: str, room: Room, name: str) -> None:
        super().__init__()
        self.kind = kind
        self._room = room
        self._name = name
        self._proxy: MediaStreamTrack | None = None

    async def recv(self) -> Any:
        if self._proxy is None:
            source = await asyncio.shield(self._room.source(self._name))
            self._proxy = self._room.relay.subscribe(source)
        return await self._proxy.recv()


async def post_offer(request: web.Request) -> web.Response:
    body = await request.json()
    room = request.app[ROOMS].setdefault(str(body["room"]), Room())
    role = str(body["role"])
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    room.peers.append(pc)

    @pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        if role == "applicant":
            room.publish(f"applicant-{track.kind}", track)
        elif track.kind == "audio":
            room.publish("inspector-audio", track)

    await pc.setRemoteDescription(RTCSessionDescription(sdp=str(body["sdp"]), type="offer"))
    if role == "applicant":
        pc.addTrack(LateRelayedTrack("audio", room, "inspector-audio"))
    else:
        pc.addTrack(LateRelayedTrack("video", room, "applicant-video"))
        pc.addTrack(LateRelayedTrack("audio", room, "applicant-audio"))
    answer = await pc.createAnswer()
    await pc.setLocalDescription(answer)
    return web.json_response({"sdp": pc.localDescription.sdp})


async def get_health(_: web.Request) -> web.Response:
    return web.json_response({"ok": True})


def create_app() -> web.Application:
    app = web.Application()
    app[ROOMS] = {}

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        yield
        for room in app[ROOMS].values():
            for task in room.drains:
                task.cancel()
            await asyncio.gather(*(pc.close() for pc in room.peers), return_exceptions=True)

    app.cleanup_ctx.append(lifecycle)
    app.router.add_post("/offer", post_offer)
    app.router.add_get("/health", get_health)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    web.run_app(create_app(), host="127.0.0.1", port=arguments.port, print=None)


if __name__ == "__main__":
    main()
