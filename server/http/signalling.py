"""The signalling WebSocket (/ws): one per participant, protocol in docs/signalling.md."""

from __future__ import annotations

import logging
import time
from typing import Any

from aiohttp import WSMsgType, web

from server.clock import utc_iso
from server.errors import TakanError
from server.inspection.inspections import end_inspection
from server.live import site_checks
from server.live.geo import LocationError, LocationFix
from server.live.media.peers import NegotiationError, PeerSession, answer_offer
from server.live.nodes import Elsewhere
from server.live.protocol import VERSION, ClientMessage, ProtocolError, error_message, parse_message
from server.live.registry import LiveInspection, Participant
from server.security.auth import COOKIE_NAME, open_session
from server.security.tokens import TokenError
from server.services import SERVICES, Services

logger = logging.getLogger(__name__)

SOCKET_MAX_BYTES = 4 * 1024 * 1024  # beyond this aiohttp closes the socket; our limit is 64 KiB
MESSAGES_PER_SECOND = 50

APPLICANT_ONLY = {"consent", "control_result", "location", "location_denied", "challenge_shown"}
INSPECTOR_ONLY = {"control", "end", "challenge", "challenge_judge"}


def evidence_value(value: Any) -> Any:
    """Canonical JSON in the chain has no floats: they are kept as their decimal text."""
    return repr(value) if isinstance(value, float) else value


