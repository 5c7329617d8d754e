"""aiortc 1.16 adapter: receive encoded frames without decoding, and route keyframe requests.

aiortc always decodes what it receives and has no per-receiver hook to stop it. Its receiver starts
``rtcrtpreceiver.decoder_worker(loop, input_q, output_q, error)`` on a thread, where ``output_q`` is
the remote track's queue. We replace that module-level function with a dispatcher: receivers whose
track queue was registered with :func:`mark_passthrough` get a worker that turns each complete
encoded frame (after the jitter buffer) into an ``av.Packet`` (data, pts, time base, keyframe
flag); every other receiver keeps aiortc's own decoder. aiortc's sender packs such packets as they
are (``encoder.pack``), so a relayed track forwards frames with no decode or re-encode.

Also patched, process-wide and idempotently:
- ``RTCRtpSender._send_keyframe`` (a viewer's PLI/FIR) additionally calls the sending track's
  ``on_keyframe_request()``, so the relay can ask the publisher for a keyframe;
- the REMB bitrate the server reports to publishers gets a floor, because aiortc's estimator
  starts low and rises ~8 %/s, which keeps browsers at 640x360 for half a minute.

Every private aiortc name this project touches is in this module; aiortc is pinned exactly.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import weakref
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import aiortc
import av
from aiortc import RTCRtpReceiver, RTCRtpSender, rtcrtpreceiver

logger = logging.getLogger(__name__)

AIORTC_VERSION = "1.16.0"
if aiortc.__version__ != AIORTC_VERSION:  # pragma: no cover - guards an upgrade
    raise ImportError(
        f"server.live.media.passthrough was written against aiortc {AIORTC_VERSION}, "
        f"found {aiortc.__version__}: re-read rtcrtpreceiver.py/rtcrtpsender.py and update it"
    )

_original_decoder_worker = rtcrtpreceiver.decoder_worker
_original_send_keyframe = RTCRtpSender._send_keyframe
_original_pack_remb_fci = rtcrtpreceiver.pack_remb_fci  # type: ignore[attr-defined]

_passthrough_queues: weakref.WeakSet[asyncio.Queue[Any]] = weakref.WeakSet()
_lock = threading.Lock()
_state = {"installed": False, "remb_floor_bps": 0}


def is_vp8_keyframe(data: bytes) -> bool:
    """RFC 6386 frame tag: P bit clear, then the start code 9d 01 2a."""
    return len(data) >= 6 and not data[0] & 0x01 and data[3:6] == b"\x9d\x01\x2a"


def encoded_packet(data: bytes, pts: int, clock_rate: int, keyframe: bool) -> av.Packet[Any]:
    packet = av.Packet(data)
    packet.pts = pts
    packet.dts = pts
    packet.time_base = Fraction(1, clock_rate)
    packet.is_keyframe = keyframe
    return packet


def _passthrough_worker(
    loop: asyncio.AbstractEventLoop,
    input_q: queue.Queue[Any],
    output_q: asyncio.Queue[Any],
) -> None:
    while True:
        task = input_q.get()
        if task is None:
            loop.call_soon_threadsafe(output_q.put_nowait, None)
            return
        codec, encoded_frame = task
        data: bytes = encoded_frame.data
        keyframe = (codec.name == "VP8" and is_vp8_keyframe(data)) or codec.name == "opus"
        packet = encoded_packet(data, encoded_frame.timestamp, codec.clockRate, keyframe)
        loop.call_soon_threadsafe(output_q.put_nowait, packet)


def _dispatching_decoder_worker(
    loop: asyncio.AbstractEventLoop,
    input_q: queue.Queue[Any],
    output_q: asyncio.Queue[Any],
    decode_error: threading.Event,
) -> None:
    with _lock:
        passthrough = output_q in _passthrough_queues
    if passthrough:
        _passthrough_worker(loop, input_q, output_q)
    else:
        _original_decoder_worker(loop, input_q, output_q, decode_error)


def _send_keyframe(self: RTCRtpSender) -> None:
    _original_send_keyframe(self)
    callback = getattr(self.track, "on_keyframe_request", None)
    if callback is not None:
        callback()


def _pack_remb_fci(bitrate: int, ssrcs: list[int]) -> bytes:
    floored = max(bitrate, _state["remb_floor_bps"])
    result: bytes = _original_pack_remb_fci(floored, ssrcs)
    return result


def install(remb_floor_bps: int = 0) -> None:
    """Patch aiortc (idempotent). Receivers not marked with mark_passthrough still decode."""
    _state["remb_floor_bps"] = remb_floor_bps
    if _state["installed"]:
        return
    rtcrtpreceiver.decoder_worker = _dispatching_decoder_worker
    RTCRtpSender._send_keyframe = _send_keyframe  # type: ignore[method-assign]
    rtcrtpreceiver.pack_remb_fci = _pack_remb_fci  # type: ignore[attr-defined]
    _state["installed"] = True


def mark_passthrough(receiver: RTCRtpReceiver) -> None:
    """Make this receiver's track yield encoded ``av.Packet``s; call before it connects."""
    if not _state["installed"]:
        raise RuntimeError("server.live.media.passthrough.install() was not called")
    track = receiver.track
    if track is None:
        raise ValueError("receiver has no track yet: mark it after setRemoteDescription")
    with _lock:
        _passthrough_queues.add(track._queue)  # type: ignore[attr-defined]


def media_ssrcs(receiver: RTCRtpReceiver) -> list[int]:
    """The publisher's media SSRCs seen recently, without retransmission (RTX) SSRCs."""
    rtx: dict[int, int] = receiver._RTCRtpReceiver__rtx_ssrc  # type: ignore[attr-defined]
    return [s.source for s in receiver.getSynchronizationSources() if s.source not in rtx]


def keyframe_requester(receiver: RTCRtpReceiver) -> Callable[[], None]:
    """A callable that sends a PLI for each media SSRC the receiver gets."""

    pending: set[asyncio.Task[None]] = set()

    def request() -> None:
        for ssrc in media_ssrcs(receiver):
            task = asyncio.ensure_future(receiver._send_rtcp_pli(ssrc))
            pending.add(task)
            task.add_done_callback(pending.discard)

    return request
