"""A node killed (SIGKILL) while the archive was out of its reach: what it recorded waits in its
spool. Another node takes the inspection over and chains the loss; ``takan verify`` names every
recorded object the archive still lacks; the killed node, started again, uploads its spool and
the case verifies with the loss explained.

Two ``takan serve --node`` processes as on machines of their own: their own data directories,
one PostgreSQL, one SeaweedFS; the first node reaches SeaweedFS through a gate the test closes.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.settings import SHARED_SECRET_FILES
from tests.conftest import add_users, new_bucket, start_s3_server
from tests.fault.server_process import ServerProcess
from tests.integration.recorded_case import REPO, run
from tests.s3server import S3Server, TcpGate, free_port

pytestmark = pytest.mark.single_engine  # PostgreSQL only: SQLite's nodes share one disk

CASE = "NODE-RESTART"


@pytest.fixture
def seaweed(tmp_path: Path) -> Iterator[S3Server]:
    server = start_s3_server("seaweedfs", tmp_path / "seaweed")
    try:
        yield server
    finally:
        server.discard()


def node(root: Path, name: str, database: str, storage: str) -> ServerProcess:
    port = free_port()
    args = (
        "--database", database, "--node", name, "--advertise-url", f"http://127.0.0.1:{port}",
        "--storage", storage, "--segment-seconds", "1",
    )  # fmt: skip
    return ServerProcess(root / name, port, root / f"{name}.log", args)


def spooled_segments(data_dir: Path) -> set[str]:
    objects = data_dir / "spool" / "objects"
    return {
        str(path.relative_to(objects))
        for path in objects.glob(f"cases/{CASE}/inspections/*/segments/**/*")
        if path.is_file()
    }


def archived_segments(seaweed: S3Server, bucket: str) -> list[str]:
    listed = seaweed.client().list_objects(bucket, f"cases/{CASE}/inspections/", recursive=True)
    return [o.object_name for o in listed if "/segments/" in (o.object_name or "")]


async def verify(storage: str) -> tuple[int, str]:
    code, out, err = await run(
        sys.executable, "-m", "server.cli", "verify", CASE, "--storage", storage, cwd=REPO
    )
    return code, out + err


async def test_a_killed_nodes_spool_is_named_missing_then_uploaded_when_it_restarts(
    tmp_path: Path, own_postgres_database: str, seaweed: S3Server
) -> None:
    bucket = new_bucket()
    gate = TcpGate(seaweed.port)
    gate.open()
    first = node(tmp_path, "n1", own_postgres_database, seaweed.url(bucket, port=gate.port))
    second = node(tmp_path, "n2", own_postgres_database, seaweed.url(bucket))
    passwords = add_users(tmp_path, own_postgres_database)
    try:
        first.data_dir.mkdir()
        await first.start()
        second.data_dir.mkdir(mode=0o700)
        for secret in SHARED_SECRET_FILES:
            shutil.copy2(first.data_dir / secret, second.data_dir / secret)
        status, login = await first.call(
            "POST", "/api/login",
            json={"username": "inspector1", "password": passwords["inspector1"]},
        )  # fmt: skip
        assert status == 200, login
        token = login["token"]
        status, case = await first.call(
            "POST", "/api/cases", token, json={"case_id": CASE, "title": "厂房", "address": "杭州"}
        )
        assert status == 201, case
        status, invite = await first.call("POST", f"/api/cases/{CASE}/inspections", token)
        assert status == 201, invite
        assert invite["node"] == "n1"  # the only live node
        await second.start()

        # The applicant's link names the second node: it is sent on to the first while that
        # one runs the inspection, and comes back when the first is gone.
        link = invite["applicant_url"].replace(first.base_url, second.base_url)
        publisher = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "client", "publish", link, "--source", "testsrc",
            "--seconds", "18", "--json",
            cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        # The archive out of the first node's reach: what it records stays in its spool.
        started = time.monotonic()
        while not await asyncio.to_thread(archived_segments, seaweed, bucket):
            assert time.monotonic() - started < 30, "the first node never recorded"
            await asyncio.sleep(0.2)
        gate.close()
        while len(held := spooled_segments(first.data_dir)) < 4:
            assert time.monotonic() - started < 40, f"only {held} spooled"
            await asyncio.sleep(0.2)
        await first.kill9()
        held = spooled_segments(first.data_dir)

        async with asyncio.timeout(90):
            out, err = await publisher.communicate()
        assert publisher.returncode == 0, err.decode()
        assert b'"reconnects": 0' not in out, out
        status, ended = await second.call(
            "POST", f"/api/inspections/{invite['inspection_id']}/end", token
        )
        assert status == 200, ended

        # While the killed node's spool holds them, verify fails naming each one.
        code, report = await verify(seaweed.url(bucket))
        assert code == 1, report
        assert report.startswith("FAILED: cases/"), report
        listed = {line.split()[0] for line in report.splitlines() if line.startswith("    cases/")}
        assert listed, report
        assert listed <= held, (listed, held)
        assert f"{len(listed)} recorded objects are not in the archive (yet):" in report

        # Started again, with the archive in reach, the node uploads them all.
        gate.open()
        await first.start()
        started = time.monotonic()
        while code != 0:
            assert time.monotonic() - started < 60, report
            await asyncio.sleep(1)
            code, report = await verify(seaweed.url(bucket))
        assert "node losses  1:" in report, report
        assert "n1" in report.split("node losses", 1)[1], report
        assert not spooled_segments(first.data_dir)
    finally:
        await first.stop()
        await second.stop()
        gate.close()
