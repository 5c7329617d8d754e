"""The server relays media between real aiortc peers without decoding it."""

from __future__ import annotations

import pytest

from tests.conftest import LiveServer
from tests.integration.peers import (
    invite_token,
    join,
    publishing_applicant,
    wait_until,
    watching_inspector,
)

# The media path, once: what it stores (joins, consent) runs on both engines in test_signalling.
pytestmark = pytest.mark.single_engine


async def test_inspector_sees_and_hears_applicant_and_applicant_hears_inspector(
    live_server: LiveServer,
) -> None:
    invite = await live_server.new_inspection()
    applicant = await publishing_applicant(live_server.ws_url, invite)
    inspector = await watching_inspector(
        live_server.ws_url, await live_server.token("inspector1"), invite
    )
    try:
        await wait_until(lambda: inspector.received.video_frames > 30, what="video at inspector")
        await wait_until(lambda: inspector.received.audio_frames > 20, what="audio at inspector")
        await wait_until(lambda: applicant.received.audio_frames > 20, what="audio at applicant")
        assert (inspector.received.width, inspector.received.height) == (640, 480)
        relay = live_server.services.live.get(invite["inspection_id"])
        assert relay is not None
        assert relay.relay.applicant_video.stats.packets_in > 0
    finally:
        await applicant.close()
        await inspector.close()


async def test_applicant_reconnect_resumes_video_without_inspector_renegotiating(
    live_server: LiveServer,
) -> None:
    invite = await live_server.new_inspection()
    applicant = await publishing_applicant(live_server.ws_url, invite)
    inspector = await watching_inspector(
        live_server.ws_url, await live_server.token("inspector1"), invite
    )
    try:
        await wait_until(lambda: inspector.received.video_frames > 20)
        await applicant.close()
        again = await join(live_server.ws_url, token=invite_token(invite))
        assert again.welcome.get("resumed") is True, again.welcome
        assert again.welcome["consented"] is True
        await again.connect_media("applicant")
        before = inspector.received.video_frames
        await wait_until(lambda: inspector.received.video_frames > before + 30)
        await again.close()
    finally:
        await inspector.close()
