"""Live inspections in this media process: who is connected, their peers, and the relay.

An inspection lives in exactly one media process; which one, with several, is its placement in
the database (server/live/nodes.py). ``LiveRegistry`` holds those this process runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSCloseCode, web

from recorder.archive import Archive
from recorder.recording import InspectionRecording
from server.live.media.peers import PeerSession
from server.live.media.relay import InspectionRelay
from server.live.presence import PresenceWatch
from server.live.protocol import VERSION

logger = logging.getLogger(__name__)


@dataclass(eq=False, slots=True)
class Participant:
    participant_id: str
    role: str  # "applicant" or "inspector"
    name: str
    user_id: int | None
    socket: web.WebSocketResponse
    peer: PeerSession | None = None
    welcomed: bool = False  # broadcasts start after the welcome message

    async def send(self, message: dict[str, Any]) -> None:
        if self.socket.closed:
            return
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.socket.send_json({"v": VERSION, **message})

    async def close_peer(self) -> None:
        peer, self.peer = self.peer, None
        if peer is not None:
            await peer.close()


@dataclass(eq=False)
class LiveInspection:
    inspection_id: str
    case_id: str
    relay: InspectionRelay
    participants: dict[str, Participant] = field(default_factory=dict)
    ended: bool = False
    recording: InspectionRecording | None = None
    watch: PresenceWatch | None = None
    # Everybody who joined while this inspection was live, in order: who left stays listed,
    # offline, so an inspector sees that the applicant has gone rather than that it never was.
    roster: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (role, name)
    # The placement's epoch this node runs it at (0: a single process; server/live/nodes.py).
    epoch: int = 0

    async def start_recording(self, archive: Archive, segment_s: float) -> None:
        """Record every track from now until the inspection ends (idempotent)."""
        if self.recording is not None or self.ended:
            return
        self.recording = InspectionRecording(
            archive,
            self.case_id,
            self.inspection_id,
            {
                "applicant-video": self.relay.applicant_video,
                "applicant-audio": self.relay.applicant_audio,
                "inspector-audio": self.relay.inspector_audio,
            },
            segment_s,
        )
        await self.recording.start()

    async def stop_recording(self) -> None:
        recording, self.recording = self.recording, None
        if recording is not None:
            await recording.stop()

    @property
    def applicant(self) -> Participant | None:
        return next((p for p in self.participants.values() if p.role == "applicant"), None)

    def _connected(self, participant_id: str) -> bool:
        if self.ended:
            return False
        p = self.participants.get(participant_id)
        if p is None or p.socket.closed:
            return False
        return not (p.role == "applicant" and self.watch and self.watch.offline_source)

    def presence(self) -> list[dict[str, Any]]:
        """Who joined and who is reachable now (an applicant whose ICE failed is not)."""
        return [
            {
                "participant_id": participant_id,
                "role": role,
                "name": name,
                "connected": self._connected(participant_id),
            }
            for participant_id, (role, name) in self.roster.items()
        ]

    def media_json(self) -> dict[str, Any] | None:
        """The applicant's picture as the server receives it (``PresenceWatch``)."""
        return self.watch.media_json() if self.watch else None

    def presence_message(self) -> dict[str, Any]:
        return {"type": "presence", "participants": self.presence(), "media": self.media_json()}

    async def push_presence(self) -> None:
        await self.broadcast(self.presence_message())

    async def join(self, participant: Participant) -> Participant | None:
        """Add a participant; a second connection of the same person replaces the first, which is
        returned so the caller can close it."""
        previous = self.participants.get(participant.participant_id)
        self.participants[participant.participant_id] = participant
        self.roster.pop(participant.participant_id, None)  # listed where it last joined
        self.roster[participant.participant_id] = (participant.role, participant.name)
        if previous is not None:
            await previous.close_peer()
            await previous.send({"type": "error", "code": "replaced", "reason": "joined again"})
            with contextlib.suppress(ConnectionError, RuntimeError):
                await previous.socket.close()
        return previous

    async def leave(self, participant: Participant) -> bool:
        """Remove the participant if it is still the current connection of that person."""
        await participant.close_peer()
        if self.participants.get(participant.participant_id) is participant:
            del self.participants[participant.participant_id]
            return True
        return False

    async def broadcast(
        self,
        message: dict[str, Any],
        roles: tuple[str, ...] = ("applicant", "inspector"),
        exclude: Participant | None = None,
    ) -> None:
        targets = [
            p
            for p in self.participants.values()
            if p.welcomed and p.role in roles and p is not exclude
        ]
        await asyncio.gather(*(p.send(message) for p in targets))

    async def end(self, reason: str) -> None:
        """The inspection is over: tell everybody, hang up, close the last segments."""
        if self.ended:
            return
        self.ended = True
        await self.broadcast({"type": "ended", "reason": reason})
        await self.hang_up(WSCloseCode.OK)

    async def hang_up(self, code: int) -> None:
        if self.watch is not None:
            await self.watch.stop()
        for participant in list(self.participants.values()):
            await participant.close_peer()
            with contextlib.suppress(ConnectionError, RuntimeError):
                await participant.socket.close(code=code)
        self.participants.clear()
        await self.stop_recording()
        self.relay.close()


class LiveRegistry:
    def __init__(self, archive: Archive, wall: Callable[[], float]) -> None:
        self._inspections: dict[str, LiveInspection] = {}
        self._archive = archive
        self._wall = wall

    def get(self, inspection_id: str) -> LiveInspection | None:
        return self._inspections.get(inspection_id)

    def epoch_of(self, inspection_id: str) -> int | None:
        """The epoch this process runs the inspection live at, None if it does not."""
        live = self._inspections.get(inspection_id)
        return None if live is None or live.ended else live.epoch

    async def open(self, inspection_id: str, case_id: str, epoch: int = 0) -> LiveInspection:
        live = self._inspections.get(inspection_id)
        if live is not None and live.epoch != epoch:
            # Run here at an epoch another node has taken it over from since: what remains of
            # that run is let go (its writes are refused anyway), and a new one starts.
            logger.warning(
                "a stale live run let go",
                extra={"inspection_id": inspection_id, "epoch": live.epoch, "now": epoch},
            )
            del self._inspections[inspection_id]
            await live.hang_up(WSCloseCode.SERVICE_RESTART)
            live = None
        if live is None:
            live = LiveInspection(
                inspection_id, case_id, InspectionRelay(inspection_id), epoch=epoch
            )
            live.watch = self._presence_watch(live)
            live.watch.start()
            self._inspections[inspection_id] = live
        return live

    def _presence_watch(self, live: LiveInspection) -> PresenceWatch:
        archive = self._archive

        async def chain(kind: str, body: dict[str, Any]) -> object:
            if live.ended:
                return None  # the end is chained by itself; nobody is offline after it
            return await archive.append(
                live.case_id, kind, {"inspection_id": live.inspection_id, **body}
            )

        return PresenceWatch(live.relay.applicant_video, chain, live.push_presence, self._wall)

    async def end(self, inspection_id: str, reason: str) -> None:
        live = self._inspections.pop(inspection_id, None)
        if live is not None:
            await live.end(reason)

    async def close_all(self) -> None:
        """Server shutdown: hang up without ending anything; clients reconnect after a restart."""
        inspections, self._inspections = list(self._inspections.values()), {}
        for live in inspections:
            await live.hang_up(WSCloseCode.SERVICE_RESTART)

    def __len__(self) -> int:
        return len(self._inspections)
