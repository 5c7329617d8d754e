"""The aiortc adapter: encoded frames out of marked receivers, PLIs upstream, REMB floor."""

from __future__ import annotations

import asyncio
from typing import Any

import aiortc
import av
import pytest
from aiortc import RTCPeerConnection
from aiortc.mediastreams import VideoStreamTrack
from aiortc.rtp import unpack_remb_fci

from server.live.media import passthrough
from tests.conftest import LiveServer
from tests.integration.peers import publishing_applicant, wait_until, watching_inspector

# The media path, once: what it stores (joins, consent) runs on both engines in test_signalling.
pytestmark = pytest.mark.single_engine


def test_adapter_is_pinned_to_the_installed_aiortc() -> None:
    assert aiortc.__version__ == passthrough.AIORTC_VERSION


def test_vp8_keyframes_are_recognised_by_their_frame_tag() -> None:
    assert passthrough.is_vp8_keyframe(b"\x10\x02\x00\x9d\x01\x2a\x80\x02\xe0\x01")
    assert not passthrough.is_vp8_keyframe(b"\x11\x02\x00\x9d\x01\x2a\x80\x02\xe0\x01")
    assert not passthrough.is_vp8_keyframe(b"\x10\x02")


def test_reported_bandwidth_never_falls_below_the_floor() -> None:
    passthrough.install(remb_floor_bps=1_500_000)
    bitrate, ssrcs = unpack_remb_fci(passthrough._pack_remb_fci(200_000, [1234]))
    assert bitrate >= 1_500_000
    assert ssrcs == [1234]


async def connect_pair(marked: bool) -> tuple[RTCPeerConnection, RTCPeerConnection, list[Any]]:
    passthrough.install()
    sender, receiver = RTCPeerConnection(), RTCPeerConnection()
    sender.addTrack(VideoStreamTrack())
    received: list[Any] = []
    readers: list[asyncio.Task[None]] = []

    def on_track(track: Any) -> None:
        async def read() -> None:
            while True:
                received.append(await track.recv())

        readers.append(asyncio.ensure_future(read()))

    receiver.on("track", on_track)
    await sender.setLocalDescription(await sender.createOffer())
    await receiver.setRemoteDescription(sender.localDescription)
    if marked:
        for transceiver in receiver.getTransceivers():
            passthrough.mark_passthrough(transceiver.receiver)
    await receiver.setLocalDescription(await receiver.createAnswer())
    await sender.setRemoteDescription(receiver.localDescription)
    return sender, receiver, received


async def test_marked_receiver_yields_encoded_packets_with_keyframe_flags() -> None:
    sender, receiver, received = await connect_pair(marked=True)
    try:
        await wait_until(lambda: len(received) >= 10)
        assert all(isinstance(p, av.Packet) for p in received)
        assert received[0].is_keyframe
        assert received[0].time_base.denominator == 90_000
        stamps = [p.pts for p in received[:10]]
        assert stamps == sorted(stamps)
    finally:
        await sender.close()
        await receiver.close()


async def test_unmarked_receiver_in_the_same_process_still_decodes() -> None:
    sender, receiver, received = await connect_pair(marked=False)
    try:
        await wait_until(lambda: len(received) >= 5)
        assert all(isinstance(f, av.VideoFrame) for f in received)
    finally:
        await sender.close()
        await receiver.close()


async def test_late_viewer_gets_a_picture_because_its_pli_reaches_the_publisher(
    live_server: LiveServer,
) -> None:
    # aiortc's VP8 encoder sends a keyframe every 3000 frames (100 s): without forwarding the
    # viewer's keyframe request upstream, a viewer who joins late sees nothing for minutes.
    invite = await live_server.new_inspection()
    applicant = await publishing_applicant(live_server.ws_url, invite)
    live = live_server.services.live.get(invite["inspection_id"])
    assert live is not None
    await wait_until(lambda: live.relay.applicant_video.stats.packets_in > 60)
    keyframes_before = live.relay.applicant_video.stats.keyframes_in
    inspector = await watching_inspector(
        live_server.ws_url, await live_server.token("inspector1"), invite
    )
    try:
        await wait_until(lambda: inspector.received.video_frames > 10, timeout=10)
        assert live.relay.applicant_video.stats.keyframes_in > keyframes_before
    finally:
        await inspector.close()
        await applicant.close()
