"""A node killed mid-inspection: how long until the applicant is back, on another node.

    .venv/bin/python tests/bench/bench_failover.py [--trials 10]

Starts the local cluster of ``takan cluster`` (server/cli/cluster/local.py: PostgreSQL,
SeaweedFS, nginx, three nodes, leases of 10 s). Each trial creates an inspection through the
one URL, joins it as the applicant (``python -m client``'s signalling, redirect followed), kills
the node that runs it with SIGKILL, then joins again through the one URL every 0.25 s until a
welcome comes (the lease lapses, another node takes the inspection over and chains
``node_lost``), and restarts the killed node. Prints each trial's kill → welcome and p50/p95;
asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import aiohttp

from client.endpoints import applicant_endpoint
from client.exceptions import ClientError
from client.signalling import connect
from server.cli.cluster.local import LocalCluster
from server.cli.cluster.process import free_port
from tests.bench._harness import percentile


async def joined(url: str) -> bool:
    try:
        async with connect(applicant_endpoint(url), timeout_s=3):
            return True
    except ClientError:
        return False


async def trials(cluster: LocalCluster, count: int) -> list[float]:
    password = next(line.split()[-1] for line in cluster.passwords if line.startswith("inspector"))
    async with aiohttp.ClientSession(cluster.url) as http:
        async with http.post(
            "/api/login", json={"username": "inspector", "password": password}
        ) as answer:
            token = (await answer.json())["token"]
        auth = {"Authorization": f"Bearer {token}"}
        async with http.post(
            "/api/cases",
            json={"case_id": "FAILOVER-1", "title": "t", "address": "a"},
            headers=auth,
        ) as answer:
            assert answer.status == 201, await answer.text()
        times = []
        for trial in range(1, count + 1):
            async with http.post("/api/cases/FAILOVER-1/inspections", headers=auth) as answer:
                invite = await answer.json()
            url, node = invite["applicant_url"], invite["node"]
            assert await joined(url), invite
            [victim] = [n for n in cluster.node_processes if n.name == node]
            assert victim.process is not None
            os.kill(victim.process.pid, signal.SIGKILL)
            killed = time.monotonic()
            while not await joined(url):
                await asyncio.sleep(0.25)
            times.append(time.monotonic() - killed)
            print(f"trial {trial:2d}: node {node} killed → applicant back in {times[-1]:5.2f} s")
            victim.process.wait()
            victim.process = None
            await asyncio.to_thread(cluster.restart, node)
        return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--trials", type=int, default=10)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="takan-bench-failover-"))
    root.chmod(0o755)  # PostgreSQL, started as root, runs as its own user and must enter it
    cluster = LocalCluster(root, 3, free_port())
    try:
        cluster.start()
        times = asyncio.run(trials(cluster, args.trials))
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
    print(
        f"kill -9 → applicant back on another node, {len(times)} trials (lease 10 s):"
        f" p50 {statistics.median(times):.2f} s, p95 {percentile(times, 95) or 0.0:.2f} s,"
        f" min {min(times):.2f} s, max {max(times):.2f} s"
    )


if __name__ == "__main__":
    main()
