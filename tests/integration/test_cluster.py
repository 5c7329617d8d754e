"""``takan cluster`` (``make cluster``): three nodes behind nginx on one URL, with PostgreSQL and
SeaweedFS, as a user starts it; inspections spread over the nodes, a participant reaches the node
running its inspection through the one URL, a node killed with SIGKILL loses its inspection to
another (chained), and Ctrl-C stops everything."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from client.endpoints import applicant_endpoint
from client.exceptions import ClientError
from client.signalling import connect
from recorder.clock import utc_iso
from server.cli.cluster.process import free_port
from tests.conftest import ApiClient
from tests.integration.recorded_case import REPO

pytestmark = pytest.mark.single_engine  # takan cluster starts a PostgreSQL of its own
START_TIMEOUT_S = 180.0


@dataclass
class Cluster(ApiClient):
    process: asyncio.subprocess.Process
    base_url: str
    node_pids: dict[str, int]
    passwords: dict[str, str]
    output: list[str]
    logs: Path

    def __post_init__(self) -> None:
        self._tokens: dict[str, str] = {}


async def read_until_ready(process: asyncio.subprocess.Process, output: list[str]) -> None:
    assert process.stdout is not None
    async with asyncio.timeout(START_TIMEOUT_S):
        while True:
            line = (await process.stdout.readline()).decode()
            if not line:
                raise AssertionError("takan cluster exited:\n" + "".join(output))
            output.append(line)
            if "Ctrl-C stops everything" in line:
                return


@asynccontextmanager
async def cluster_of_three() -> AsyncIterator[Cluster]:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server.cli", "cluster", "--nodes", "3", "--port", str(port),
        cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output: list[str] = []
    try:
        await read_until_ready(process, output)
        text = "".join(output)
        pids = {
            name: int(pid)
            for name, pid in re.findall(r"(n\d) \(127\.0\.0\.1:\d+, pid (\d+)\)", text)
        }
        passwords = dict(re.findall(r"^\s+(inspector|auditor|admin)\s+\S+\s+(\S+)$", text, re.M))
        [logs] = re.findall(r"logs:\s+(\S+) \(each node\)", text)
        yield Cluster(process, f"http://127.0.0.1:{port}", pids, passwords, output, Path(logs))
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
            async with asyncio.timeout(90):
                await process.wait()


async def entries_of(
    cluster: Cluster, inspection_id: str, case_id: str = "CLUSTER-1"
) -> list[dict[str, Any]]:
    status, audit = await cluster.request("GET", f"/api/cases/{case_id}/audit?limit=500", "auditor")
    assert status == 200, audit
    return [e for e in audit["entries"] if e["body"].get("inspection_id") == inspection_id]


async def wait_for_kind(cluster: Cluster, inspection_id: str, kind: str) -> None:
    async with asyncio.timeout(60):
        while not any(e["kind"] == kind for e in await entries_of(cluster, inspection_id)):
            await asyncio.sleep(0.5)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def join_once(url: str) -> str | None:
    """Join as the applicant through ``url`` (redirects followed): the node's welcome came, its
    participant id; None if the node the redirect named did not answer."""
    try:
        async with connect(applicant_endpoint(url), timeout_s=5) as session:
            return session.welcome.participant_id
    except ClientError:
        return None


async def test_three_nodes_behind_one_url_share_the_work_and_replace_a_killed_one() -> None:
    async with cluster_of_three() as cluster:
        assert sorted(cluster.node_pids) == ["n1", "n2", "n3"], cluster.output
        assert sorted(cluster.passwords) == ["admin", "auditor", "inspector"], cluster.output
        status, case = await cluster.request(
            "POST", "/api/cases", "inspector",
            json={"case_id": "CLUSTER-1", "title": "厂房", "address": "杭州"},
        )  # fmt: skip
        assert status == 201, case
        invites: list[dict[str, Any]] = []
        for _ in range(6):
            status, invite = await cluster.request(
                "POST", "/api/cases/CLUSTER-1/inspections", "inspector"
            )
            assert status == 201, invite
            invites.append(invite)
        assert Counter(i["node"] for i in invites) == {"n1": 2, "n2": 2, "n3": 2}

        # Through the one URL the applicant (python -m client publish) reaches the node that
        # runs its inspection, and is recorded there.
        invite = invites[0]
        assert invite["applicant_url"].startswith(cluster.base_url)
        publisher = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "client", "publish", invite["applicant_url"],
            "--source", "testsrc", "--seconds", "40", "--json",
            cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        await wait_for_kind(cluster, invite["inspection_id"], "segment")

        # That node is killed: once its lease lapses another node takes the inspection over,
        # the publisher joins again through the same link and its recording goes on there.
        lost = invite["node"]
        os.kill(cluster.node_pids[lost], signal.SIGKILL)
        async with asyncio.timeout(90):
            out, err = await publisher.communicate()
        assert publisher.returncode == 0, err.decode()
        published = json.loads(out)
        assert published["reconnects"] >= 1, published
        entries = await entries_of(cluster, invite["inspection_id"])
        [loss] = [e for e in entries if e["kind"] == "node_lost"]
        body = loss["body"]
        assert (body["node"], body["lost_epoch"], body["epoch"]) == (lost, 1, 2)
        assert body["taken_by"] != lost
        assert body["how"] == "lapsed"  # killed: nothing let go of it
        assert body["last_segments"], body  # what the lost node had chained
        after = [e for e in entries if e["kind"] == "segment" and e["seq"] > loss["seq"]]
        assert {e["body"]["track"] for e in after} >= {"applicant-video", "applicant-audio"}
        assert (
            min(e["body"]["seq"] for e in after if e["body"]["track"] == "applicant-video")
            > (body["last_segments"]["applicant-video"])
        )
        # New inspections go to the live nodes only.
        status, later = await cluster.request(
            "POST", "/api/cases/CLUSTER-1/inspections", "inspector"
        )
        assert status == 201, later
        assert later["node"] != lost

        # A node frozen (SIGSTOP) past its lease loses its inspection; thawed, it cannot write.
        frozen = later["node"]
        async with connect(applicant_endpoint(later["applicant_url"])) as stale:
            await stale.send("consent", accepted=True)
            os.kill(cluster.node_pids[frozen], signal.SIGSTOP)
            try:
                stopped = time.monotonic()
                while await join_once(later["applicant_url"]) is None:
                    assert time.monotonic() - stopped < 30, "no node took over the frozen one's"
                    await asyncio.sleep(0.5)
            finally:
                os.kill(cluster.node_pids[frozen], signal.SIGCONT)
            await stale.send(
                "location", lat=30.2741, lon=120.1551, accuracy=10.0, at=utc_iso(time.time())
            )
            async with asyncio.timeout(10):
                while True:
                    message = await stale.receive()
                    assert message is not None, "the thawed node closed the socket unanswered"
                    if message["type"] == "error":
                        break
            assert message["code"] == "fenced", message
        log = cluster.logs / f"{frozen}.log"
        assert "write refused: this node lost the inspection" in log.read_text(), log
        status, audit = await cluster.request(
            "GET", "/api/cases/CLUSTER-1/audit?limit=500", "auditor"
        )
        assert status == 200, audit
        mine = [
            e for e in audit["entries"] if e["body"].get("inspection_id") == later["inspection_id"]
        ]
        [taken] = [e for e in mine if e["kind"] == "node_lost"]
        assert (taken["body"]["node"], taken["body"]["epoch"]) == (frozen, 2)
        assert not [e for e in mine if e["kind"] == "location"], mine

        cluster.process.send_signal(signal.SIGINT)  # Ctrl-C
        async with asyncio.timeout(90):
            assert await cluster.process.wait() == 0
        assert cluster.process.stdout is not None
        rest = (await cluster.process.stdout.read()).decode()
        assert "stopped in" in rest, rest
        for name, pid in cluster.node_pids.items():
            assert not alive(pid), f"node {name} (pid {pid}) still runs"
