"""The local cluster's launchers with real processes on loopback (server/cli/cluster/): a
throwaway PostgreSQL that psycopg reaches, and nginx in front of real aiohttp nodes routing
``/n/{node}/…`` to each, WebSockets included, and following a changed node list."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import psycopg
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from server.cli.cluster import ClusterError
from server.cli.cluster.nginx import NginxProxy, Node, Tls, nginx_binary, render_config
from server.cli.cluster.postgres import PostgresCluster

# -- PostgreSQL


@pytest.fixture
def cluster_root() -> Iterator[Path]:
    """A directory in /tmp (pytest's own are 0700: PostgreSQL run as postgres could not enter)."""
    root = Path(tempfile.mkdtemp(prefix="takan-test-cluster-"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _state_and_parent(pid: int) -> tuple[str, int] | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return fields[0], int(fields[1])


def process_family(pid: int) -> set[int]:
    """``pid`` and every process descending from it, now."""
    parents = {
        int(proc.name): found[1]
        for proc in Path("/proc").iterdir()
        if proc.name.isdigit() and (found := _state_and_parent(int(proc.name))) is not None
    }
    family = {pid}
    while grown := {child for child, parent in parents.items() if parent in family} - family:
        family |= grown
    return family


def still_running(pids: set[int]) -> set[int]:
    """Those of ``pids`` alive and not zombies (an exited child waits for its reaper)."""
    return {pid for pid in pids if (found := _state_and_parent(pid)) and found[0] != "Z"}


def postmaster_pid(cluster: PostgresCluster) -> int:
    return int((cluster.data / "postmaster.pid").read_text().split()[0])


def test_postgres_cluster_serves_a_new_database_to_psycopg_and_stops_leaving_no_process(
    cluster_root: Path,
) -> None:
    cluster = PostgresCluster.start(cluster_root)
    try:
        processes = process_family(postmaster_pid(cluster))
        assert len(processes) > 1  # the postmaster and its workers (checkpointer, …)
        url = cluster.create_database("site_visits")
        assert url == f"postgresql://takan@127.0.0.1:{cluster.port}/site_visits"
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT current_database(), current_setting('fsync')").fetchone()
            assert row == ("site_visits", "on")  # durable by default
            conn.execute("CREATE TABLE t (x int)")
        with psycopg.connect(cluster.url()) as conn:  # the default database, takan
            assert conn.execute("SELECT current_database()").fetchone() == ("takan",)

        cluster.drop_database("site_visits")
        with pytest.raises(psycopg.OperationalError, match='"site_visits" does not exist'):
            psycopg.connect(url).close()
    finally:
        cluster.stop()
    assert still_running(processes) == set()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(cluster.url(), connect_timeout=2).close()
    cluster.stop()  # again: nothing to do
    assert {"initdb.log", "server.log"} <= {path.name for path in cluster_root.iterdir()}


def test_cluster_restarted_on_its_directory_keeps_its_databases(cluster_root: Path) -> None:
    with (
        PostgresCluster.start(cluster_root, durable=False) as cluster,
        psycopg.connect(cluster.create_database("kept")) as conn,
    ):
        conn.execute("CREATE TABLE cases (id text)")
        conn.execute("INSERT INTO cases VALUES ('CASE-1')")
    with (
        PostgresCluster.start(cluster_root, durable=False) as again,
        psycopg.connect(again.url("kept")) as conn,
    ):
        assert conn.execute("SELECT id FROM cases").fetchall() == [("CASE-1",)]


def test_a_port_already_taken_is_one_error_naming_it_and_leaves_nothing_running(
    cluster_root: Path,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ClusterError, match=f"did not start on 127.0.0.1:{port}") as failed:
            PostgresCluster.start(cluster_root, durable=False, port=port)
    assert "Address already in use" in str(failed.value)  # the server log's own words
    assert not (cluster_root / "data" / "postmaster.pid").exists()


def test_a_cluster_whose_server_was_killed_stops_without_error(cluster_root: Path) -> None:
    cluster = PostgresCluster.start(cluster_root, durable=False)
    processes = process_family(postmaster_pid(cluster))
    os.kill(postmaster_pid(cluster), signal.SIGKILL)
    deadline = time.monotonic() + 10
    while still_running(processes) and time.monotonic() < deadline:
        time.sleep(0.05)  # its workers notice the postmaster is gone and exit
    cluster.stop()
    assert still_running(processes) == set()
    with (  # and it starts again on its directory
        PostgresCluster.start(cluster_root, durable=False) as again,
        psycopg.connect(again.url()) as conn,
    ):
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_test_cluster_is_not_durable_and_copies_a_template_database(
    postgres_cluster: PostgresCluster,
) -> None:
    with psycopg.connect(postgres_cluster.create_database("schema_template")) as conn:
        assert conn.execute("SELECT current_setting('fsync')").fetchone() == ("off",)
        conn.execute("CREATE TABLE cases (id text PRIMARY KEY)")
    try:
        url = postgres_cluster.create_database("one_test", template="schema_template")
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT count(*) FROM cases").fetchone() == (0,)
    finally:
        postgres_cluster.drop_database("one_test")
        postgres_cluster.drop_database("schema_template")


def test_a_database_still_in_use_is_dropped_all_the_same(postgres_cluster: PostgresCluster) -> None:
    """A test that left a connection open does not keep its database (nor fail the next one)."""
    conn = psycopg.connect(postgres_cluster.create_database("left_open"))
    try:
        postgres_cluster.drop_database("left_open")
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
    finally:
        conn.close()


def test_database_names_outside_the_safe_set_are_refused(
    postgres_cluster: PostgresCluster,
) -> None:
    for name in ('x"; DROP DATABASE takan; --', "Upper", "", "a" * 64, "9lives"):
        with pytest.raises(ValueError, match="database name"):
            postgres_cluster.create_database(name)


# -- nginx in front of real aiohttp nodes


@dataclass
class StubNode:
    """A small aiohttp app that says which node it is, the path it got and the headers that
    matter, counts its requests, and echoes on /ws."""

    name: str
    runner: web.AppRunner
    port: int
    requests: int = 0

    @property
    def node(self) -> Node:
        return Node(self.name, "127.0.0.1", self.port)


async def start_stub(name: str) -> StubNode:
    app = web.Application()
    stub: StubNode

    async def echo(request: web.Request) -> web.StreamResponse:
        stub.requests += 1
        if request.path == "/ws":
            ws = web.WebSocketResponse()
            await ws.prepare(request)
            async for message in ws:
                await ws.send_str(f"{name}:{message.data}")
            return ws
        headers = ("Host", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Prefix")
        return web.json_response(
            {
                "node": name,
                "path_qs": request.path_qs,
                **{header: request.headers.get(header) for header in headers},
            }
        )

    app.router.add_route("*", "/{tail:.*}", echo)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    stub = StubNode(name, runner, port)
    return stub


@pytest.fixture
async def stubs() -> AsyncIterator[dict[str, StubNode]]:
    nodes = {name: await start_stub(name) for name in ("n1", "n2", "n3", "n4")}
    try:
        yield nodes
    finally:
        for node in nodes.values():
            await node.runner.cleanup()


@pytest.fixture
async def proxy(stubs: dict[str, StubNode]) -> AsyncIterator[NginxProxy]:
    """nginx in front of n1, n2 and n3 (n4 runs, unlisted)."""
    root = Path(tempfile.mkdtemp(prefix="takan-test-nginx-"))
    nodes = [stubs[name].node for name in ("n1", "n2", "n3")]
    started = await asyncio.to_thread(NginxProxy.start, root, nodes)
    try:
        yield started
    finally:
        await asyncio.to_thread(started.stop)
        shutil.rmtree(root, ignore_errors=True)


async def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, object]:
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as response:
        if response.content_type == "application/json":
            return response.status, await response.json()
        return response.status, await response.text()


async def test_node_path_reaches_that_node_without_its_prefix_and_with_forwarded_headers(
    proxy: NginxProxy, stubs: dict[str, StubNode]
) -> None:
    status, body = await get(f"{proxy.url}/n/n1/api/x?y=1", headers={"X-Forwarded-For": "6.6.6.6"})
    assert status == 200
    assert body == {
        "node": "n1",
        "path_qs": "/api/x?y=1",
        "Host": f"127.0.0.1:{proxy.port}",
        "X-Forwarded-For": "127.0.0.1",  # the client's own address, not what it claimed
        "X-Forwarded-Proto": "http",
        "X-Forwarded-Prefix": "/n/n1",
    }
    assert (stubs["n2"].requests, stubs["n3"].requests) == (0, 0)


async def test_unknown_node_is_404_and_reaches_no_node(
    proxy: NginxProxy, stubs: dict[str, StubNode]
) -> None:
    status, _ = await get(f"{proxy.url}/n/n9/x")
    assert status == 404
    assert sum(stub.requests for stub in stubs.values()) == 0


async def test_paths_outside_n_go_to_any_node_without_a_prefix(
    proxy: NginxProxy, stubs: dict[str, StubNode]
) -> None:
    seen = set()
    for _ in range(6):
        status, body = await get(f"{proxy.url}/api/cases?q=1")
        assert status == 200
        assert isinstance(body, dict)
        assert body["path_qs"] == "/api/cases?q=1"
        assert body["X-Forwarded-Prefix"] is None  # empty: nginx sends no header
        seen.add(body["node"])
    assert seen == {"n1", "n2", "n3"}


async def test_websocket_through_a_node_path_echoes_from_that_node(proxy: NginxProxy) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(f"{proxy.url}/n/n2/ws") as ws:
        for text in ("hello", "踏勘"):
            await ws.send_str(text)
            assert await ws.receive_str(timeout=5) == f"n2:{text}"


async def test_reload_with_a_changed_node_list_takes_effect(
    proxy: NginxProxy, stubs: dict[str, StubNode]
) -> None:
    await asyncio.to_thread(proxy.reload, [stubs["n1"].node, stubs["n4"].node])
    status, body = await get(f"{proxy.url}/n/n4/x")
    assert status == 200
    assert isinstance(body, dict)
    assert (body["node"], body["path_qs"], body["X-Forwarded-Prefix"]) == ("n4", "/x", "/n/n4")
    assert (await get(f"{proxy.url}/n/n2/x"))[0] == 404
    seen = set()
    for _ in range(4):
        status, body = await get(f"{proxy.url}/")
        assert isinstance(body, dict)
        seen.add(body["node"])
    assert seen == {"n1", "n4"}
    assert proxy.nodes == (stubs["n1"].node, stubs["n4"].node)


async def test_a_reload_nginx_refuses_changes_nothing(
    proxy: NginxProxy, stubs: dict[str, StubNode]
) -> None:
    before = proxy.config_path.read_text()
    unresolvable = Node("n5", "no-such-host.invalid", 8080)  # nginx -t resolves upstreams
    with pytest.raises(RuntimeError, match="nginx -t refused"):
        await asyncio.to_thread(proxy.reload, [stubs["n1"].node, unresolvable])
    assert proxy.config_path.read_text() == before
    assert proxy.nodes == tuple(stubs[name].node for name in ("n1", "n2", "n3"))
    assert (await get(f"{proxy.url}/n/n3/x"))[0] == 200


def self_signed(directory: Path, name: str) -> Tls:
    """A certificate for ``name`` and 127.0.0.1, signed by its own key, in ``directory``."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(name), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    (directory / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (directory / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Tls(directory / "cert.pem", directory / "key.pem", name)


async def test_with_tls_at_nginx_the_node_hears_https_and_a_websocket_passes(
    stubs: dict[str, StubNode],
) -> None:
    """The deployment's shape (docs/deploy.md): TLS ends at nginx, the node is told https."""
    root = Path(tempfile.mkdtemp(prefix="takan-test-nginx-"))
    tls = self_signed(root, "takan.example.org")
    proxy = await asyncio.to_thread(NginxProxy.start, root, [stubs["n1"].node], tls=tls)
    try:
        assert proxy.url.startswith("https://")
        context = ssl.create_default_context(cafile=tls.certificate)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{proxy.url}/n/n1/api/x", ssl=context) as response:
                body = await response.json()
            assert (body["path_qs"], body["X-Forwarded-Proto"]) == ("/api/x", "https")
            wss = proxy.url.replace("https://", "wss://") + "/n/n1/ws"
            async with http.ws_connect(wss, ssl=context) as ws:
                await ws.send_str("over tls")
                assert await ws.receive_str(timeout=5) == "n1:over tls"
    finally:
        await asyncio.to_thread(proxy.stop)
        shutil.rmtree(root, ignore_errors=True)


def test_the_deployment_configuration_with_its_port_80_redirect_passes_nginx_t() -> None:
    """docs/deploy.md's configuration (tests/unit/test_deploy_doc.py), with a real certificate."""
    root = Path(tempfile.mkdtemp(prefix="takan-test-nginx-"))
    try:
        nodes = [Node(f"n{number}", f"10.0.0.1{number}", 8080) for number in (1, 2, 3)]
        config = root / "nginx.conf"
        config.write_text(render_config(nodes, "443", root, self_signed(root, "takan.example.org")))
        done = subprocess.run(
            [str(nginx_binary()), "-t", "-e", "stderr", "-p", str(root), "-c", str(config)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "syntax is ok" in done.stderr
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_nginx_stop_leaves_no_process_and_its_port_refuses() -> None:
    root = Path(tempfile.mkdtemp(prefix="takan-test-nginx-"))
    try:
        proxy = NginxProxy.start(root, [Node("n1", "127.0.0.1", 9)])
        assert proxy.process is not None
        processes = process_family(proxy.process.pid)
        assert len(processes) == 2  # the master and its one worker
        proxy.stop()
        assert still_running(processes) == set()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", proxy.port), timeout=2).close()
        proxy.stop()  # again: nothing to do
    finally:
        shutil.rmtree(root, ignore_errors=True)
