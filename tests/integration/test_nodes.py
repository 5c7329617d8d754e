"""Several nodes (``takan serve --node``) sharing one database and one archive: new inspections
spread over the live nodes, a participant who reaches the wrong node is sent to the one that runs
the inspection, a node whose lease lapsed loses its inspections to another (chained as
``node_lost``), and a node that lost one writes nothing more for it."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from client.endpoints import applicant_endpoint
from client.signalling import connect
from recorder.chain import ChainEntry
from recorder.errors import ChainMoved
from server.errors import Conflict, Fenced
from server.settings import SHARED_SECRET_FILES
from tests.conftest import LiveServer, current_database, running_server
from tests.integration.evidence_helpers import chain
from tests.integration.peers import invite_token, join
from tests.integration.recorded_case import takan

LEASE_S = 1.5  # the tests' nodes: a hold lapses 1.5 s after the holder's last heartbeat


@contextlib.asynccontextmanager
async def nodes(data: Path, *names: str) -> AsyncIterator[dict[str, LiveServer]]:
    """Nodes as on machines of their own: on PostgreSQL each has its own data directory and
    they share the database, the archive (``--storage``) and the secrets every node must have
    alike. SQLite's database is a file in the data directory, so there they share that."""
    async with contextlib.AsyncExitStack() as stack:
        started: dict[str, LiveServer] = {}
        for name in names:
            node_dir, storage = data, ""
            if current_database():
                node_dir, storage = data / name, (data / "archive").as_uri()
                if started:
                    node_dir.mkdir(parents=True, mode=0o700)
                    first = next(iter(started.values())).data_dir
                    for secret in SHARED_SECRET_FILES:
                        shutil.copy2(first / secret, node_dir / secret)
            started[name] = await stack.enter_async_context(
                running_server(node_dir, storage, node=name, node_lease_s=LEASE_S)
            )
        yield started


async def new_inspection_on(server: LiveServer) -> dict[str, Any]:
    invite = await server.new_inspection()
    assert "node" in invite, invite
    return invite


def holder_and_other(
    node: dict[str, LiveServer], invite: dict[str, Any]
) -> tuple[LiveServer, LiveServer]:
    """Of two nodes, the one the inspection was placed on, and the other."""
    [other] = [server for name, server in node.items() if name != invite["node"]]
    return node[invite["node"]], other


async def placement(server: LiveServer, inspection_id: str) -> tuple[str, int]:
    placed = await server.services.store.nodes.placement(inspection_id)
    assert placed is not None
    return placed.node, placed.epoch


def of_kind(entries: list[ChainEntry], kind: str) -> list[ChainEntry]:
    return [entry for entry in entries if entry.kind == kind]


async def test_new_inspections_go_to_the_least_loaded_live_node(tmp_path: Path) -> None:
    async with nodes(tmp_path / "data", "n1", "n2") as node:
        placed = [(await new_inspection_on(node["n1"]))["node"] for _ in range(4)]
    assert sorted(placed) == ["n1", "n1", "n2", "n2"], placed


async def test_a_participant_on_the_wrong_node_is_redirected_to_the_one_running_it(
    tmp_path: Path,
) -> None:
    async with nodes(tmp_path / "data", "n1", "n2") as node:
        invite = await new_inspection_on(node["n1"])
        holder, other = holder_and_other(node, invite)
        peer = await join(other.ws_url, token=invite_token(invite))
        try:
            assert peer.welcome == {
                "v": 1,
                "type": "redirect",
                "node": invite["node"],
                "url": holder.ws_url,
                "reason": f"the inspection runs on node {invite['node']}",
            }
            closed = await peer.ws.receive()
            assert closed.type.name in ("CLOSE", "CLOSED", "CLOSING"), closed
        finally:
            await peer.close()
        # The Python client follows the redirect and joins where the inspection runs.
        link = invite["applicant_url"].replace(holder.base_url, other.base_url)
        async with connect(applicant_endpoint(link)) as session:
            assert session.welcome.role == "applicant"
            assert session.welcome.inspection_id == invite["inspection_id"]
        assert holder.services.live.get(invite["inspection_id"]) is not None
        assert other.services.live.get(invite["inspection_id"]) is None


