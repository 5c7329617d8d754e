"""Server-side peer connections: answer a participant's offer and wire its tracks to the relay."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamTrack
from aiortc.sdp import candidate_from_sdp

from server.ice_servers import IceServerSpec
from server.live.media import passthrough
from server.live.media.relay import InspectionRelay, RelayedTrack, TrackRelay

logger = logging.getLogger(__name__)

# The relay forwards encoded frames, so everybody must use the same codecs.
VIDEO_CODECS = ("video/vp8", "video/rtx")
AUDIO_CODECS = ("audio/opus",)


class NegotiationError(Exception):
    pass


def with_start_bitrate(sdp: str, kbps: int) -> str:
    """Add ``x-google-start-bitrate`` to the VP8 format of an answer.

    Chromium picks its first resolution from its start bitrate (300 kbps → 640x360) and climbs
    slowly; starting at ~2.5 Mbps brings 720p within a second (docs/media.md).
    """
    lines = sdp.split("\r\n")
    vp8_types = {
        m.group(1)
        for line in lines
        if (m := re.fullmatch(r"a=rtpmap:(\d+) VP8/90000", line, flags=re.IGNORECASE))
    }
    out: list[str] = []
    has_fmtp = {
        m.group(1) for line in lines if (m := re.match(r"a=fmtp:(\d+) ", line)) and m.group(1)
    }
    for line in lines:
        fmtp = re.match(r"a=fmtp:(\d+) (.*)", line)
        if fmtp and fmtp.group(1) in vp8_types and "x-google-start-bitrate" not in line:
            line = f"{line};x-google-start-bitrate={kbps}"
        out.append(line)
        rtpmap = re.fullmatch(r"a=rtpmap:(\d+) VP8/90000", line, flags=re.IGNORECASE)
        if rtpmap and rtpmap.group(1) not in has_fmtp:
            out.append(f"a=fmtp:{rtpmap.group(1)} x-google-start-bitrate={kbps}")
    return "\r\n".join(out)


def _prefer(transceiver: RTCRtpTransceiver, kind: str) -> None:
    wanted = VIDEO_CODECS if kind == "video" else AUDIO_CODECS
    codecs = RTCRtpSender.getCapabilities(kind).codecs
    transceiver.setCodecPreferences([c for c in codecs if c.mimeType.lower() in wanted])


@dataclass(slots=True)
class PeerSession:
    """One participant's peer connection and what it feeds or reads in the relay."""

    pc: RTCPeerConnection
    published: list[tuple[TrackRelay, MediaStreamTrack]]
    relayed: list[RelayedTrack]

    async def add_ice_candidate(
        self, candidate: str | None, sdp_mid: str | None, index: int | None
    ) -> None:
        if not candidate:
            return  # end of candidates: aiortc needs no signal
        text = candidate.removeprefix("candidate:")
        try:
            parsed = candidate_from_sdp(text)
        except (ValueError, IndexError) as exc:
            raise NegotiationError(f"malformed ICE candidate: {exc}") from exc
        parsed.sdpMid = sdp_mid
        parsed.sdpMLineIndex = index
        await self.pc.addIceCandidate(parsed)

    async def close(self) -> None:
        for relay, track in self.published:
            relay.detach_source(track)
        for track in self.relayed:
            track.stop()
        await self.pc.close()


def _configuration(ice_servers: tuple[IceServerSpec, ...]) -> RTCConfiguration:
    return RTCConfiguration(
        iceServers=[
            RTCIceServer(urls=server.url, username=server.username, credential=server.credential)
            for server in ice_servers
        ]
    )


async def answer_offer(
    role: str,
    offer_sdp: str,
    relay: InspectionRelay,
    consumer: str,
    ice_servers: tuple[IceServerSpec, ...],
    start_bitrate_kbps: int,
) -> tuple[PeerSession, str]:
    """Answer ``offer_sdp`` for an applicant (publishes video+audio, hears the inspector) or an
    inspector (sees and hears the applicant, publishes audio). Returns the session and the SDP."""
    pc = RTCPeerConnection(_configuration(ice_servers))
    session = PeerSession(pc, published=[], relayed=[])
    try:
        if role == "applicant":
            video = pc.addTransceiver("video", direction="recvonly")
            audio_track = RelayedTrack(relay.inspector_audio, consumer)
            audio = pc.addTransceiver(audio_track, direction="sendrecv")
            session.relayed.append(audio_track)
            publish_to = {"video": relay.applicant_video, "audio": relay.applicant_audio}
        else:
            video_track = RelayedTrack(relay.applicant_video, consumer)
            audio_track = RelayedTrack(relay.applicant_audio, consumer)
            video = pc.addTransceiver(video_track, direction="sendonly")
            audio = pc.addTransceiver(audio_track, direction="sendrecv")
            session.relayed += [video_track, audio_track]
            publish_to = {"audio": relay.inspector_audio}
        _prefer(video, "video")
        _prefer(audio, "audio")

        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        for transceiver in pc.getTransceivers():
            receiver: RTCRtpReceiver = transceiver.receiver
            target = publish_to.get(transceiver.kind)
            if receiver.track is None or target is None:
                continue
            if transceiver.direction not in ("recvonly", "sendrecv"):
                continue
            passthrough.mark_passthrough(receiver)
            requester = passthrough.keyframe_requester(receiver)
            target.attach_source(receiver.track, requester)
            session.published.append((target, receiver.track))
        answer = await pc.createAnswer()
        await pc.setLocalDescription(answer)
    except Exception as exc:
        await session.close()
        raise NegotiationError(str(exc) or type(exc).__name__) from exc
    sdp = pc.localDescription.sdp
    if role == "applicant":
        sdp = with_start_bitrate(sdp, start_bitrate_kbps)
    return session, sdp