class SignallingConnection:
    def __init__(self, services: Services, socket: web.WebSocketResponse, request: web.Request):
        self.services = services
        self.socket = socket
        self.request = request
        self.participant: Participant | None = None
        self.live: LiveInspection | None = None
        self.consented = False
        self._window_start = 0.0
        self._window_count = 0

    async def send(self, message: dict[str, Any]) -> None:
        if not self.socket.closed:
            await self.socket.send_json(message if "v" in message else {"v": VERSION, **message})

    async def handle_text(self, raw: str) -> None:
        if self._over_rate():
            await self.send(error_message("rate_limited", "too many messages, slow down"))
            return
        message: ClientMessage | None = None
        try:
            message = parse_message(raw)
            await self.dispatch(message)
        except ProtocolError as exc:
            await self.send(exc.to_message())
        except TakanError as exc:
            ref = message.type if message is not None else None
            await self.send(error_message(exc.code, exc.reason, ref))
        except Exception:
            logger.exception("signalling message failed")
            await self.send(error_message("internal_error", "the server could not handle this"))

    def _over_rate(self) -> bool:
        now = time.monotonic()
        if now - self._window_start >= 1.0:
            self._window_start, self._window_count = now, 0
        self._window_count += 1
        return self._window_count > MESSAGES_PER_SECOND

    async def dispatch(self, message: ClientMessage) -> None:
        kind = message.type
        if kind == "ping":
            await self.send({"type": "pong"})
            return
        if kind == "hello":
            await self.hello(message)
            return
        participant, live = self.participant, self.live
        if participant is None or live is None:
            raise ProtocolError("not_joined", "send 'hello' first", kind)
        if live.ended:
            raise ProtocolError("inspection_ended", "the inspection has ended", kind)
        if kind in APPLICANT_ONLY and participant.role != "applicant":
            raise ProtocolError("forbidden", f"only the applicant may send '{kind}'", kind)
        if kind in INSPECTOR_ONLY and participant.role != "inspector":
            raise ProtocolError("forbidden", f"only an inspector may send '{kind}'", kind)
        handler = getattr(self, f"on_{kind}")
        await handler(message, participant, live)

    # joining

    def _same_origin(self) -> bool:
        """A cookie only counts from our own pages: browsers send cookies with cross-site
        WebSocket handshakes too, and only the Origin header tells them apart."""
        origin = self.request.headers.get("Origin")
        if origin is None:
            return True  # not a browser: no ambient cookie to abuse
        allowed = {f"{self.request.scheme}://{self.request.host}", self.services.settings.base_url}
        return origin.rstrip("/") in allowed

    async def hello(self, message: ClientMessage) -> None:
        if self.participant is not None:
            raise ProtocolError("already_joined", "this socket has already joined", "hello")
        token = message.get("token")
        if not token and self._same_origin():
            token = self.request.cookies.get(COOKIE_NAME)
        if not token:
            raise ProtocolError("unauthorized", "a token is required", "hello")
        store, now = self.services.store, self.services.clock.now()
        try:
            invite = self.services.signer.open_invite(token, now)
        except TokenError:
            invite = None
        if invite is not None:
            inspection = await store.inspections.get(invite.inspection_id)
            if inspection is None or inspection.case_id != invite.case_id:
                raise ProtocolError("unauthorized", "invite does not match an inspection", "hello")
            role, participant_id, user_id, name = "applicant", "applicant", None, "申请人"
            case = await store.cases.get(inspection.case_id)
            if case is not None and case.applicant_name:
                name = case.applicant_name
        else:
            try:
                session = await open_session(self.services, token)
            except TakanError as exc:
                raise ProtocolError("unauthorized", exc.reason, "hello") from exc
            if session.role != "inspector":
                raise ProtocolError(
                    "forbidden", f"role '{session.role}' cannot join a live inspection", "hello"
                )
            inspection_id = message.get("inspection_id")
            if not inspection_id:
                raise ProtocolError("bad_message", "field 'inspection_id' is required", "hello")
            inspection = await store.inspections.get(inspection_id)
            if inspection is None:
                raise ProtocolError("unauthorized", "no such inspection", "hello")
            case = await store.cases.get(inspection.case_id)
            if not await store.cases.is_assigned(inspection.case_id, session.user_id):
                raise ProtocolError(
                    "forbidden", "you are not one of this case's inspectors", "hello"
                )
            role, user_id = "inspector", session.user_id
            participant_id, name = f"inspector-{session.user_id}", session.username
        if inspection.status != "active":
            await self.send(error_message("inspection_ended", "the inspection has ended", "hello"))
            await self.socket.close()
            return

        epoch = 0
        if self.services.nodes is not None:  # one node of many: is the inspection held here?
            claim = await self.services.nodes.claim(inspection.case_id, inspection.inspection_id)
            if isinstance(claim, Elsewhere):
                await self.send(
                    {
                        "type": "redirect",
                        "node": claim.placement.node,
                        "url": claim.ws_url,
                        "reason": f"the inspection runs on node {claim.placement.node}",
                    }
                )
                await self.socket.close()
                return
            epoch = claim.epoch
        live = await self.services.live.open(inspection.inspection_id, inspection.case_id, epoch)
        earlier = await store.participants.of(inspection.inspection_id)
        resumed = any(p["participant_id"] == participant_id for p in earlier)
        participant = Participant(participant_id, role, name, user_id, self.socket)
        await live.join(participant)
        await self._report_connected(live)
        self.participant, self.live = participant, live
        self.consented = inspection.consented_at is not None
        joined_at = utc_iso(now)
        await store.participants.add(
            inspection.inspection_id, participant_id, role, user_id, name, joined_at
        )
        await self.audit(
            "rejoined" if resumed else "joined",
            {"participant_id": participant_id, "role": role, "name": name, "joined_at": joined_at},
        )
        if role == "applicant" and live.watch is not None:
            await live.watch.applicant_online(participant_id, "socket_opened")
        if role == "applicant" and self.consented:
            await self._record(live)
        creator = await store.users.by_id(inspection.created_by)
        logger.info(
            "participant joined",
            extra={
                "inspection_id": inspection.inspection_id,
                "participant_id": participant_id,
                "resumed": resumed,
            },
        )
        # The applicant reads the recording notice before consenting; its hash comes back.
        notice = (
            {"notice": self.services.settings.consent_notice.for_page()}
            if role == "applicant"
            else {}
        )
        await self.send(
            {
                "type": "welcome",
                "participant_id": participant_id,
                "role": role,
                "resumed": resumed,
                "consented": self.consented,
                "case": {
                    "case_id": inspection.case_id,
                    "case_number": case.number if case else inspection.case_id,
                    "title": case.title if case else "",
                    "address": case.address if case else "",
                },
                "inspection": {
                    "inspection_id": inspection.inspection_id,
                    "status": inspection.status,
                    "inspector_name": creator.username if creator else "",
                    "inspectors": await store.cases.inspector_names(inspection.case_id),
                },
                **notice,
                "ice_servers": [
                    server.to_json(with_credentials=True)
                    for server in self.services.settings.ice_servers
                ],
                "participants": live.presence(),
                "media": live.media_json(),
            }
        )
        participant.welcomed = True
        await self._catch_up(participant, live, site_checks.site_of(case))
        await live.push_presence()

    async def _catch_up(
        self, p: Participant, live: LiveInspection, site: tuple[float, float] | None
    ) -> None:
        """A (re)joining inspector gets the latest fix and every challenge; a rejoining applicant
        gets the challenge still waiting for its answer."""
        store = self.services.store
        challenges = await site_checks.challenges_of(store, live.inspection_id)
        if p.role == "inspector":
            location = await site_checks.location_message(store, live.inspection_id, site)
            if location is not None:
                await self.send(location)
            for challenge in challenges:
                await self.send(challenge.to_state())
            return
        for challenge in challenges:
            if challenge.state == "issued":
                await self.send(challenge.to_applicant())

    async def closed(self) -> None:
        participant, live = self.participant, self.live
        if participant is None or live is None:
            return
        if await live.leave(participant):
            await self._report_connected(live)
            left_at = utc_iso(self.services.clock.now())
            if live.ended:  # hung up by the end: left when the inspection ended, as chained
                inspection = await self.services.store.inspections.get(live.inspection_id)
                left_at = (inspection.ended_at if inspection else None) or left_at
            await self.services.store.participants.left(
                live.inspection_id, participant.participant_id, left_at
            )
            if not live.ended:
                await self.audit(
                    "left", {"participant_id": participant.participant_id, "left_at": left_at}
                )
                if participant.role == "applicant" and live.watch is not None:
                    await live.watch.applicant_offline(participant.participant_id, "socket_closed")
            await live.push_presence()

    async def _report_connected(self, live: LiveInspection) -> None:
        if self.services.nodes is not None:
            await self.services.nodes.report_connected(live.inspection_id, len(live.participants))

    async def audit(self, kind: str, body: dict[str, Any]) -> None:
        """Chain an event of this socket's inspection."""
        live = self.live
        if live is not None:
            await self.services.archive.append(
                live.case_id, kind, {"inspection_id": live.inspection_id, **body}
            )

    async def _record(self, live: LiveInspection) -> None:
        settings = self.services.settings
        await live.start_recording(self.services.archive, settings.segment_s)

    # messages after hello

    async def on_consent(
        self, message: ClientMessage, p: Participant, live: LiveInspection
    ) -> None:
        notice = self.services.settings.consent_notice
        shown = message.get("notice_sha256")
        if shown is not None and shown != notice.sha256:
            raise ProtocolError(
                "notice_changed",
                f"the recording notice is now version {notice.version}: read it, then consent",
                "consent",
            )
        consented_at = utc_iso(self.services.clock.now())
        await self.services.store.inspections.record_consent(live.inspection_id, consented_at)
        self.consented = True
        await self.audit(
            "consented",
            {
                "participant_id": p.participant_id,
                "lang": message.get("lang") or "zh-CN",
                "consented_at": consented_at,
                "notice_version": notice.version,
                "notice_sha256": notice.sha256,
                "notice": notice.to_json(),
            },
        )
        await self._record(live)
        await live.push_presence()

    async def on_offer(self, message: ClientMessage, p: Participant, live: LiveInspection) -> None:
        if p.role == "applicant" and not self.consented:
            raise ProtocolError("consent_required", "accept the recording notice first", "offer")
        await p.close_peer()
        settings = self.services.settings
        try:
            peer, sdp = await answer_offer(
                p.role,
                message.get("sdp"),
                live.relay,
                consumer=p.participant_id,
                ice_servers=settings.ice_servers,
                start_bitrate_kbps=settings.start_bitrate_kbps,
            )
        except NegotiationError as exc:
            raise ProtocolError("negotiation_failed", str(exc)[:300], "offer") from exc
        if live.participants.get(p.participant_id) is not p or live.ended:
            await peer.close()  # replaced or ended while negotiating
            return
        p.peer = peer
        if p.role == "applicant":
            self._watch_ice(peer, p, live)
        await self.send({"type": "answer", "sdp": sdp})

    def _watch_ice(self, peer: PeerSession, p: Participant, live: LiveInspection) -> None:
        """An applicant whose peer connection fails is offline, even with its socket open."""

        @peer.pc.on("connectionstatechange")
        async def changed() -> None:
            watch, current = live.watch, live.participants.get(p.participant_id)
            if watch is None or p.peer is not peer or current is not p:
                return  # replaced by a newer offer or connection
            if peer.pc.connectionState == "failed":
                await watch.applicant_offline(p.participant_id, "ice_failed")
            elif peer.pc.connectionState == "connected":
                await watch.applicant_online(p.participant_id, "ice_connected")

    async def on_ice(self, message: ClientMessage, p: Participant, live: LiveInspection) -> None:
        if p.peer is None:
            raise ProtocolError("out_of_order", "send an 'offer' before ICE candidates", "ice")
        candidate, mid, index = (
            message.get("candidate"),
            message.get("sdpMid"),
            message.get("sdpMLineIndex"),
        )
        if candidate and mid is None and index is None:
            raise ProtocolError(
                "bad_message", "a candidate needs 'sdpMid' or 'sdpMLineIndex'", "ice"
            )
        try:
            await p.peer.add_ice_candidate(candidate, mid, index)
        except NegotiationError as exc:
            raise ProtocolError("bad_message", str(exc)[:300], "ice") from exc
        except AssertionError as exc:  # aiortc's candidate parser asserts on too few fields
            raise ProtocolError("bad_message", "malformed ICE candidate", "ice") from exc

    async def on_chat(self, message: ClientMessage, p: Participant, live: LiveInspection) -> None:
        await self.audit("chat", {"from": p.participant_id, "text": message.get("text")})
        await live.broadcast(
            {
                "type": "chat",
                "from": {"participant_id": p.participant_id, "role": p.role, "name": p.name},
                "text": message.get("text"),
                "at": utc_iso(self.services.clock.now()),
            }
        )

    async def on_control(
        self, message: ClientMessage, p: Participant, live: LiveInspection
    ) -> None:
        applicant = live.applicant
        if applicant is None:
            raise ProtocolError("unavailable", "the applicant is not connected", "control")
        await self.audit(
            "control",
            {
                "by": p.participant_id,
                "action": message.get("action"),
                "value": evidence_value(message.get("value")),
            },
        )
        await applicant.send(
            {
                "type": "control",
                "action": message.get("action"),
                "value": message.get("value"),
                "from": {"participant_id": p.participant_id, "name": p.name},
            }
        )

    async def on_control_result(
        self, message: ClientMessage, p: Participant, live: LiveInspection
    ) -> None:
        await self.audit(
            "control_result",
            {
                "action": message.get("action"),
                "ok": message.get("ok"),
                "reason": message.get("reason"),
                "value": evidence_value(message.get("value")),
            },
        )
        await live.broadcast(
            {"type": "control_result", **message.fields}, roles=("inspector",), exclude=p
        )

    async def on_stats(self, message: ClientMessage, p: Participant, live: LiveInspection) -> None:
        await live.broadcast(
            {
                "type": "peer_stats",
                "from": {"participant_id": p.participant_id, "role": p.role},
                "stats": message.get("stats"),
            },
            exclude=p,
        )

    # is the applicant live and at the site

    async def on_location(
        self, message: ClientMessage, p: Participant, live: LiveInspection
    ) -> None:
        if not self.consented:
            raise ProtocolError("consent_required", "accept the recording notice first", "location")
        try:
            fix = LocationFix.received(
                message.get("lat"),
                message.get("lon"),
                message.get("accuracy"),
                message.get("at"),
                self.services.clock.now(),
            )
        except LocationError as exc:
            raise ProtocolError("bad_message", str(exc), "location") from exc
        update = await site_checks.record_location(
            self.services, live.case_id, live.inspection_id, p.participant_id, fix
        )
        await live.broadcast(update, roles=("inspector",))
        await self.send(
            {"type": "location_ack", "at": update["at"], "trail_count": update["trail_count"]}
        )

    async def on_location_denied(
        self, message: ClientMessage, p: Participant, live: LiveInspection
    ) -> None:
        update = await site_checks.record_location_denied(
            self.services,
            live.case_id,
            live.inspection_id,
            p.participant_id,
            message.get("reason") or "denied",
        )
        await live.broadcast(update, roles=("inspector",))

    async def on_challenge(
        self, message: ClientMessage, p: Participant, live: LiveInspection
    ) -> None:
        applicant = live.applicant
        if applicant is None:
            raise ProtocolError("unavailable", "the applicant is not connected", "challenge")
        challenge = await site_checks.issue_challenge(
            self.services,
            live.case_id,
            live.inspection_id,
            message.get("kind"),
            message.get("text"),
            p.user_id,
            p.name,
        )
        await applicant.send(challenge.to_applicant())
        await live.broadcast(challenge.to_state(), roles=("inspector",))

    async def on_challenge_shown(
        self, message: ClientMessage, p: Participant, live: LiveInspection
    ) -> None:
        challenge = await site_checks.mark_shown(
            self.services, live.case_id, live.inspection_id, message.get("challenge_id")
        )
        await live.broadcast(challenge.to_state(), roles=("inspector",))

    async def on_challenge_judge(
        self, message: ClientMessage, p: Participant, live: LiveInspection
    ) -> None:
        challenge = await site_checks.judge(
            self.services,
            live.case_id,
            live.inspection_id,
            message.get("challenge_id"),
            message.get("judgement"),
            (message.get("note") or "").strip(),
            p.name,
        )
        await live.broadcast(challenge.to_state(), roles=("inspector",))
        await live.broadcast(
            {"type": "challenge_closed", "challenge_id": challenge.challenge_id},
            roles=("applicant",),
        )

    async def on_end(self, message: ClientMessage, p: Participant, live: LiveInspection) -> None:
        await end_inspection(self.services, live.inspection_id, p.name)


async def websocket_handler(request: web.Request) -> web.WebSocketResponse:
    socket = web.WebSocketResponse(heartbeat=20, max_msg_size=SOCKET_MAX_BYTES)
    await socket.prepare(request)
    connection = SignallingConnection(request.app[SERVICES], socket, request)
    try:
        async for msg in socket:
            if msg.type == WSMsgType.TEXT:
                await connection.handle_text(msg.data)
            elif msg.type == WSMsgType.BINARY:
                await connection.send(error_message("bad_json", "binary frames are not accepted"))
            elif msg.type == WSMsgType.ERROR:
                break
    finally:
        await connection.closed()
    return socket
