"""``python -m client`` against a real server on loopback: the commands a tester or a CI job runs.

The clients run as subprocesses while the server runs in the test's event loop, so everything
here awaits: nothing may block the loop.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest

# The media path, once: what it stores (joins, consent) runs on both engines in test_signalling.
pytestmark = pytest.mark.single_engine

if TYPE_CHECKING:
    from tests.conftest import LiveServer

REPO = Path(__file__).resolve().parents[2]
CLIENT_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Finished:
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> dict[str, Any]:
        value = json.loads(self.stdout)
        assert isinstance(value, dict), self.stdout
        return value


async def start_client(*arguments: str) -> asyncio.subprocess.Process:
    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "client",
        *arguments,
        cwd=REPO,
        env=environment,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def finish(process: asyncio.subprocess.Process) -> Finished:
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), CLIENT_TIMEOUT_S)
    except TimeoutError:
        process.kill()
        stdout, stderr = await process.communicate()
        pytest.fail(f"client still running after {CLIENT_TIMEOUT_S:g} s: {stderr.decode()[-2000:]}")
    assert process.returncode is not None
    return Finished(process.returncode, stdout.decode(), stderr.decode())


async def run_client(*arguments: str) -> Finished:
    return await finish(await start_client(*arguments))


def assert_one_line_error(finished: Finished, *, status: int, mentions: str) -> None:
    assert finished.returncode == status, finished
    lines = finished.stderr.strip().splitlines()
    assert len(lines) == 1, finished.stderr
    assert "Traceback" not in finished.stderr
    assert mentions in lines[0], lines[0]
    assert finished.stdout == ""


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_watcher_sees_published_testsrc_at_640x480_with_audio_and_latency(
    live_server: LiveServer,
) -> None:
    inspection = await live_server.new_inspection()
    token = await live_server.token("inspector1")
    publisher = await start_client(
        "publish", inspection["applicant_url"], "--source", "testsrc", "--seconds", "8", "--json"
    )
    watcher = await start_client(
        "watch", inspection["inspector_url"], "--token", token, "--seconds", "5", "--json"
    )
    watched, published = await finish(watcher), await finish(publisher)

    assert watched.returncode == 0, watched.stderr
    report = watched.json()
    assert report["frames"] > 0
    assert (report["width"], report["height"]) == (640, 480)
    assert report["fps"] > 10
    assert report["audio_packets"] > 0
    assert report["latency_ms_p50"] is not None
    assert 0 < report["latency_ms_p50"] < 2000
    assert report["latency_ms_p95"] >= report["latency_ms_p50"]

    assert published.returncode == 0, published.stderr
    sent = published.json()
    assert sent["outcome"] == "time"
    assert (sent["width"], sent["height"]) == (640, 480)
    assert sent["inspector_audio_frames"] > 0


async def test_publisher_answers_torch_and_zoom_as_not_supported(live_server: LiveServer) -> None:
    inspection = await live_server.new_inspection()
    token = await live_server.token("inspector1")
    publisher = await start_client("publish", inspection["applicant_url"], "--seconds", "20")
    results: dict[str, dict[str, Any]] = {}
    sent = False
    async with aiohttp.ClientSession() as http, http.ws_connect(live_server.ws_url) as ws:
        await ws.send_json(
            {"v": 1, "type": "hello", "token": token, "inspection_id": inspection["inspection_id"]}
        )
        async with asyncio.timeout(30):
            async for frame in ws:
                message = json.loads(frame.data)
                if (
                    not sent
                    and message["type"] in ("welcome", "presence")
                    and any(
                        p["role"] == "applicant" and p["connected"] for p in message["participants"]
                    )
                ):
                    sent = True
                    for action, value in (("torch", True), ("zoom", 2), ("switch_camera", "user")):
                        await ws.send_json(
                            {"v": 1, "type": "control", "action": action, "value": value}
                        )
                if message["type"] == "control_result":
                    results[message["action"]] = message
                    if len(results) == 3:
                        break
    publisher.terminate()
    finished = await finish(publisher)
    assert finished.returncode == 0, finished.stderr
    for action in ("torch", "zoom", "switch_camera"):
        assert results[action]["ok"] is False
        assert results[action]["reason"] == "not supported by this source"


async def test_publish_stops_cleanly_when_the_inspection_is_ended(live_server: LiveServer) -> None:
    inspection = await live_server.new_inspection()
    publisher = await start_client("publish", inspection["applicant_url"], "--json")
    await asyncio.sleep(3)
    status, body = await live_server.request(
        "POST", f"/api/inspections/{inspection['inspection_id']}/end", "inspector1"
    )
    assert status == 200, body
    finished = await finish(publisher)
    assert finished.returncode == 0, finished.stderr
    assert finished.json()["outcome"].startswith("ended")


async def test_watch_with_a_bad_token_exits_with_a_one_line_reason(
    live_server: LiveServer,
) -> None:
    inspection = await live_server.new_inspection()
    finished = await run_client(
        "watch", inspection["inspector_url"], "--token", "not-a-token", "--seconds", "3"
    )
    assert_one_line_error(finished, status=4, mentions="unauthorized")


async def test_publish_with_an_unknown_invite_exits_with_a_one_line_reason(
    live_server: LiveServer,
) -> None:
    finished = await run_client("publish", f"{live_server.base_url}/join/forged", "--seconds", "3")
    assert_one_line_error(finished, status=4, mentions="unauthorized")


@pytest.mark.parametrize(
    "url",
    [
        "not a url",
        "ftp://127.0.0.1/join/abc",
        "http://127.0.0.1:8080/inspect/abc",
        "http://127.0.0.1:8080/join/",
        "http://127.0.0.1:99999/join/abc",
    ],
)
async def test_publish_to_a_malformed_url_exits_with_a_one_line_reason(url: str) -> None:
    finished = await run_client("publish", url, "--seconds", "3")
    assert_one_line_error(finished, status=2, mentions="malformed URL")


async def test_publish_to_a_closed_port_exits_with_a_one_line_reason() -> None:
    url = f"http://127.0.0.1:{closed_port()}/join/abc"
    finished = await run_client("publish", url, "--seconds", "3")
    assert_one_line_error(finished, status=3, mentions="cannot reach")


async def test_watch_of_a_closed_port_exits_with_a_one_line_reason() -> None:
    url = f"http://127.0.0.1:{closed_port()}/inspect/abc"
    finished = await run_client("watch", url, "--token", "t", "--seconds", "3")
    assert_one_line_error(finished, status=3, mentions="cannot reach")


async def test_publish_of_a_missing_file_exits_with_a_one_line_reason(tmp_path: Path) -> None:
    missing = tmp_path / "nothing.mp4"
    finished = await run_client(
        "publish", "http://127.0.0.1:9/join/abc", "--source", str(missing), "--seconds", "3"
    )
    assert_one_line_error(finished, status=6, mentions="cannot open")