async def test_a_lapsed_lease_is_taken_over_at_the_next_epoch_and_the_loss_is_chained(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    async with running_server(data, node="n1", node_lease_s=LEASE_S) as n1:
        async with running_server(data, node="n2", node_lease_s=LEASE_S) as n2:
            invites = [await new_inspection_on(n1) for _ in range(2)]
            [invite] = [i for i in invites if i["node"] == "n2"]
            # n2 dies: its heartbeats stop, and once its lease lapses n1 takes over.
            assert n2.services.nodes is not None
            await n2.services.nodes.stop()
            await asyncio.sleep(LEASE_S + 0.5)
        peer = await join(n1.ws_url, token=invite_token(invite))
        try:
            assert peer.welcome["type"] == "welcome", peer.welcome
        finally:
            await peer.close()
        assert await placement(n1, invite["inspection_id"]) == ("n1", 2)
        [lost] = of_kind(await chain(n1, invite["case_id"]), "node_lost")
        assert lost.body["inspection_id"] == invite["inspection_id"]
        assert (lost.body["node"], lost.body["lost_epoch"], lost.body["epoch"]) == ("n2", 1, 2)
        assert lost.body["taken_by"] == "n1"
        assert lost.body["how"] == "lapsed"
        assert lost.body["last_segments"] == {}  # nobody had published yet
        status, integrity = await n1.request(
            "GET", f"/api/cases/{invite['case_id']}/integrity", "auditor1"
        )
        assert status == 200, integrity
        assert integrity["state"] == "verified", integrity
    code, out, err = await takan("verify", invite["case_id"], "--data", str(data))
    assert code == 0, out + err
    assert f"OK: case {invite['case_id']} is intact" in out, out
    assert "node losses  1:" in out, out
    assert (
        f"chain entry {lost.seq}: node n2 lost inspection {invite['inspection_id'][:8]}"
        " (its lease lapsed; epoch 1 → 2, taken over by n1); the last segments it chained: none"
    ) in out, out


async def test_a_node_that_lost_an_inspection_writes_nothing_more_for_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with nodes(tmp_path / "data", "n1", "n2") as node:
        invite = await new_inspection_on(node["n1"])
        holder, taker = holder_and_other(node, invite)
        peer = await join(holder.ws_url, token=invite_token(invite))
        try:
            assert peer.welcome["type"] == "welcome", peer.welcome
            # The holder stalls: its heartbeats stop, its lease lapses, the other takes over.
            assert holder.services.nodes is not None
            await holder.services.nodes.stop()
            await asyncio.sleep(LEASE_S + 0.5)
            second = await join(taker.ws_url, token=invite_token(invite))
            try:
                assert second.welcome["type"] == "welcome", second.welcome
                assert taker.services.nodes is not None
                taken = await placement(taker, invite["inspection_id"])
                assert taken == (taker.services.nodes.name, 2)
                # The stalled node wakes up and writes for the inspection it still runs.
                if current_database():
                    # Sequenced through the database, the commit itself checks the placement:
                    # refused even by a node whose own check (the archive's fence) is gone.
                    holder.services.archive.fence = None
                with pytest.raises(Fenced, match="no longer writes for it"):
                    await holder.services.archive.append(
                        invite["case_id"],
                        "location_denied",
                        {"inspection_id": invite["inspection_id"], "reason": "late"},
                    )
            finally:
                await second.close()
            assert (
                "chain write refused" if current_database() else "write refused: this node lost"
            ) in caplog.text
            kinds = [entry.kind for entry in await chain(taker, invite["case_id"])]
            assert "node_lost" in kinds
            assert "location_denied" not in kinds
        finally:
            await peer.close()


async def test_ending_an_inspection_on_another_node_ends_it_where_it_runs(tmp_path: Path) -> None:
    async with nodes(tmp_path / "data", "n1", "n2") as node:
        invite = await new_inspection_on(node["n1"])
        holder, other = holder_and_other(node, invite)
        applicant = await join(holder.ws_url, token=invite_token(invite))
        try:
            assert applicant.welcome["type"] == "welcome", applicant.welcome
            status, ended = await other.request(
                "POST", f"/api/inspections/{invite['inspection_id']}/end", "inspector1"
            )
            assert status == 200, ended
            assert ended["status"] == "ended"
            said = await applicant.receive("ended")
            assert said["reason"] == "ended by inspector1"
        finally:
            await applicant.close()
        assert holder.services.live.get(invite["inspection_id"]) is None
        kinds = [entry.kind for entry in await chain(holder, invite["case_id"])]
        assert kinds.count("ended") == 1, kinds


async def test_two_conclusions_at_once_on_two_nodes_make_one_first_and_refuse_the_other(
    tmp_path: Path,
) -> None:
    async with nodes(tmp_path / "data", "n1", "n2") as node:
        invite = await new_inspection_on(node["n1"])
        path = f"/api/inspections/{invite['inspection_id']}/conclusion"
        answers = await asyncio.gather(
            *(
                node[name].request(
                    "POST", path, "inspector1", json={"outcome": "fail", "reason": f"不符 {name}"}
                )
                for name in ("n1", "n2")
            )
        )
        statuses = sorted(status for status, _ in answers)
        assert statuses == [201, 409], answers
        [(_, refused)] = [a for a in answers if a[0] == 409]
        assert refused["error"] == "conflict", refused
        # Which words depends on when the second read the first: the index (already concluded)
        # or, a moment earlier, the chain (chained meanwhile). Never two first conclusions.
        assert (
            "another conclusion of this inspection was chained meanwhile" in refused["reason"]
            or "the inspection is already concluded" in refused["reason"]
        ), refused
        conclusions = [
            e for e in await chain(node["n1"], invite["case_id"]) if e.kind == "conclusion"
        ]
        assert len(conclusions) == 1, conclusions


async def test_an_append_that_must_follow_an_entry_is_refused_once_another_node_chained_one(
    tmp_path: Path,
) -> None:
    async with nodes(tmp_path / "data", "n1", "n2") as node:
        invite = await new_inspection_on(node["n1"])
        case_id, inspection_id = invite["case_id"], invite["inspection_id"]
        body = {"inspection_id": inspection_id, "outcome": "fail"}
        first = await node["n1"].services.archive.append(case_id, "conclusion", body, follows=None)
        # n2 drafted against "no conclusion yet" too: the chain says otherwise by now.
        with pytest.raises(ChainMoved) as moved:
            await node["n2"].services.archive.append(case_id, "conclusion", body, follows=None)
        assert moved.value.last == first.seq
        second = await node["n2"].services.archive.append(
            case_id, "conclusion", body, follows=first.seq
        )
        assert second.seq > first.seq


async def test_the_dashboard_on_any_node_lists_an_inspection_live_on_another(
    tmp_path: Path,
) -> None:
    async with nodes(tmp_path / "data", "n1", "n2") as node:
        invite = await new_inspection_on(node["n1"])
        holder, other = holder_and_other(node, invite)
        status, day = await other.request("GET", "/api/dashboard", "inspector1")
        assert status == 200, day
        assert day["live"] == []
        applicant = await join(holder.ws_url, token=invite_token(invite))
        try:
            assert applicant.welcome["type"] == "welcome", applicant.welcome
            for server in (holder, other):
                status, day = await server.request("GET", "/api/dashboard", "inspector1")
                assert status == 200, day
                assert [(i["inspection_id"], i["participants"]) for i in day["live"]] == [
                    (invite["inspection_id"], 1)
                ]
        finally:
            await applicant.close()
        async with asyncio.timeout(10):
            while (await other.request("GET", "/api/dashboard", "inspector1"))[1]["live"]:
                await asyncio.sleep(0.1)  # the applicant's leaving reaches the other node too


async def test_a_node_shut_down_hands_its_inspections_over_at_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with running_server(data, node="n1", node_lease_s=60) as n1:
        async with running_server(data, node="n2", node_lease_s=60) as n2:
            invites = [await new_inspection_on(n1) for _ in range(2)]
            [invite] = [i for i in invites if i["node"] == "n2"]
            applicant = await join(n2.ws_url, token=invite_token(invite))
            assert applicant.welcome["type"] == "welcome", applicant.welcome
        # n2 is shut down (SIGTERM): it hangs up and lets go, so n1 takes over at once,
        # long before n2's 60 s lease would have lapsed.
        try:
            async with asyncio.timeout(10):
                while (await applicant.ws.receive()).type.name == "TEXT":
                    pass  # what it was told before the hang-up
        finally:
            await applicant.close()
        peer = await join(n1.ws_url, token=invite_token(invite))
        try:
            assert peer.welcome["type"] == "welcome", peer.welcome
        finally:
            await peer.close()
        [lost] = of_kind(await chain(n1, invite["case_id"]), "node_lost")
        assert (lost.body["node"], lost.body["epoch"], lost.body["how"]) == ("n2", 2, "released")
        assert lost.body["lease_until"] is None


async def test_a_passkey_challenge_asked_on_one_node_is_answered_on_another_once(
    tmp_path: Path,
) -> None:
    async with nodes(tmp_path / "data", "n1", "n2") as node:
        asked = node["n1"].services.challenges
        answered = node["n2"].services.challenges
        token = await asked.issue("inspector1", "sign", b"c" * 32, b'{"conclusion":{}}')
        pending = await answered.take(token, "inspector1", "sign")
        assert (pending.challenge, pending.message) == (b"c" * 32, b'{"conclusion":{}}')
        with pytest.raises(Conflict, match="unknown, used or expired"):
            await asked.take(token, "inspector1", "sign")  # used once, wherever
        other = await asked.issue("inspector1", "sign", b"d" * 32, b"")
        with pytest.raises(Conflict, match="unknown, used or expired"):
            await answered.take(other, "inspector2", "sign")  # not the user's own
