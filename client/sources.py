"""What ``publish`` sends: the test source, a media file or a V4L2 camera, and its controls."""

from __future__ import annotations

import asyncio
import glob
import logging
import re
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import av
from aiortc.contrib.media import MediaPlayer
from aiortc.mediastreams import MediaStreamTrack

from client.exceptions import SourceError, UsageError
from client.pattern import PatternSize
from client.testsrc import TestPatternTrack, ToneTrack

logger = logging.getLogger(__name__)

NOT_SUPPORTED = "not supported by this source"
DEFAULT_WIDTH = 640
DEFAULT_HEIGHT = 480
DEFAULT_FPS = 30.0

SourceKind = Literal["testsrc", "file", "camera"]
_CAMERA = re.compile(r"camera:(\d{1,3})")


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """``testsrc``, ``camera:N`` or a file path, as given to ``--source``."""

    kind: SourceKind
    path: str | None = None

    @classmethod
    def parse(cls, text: str) -> SourceSpec:
        if text == "testsrc":
            return cls("testsrc")
        camera = _CAMERA.fullmatch(text)
        if camera is not None:
            return cls("camera", f"/dev/video{int(camera.group(1))}")
        if text.startswith("camera:"):
            raise UsageError(f"bad camera source {text!r}: expected camera:N, N a device number")
        if not text:
            raise UsageError("--source is empty")
        return cls("file", text)


@dataclass(frozen=True, slots=True)
class VideoFormat:
    """Requested size and rate; ``None`` leaves the choice to the source."""

    width: int | None = None
    height: int | None = None
    fps: float | None = None

    def __post_init__(self) -> None:
        if (self.width is None) != (self.height is None):
            raise UsageError("give --width and --height together")
        if self.fps is not None and not 1 <= self.fps <= 120:
            raise UsageError(f"--fps must be from 1 to 120, got {self.fps:g}")

    def v4l2_options(self) -> dict[str, str]:
        options: dict[str, str] = {}
        if self.width is not None and self.height is not None:
            options["video_size"] = f"{self.width}x{self.height}"
        if self.fps is not None:
            options["framerate"] = f"{self.fps:g}"
        return options


@dataclass(frozen=True, slots=True)
class ControlResult:
    """The applicant's side of ``control_result``."""

    ok: bool
    reason: str | None = None
    value: Any = None

    def fields(self, action: str) -> dict[str, Any]:
        fields: dict[str, Any] = {"action": action, "ok": self.ok}
        if self.reason is not None:
            fields["reason"] = self.reason[:200]
        if self.value is not None:
            fields["value"] = self.value
        return fields


class VideoSender(Protocol):
    """The part of ``RTCRtpSender`` a camera switch needs."""

    def replaceTrack(self, track: MediaStreamTrack | None) -> None: ...


class MediaSource(Protocol):
    """An opened source: one video and one audio track, and what the inspector may control."""

    @property
    def video(self) -> MediaStreamTrack: ...

    @property
    def audio(self) -> MediaStreamTrack: ...

    def describe(self) -> str: ...

    async def control(self, action: str, value: Any, sender: VideoSender) -> ControlResult: ...

    def close(self) -> None: ...


class TestSource:
    """The time-coded test picture and a 440 Hz tone."""

    __test__ = False

    def __init__(self, video_format: VideoFormat) -> None:
        width = video_format.width or DEFAULT_WIDTH
        height = video_format.height or DEFAULT_HEIGHT
        try:
            size = PatternSize(width, height)
        except ValueError as error:
            raise UsageError(f"testsrc size: {error}") from None
        self._video = TestPatternTrack(size, video_format.fps or DEFAULT_FPS)
        self._audio = ToneTrack()

    @property
    def video(self) -> MediaStreamTrack:
        return self._video

    @property
    def audio(self) -> MediaStreamTrack:
        return self._audio

    @property
    def frames_skipped(self) -> int:
        return self._video.frames_skipped

    def describe(self) -> str:
        return "testsrc"

    async def control(self, action: str, value: Any, sender: VideoSender) -> ControlResult:
        return ControlResult(ok=False, reason=NOT_SUPPORTED)

    def close(self) -> None:
        self._video.stop()
        self._audio.stop()


class PlayerSource:
    """A file or a V4L2 camera through aiortc's ``MediaPlayer``; silence if it has no audio."""

    def __init__(self, spec: SourceSpec, player: MediaPlayer) -> None:
        if player.video is None:
            raise SourceError(f"{spec.path} has no video stream")
        self._spec = spec
        self._player = player
        self._video: MediaStreamTrack = player.video
        self._audio: MediaStreamTrack = player.audio or ToneTrack(amplitude=0.0)

    @property
    def video(self) -> MediaStreamTrack:
        return self._video

    @property
    def audio(self) -> MediaStreamTrack:
        return self._audio

    def describe(self) -> str:
        return f"{self._spec.kind} {self._spec.path}"

    async def control(self, action: str, value: Any, sender: VideoSender) -> ControlResult:
        if action != "switch_camera" or self._spec.kind != "camera":
            return ControlResult(ok=False, reason=NOT_SUPPORTED)
        return await self._switch_camera(value, sender)

    async def _switch_camera(self, facing: Any, sender: VideoSender) -> ControlResult:
        """Moves to the next other V4L2 device; Linux does not say which way a camera faces."""
        others = sorted(set(glob.glob("/dev/video*")) - {self._spec.path or ""}, key=_device_key)
        if not others:
            return ControlResult(ok=False, reason="there is no other camera")
        device = others[0]
        try:
            player = await asyncio.to_thread(MediaPlayer, device, format="v4l2")
        except (av.FFmpegError, OSError) as error:
            return ControlResult(ok=False, reason=f"cannot open {device}: {error}")
        if player.video is None:
            return ControlResult(ok=False, reason=f"{device} has no video")
        old_video = self._video
        sender.replaceTrack(player.video)
        self._video, self._player = player.video, player
        self._spec = SourceSpec("camera", device)
        old_video.stop()
        logger.info("switched camera to %s", device)
        return ControlResult(ok=True, value=facing)

    def close(self) -> None:
        self._video.stop()
        self._audio.stop()


async def open_source(spec: SourceSpec, video_format: VideoFormat, loop: bool) -> MediaSource:
    """Open the source before any network traffic, so a bad file fails fast."""
    if spec.kind == "testsrc":
        return TestSource(video_format)
    path = spec.path or ""
    if spec.kind == "file" and video_format != VideoFormat():
        raise UsageError("--width, --height and --fps apply to testsrc and camera sources only")
    try:
        if spec.kind == "camera":
            player = await asyncio.to_thread(
                MediaPlayer, path, format="v4l2", options=video_format.v4l2_options()
            )
        else:
            player = await asyncio.to_thread(MediaPlayer, path, loop=loop)
    except (av.FFmpegError, OSError) as error:
        raise SourceError(f"cannot open {path}: {_ffmpeg_reason(error)}") from None
    except AssertionError:  # aiortc's way of refusing loop on an unseekable input
        raise SourceError(f"cannot loop {path}: it is not seekable") from None
    return PlayerSource(spec, player)


def _device_key(path: str) -> int:
    digits = path.removeprefix("/dev/video")
    return int(digits) if digits.isdigit() else 1 << 30


def _ffmpeg_reason(error: Exception) -> str:
    strerror = getattr(error, "strerror", None)
    return str(strerror) if strerror else str(error)
