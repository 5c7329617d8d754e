"""Shared fixtures: a real Takan server on loopback with its own data dir and users."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from aiohttp import web

from recorder.minio_storage import MinioStorage
from server.clock import Clock, utc_iso
from server.http.app import create_app
from server.security.passwords import hash_password
from server.services import SERVICES, Services
from server.settings import Settings
from server.store.backend import Tx
from server.store.store import SQLITE_FILE, open_store
from server.store.users import add_user
from tests.s3server import LocalStackServer, S3Server, free_port, localstack_missing
from tests.seaweedfs_server import SeaweedServer, weed_missing
from tests.tsa_server import LocalTsa, TsaCerts, make_tsa_certs

if TYPE_CHECKING:
    from tests.integration.real_archive import RealArchive

USERS = {
    "inspector1": "inspector",
    "inspector2": "inspector",
    "auditor1": "auditor",
    "admin1": "admin",
}
_case_numbers = itertools.count(1)


class ApiClient:
    """Calls a Takan server's API as its users: what a test needs of any server, whether it runs
    in the test's event loop (``LiveServer``) or as a process of its own."""

    base_url: str
    passwords: dict[str, str]
    _tokens: dict[str, str]

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://") + "/ws"

    async def token(self, username: str) -> str:
        if username not in self._tokens:
            async with (
                aiohttp.ClientSession() as http,
                http.post(
                    f"{self.base_url}/api/login",
                    json={"username": username, "password": self.passwords[username]},
                ) as response,
            ):
                assert response.status == 200, await response.text()
                self._tokens[username] = (await response.json())["token"]
        return self._tokens[username]

    async def request(
        self, method: str, path: str, username: str | None = None, **kwargs: Any
    ) -> tuple[int, Any]:
        headers = dict(kwargs.pop("headers", {}))
        if username is not None:
            headers["Authorization"] = f"Bearer {await self.token(username)}"
        async with (
            aiohttp.ClientSession() as http,
            http.request(method, self.base_url + path, headers=headers, **kwargs) as response,
        ):
            if response.content_type == "application/json":
                return response.status, await response.json()
            return response.status, await response.text()

    async def new_case(self, username: str = "inspector1", **fields: Any) -> dict[str, Any]:
        body = {
            "case_id": f"CASE-{next(_case_numbers):04d}",
            "title": "新建厂房踏勘",
            "address": "杭州市西湖区文三路 100 号",
            "applicant_name": "张三",
            "applicant_phone": "13800000000",
            **fields,
        }
        status, case = await self.request("POST", "/api/cases", username, json=body)
        assert status == 201, case
        return dict(case)

    async def new_inspection(self, username: str = "inspector1") -> dict[str, Any]:
        case = await self.new_case(username)
        status, created = await self.request(
            "POST", f"/api/cases/{case['case_id']}/inspections", username
        )
        assert status == 201, created
        return {**created, "case_id": case["case_id"]}


@dataclass
class LiveServer(ApiClient):
    base_url: str
    data_dir: Path
    app: web.Application
    passwords: dict[str, str] = field(default_factory=dict)
    _tokens: dict[str, str] = field(default_factory=dict)

    @property
    def services(self) -> Services:
        return self.app[SERVICES]

    async def sql(self, statement: str, params: Sequence[Any] = ()) -> int:
        """Run ``statement`` on the server's database, as an insider with its password would:
        the rows it changed."""
        return await self.services.store.db.write(lambda tx: tx.run(statement, params))

    async def rows(self, query: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return await self.services.store.db.read(lambda tx: tx.all(query, params))


def user_password(name: str) -> str:
    return f"pw-{name}-secret"


@functools.cache
def _password_hash(name: str) -> str:
    return hash_password(user_password(name))  # scrypt: tens of ms, so once per session


def add_users(data_dir: Path, database: str | None = None) -> dict[str, str]:
    """The test users in the database a server on ``data_dir`` uses (``database``; None: the
    test's engine, see ``database_engine``); their passwords."""
    store = open_store(current_database() if database is None else database, data_dir)

    def add(tx: Tx) -> None:
        for name, role in USERS.items():
            # a restart on the same data dir keeps them
            if tx.one("SELECT id FROM users WHERE username = ?", (name,)) is None:
                add_user(tx, name, role, _password_hash(name), utc_iso(0))

    try:
        store.db.write_now(add)
    finally:
        store.close()
    return {name: user_password(name) for name in USERS}


# The database engines the suite runs against. Every test under integration/, e2e/ and fault/
# runs once per engine: its servers (``running_server``, ``add_users``) use the engine's
# database, a new one per test for PostgreSQL (copied from a migrated template). Run once
# (``single_engine``): modules no database touches (the tamper suites, storage), tests on the
# real archive (it keeps its SQLite database), and those about the media path, whose few rows
# (joins, consent) test_signalling writes on both.
DATABASE_ENGINES = ("sqlite", "postgresql")
_ENGINE_DIRS = ("integration", "e2e", "fault")
_test_database: dict[str, Any] = {"url": "", "cluster": None, "name": ""}
TEMPLATE_DATABASE = "takan_template"


def current_database() -> str:
    """The ``--database`` of the running test's servers ("": SQLite in the data dir)."""
    return str(_test_database["url"])


def lose_database(data_dir: Path) -> None:
    """The database of a server on ``data_dir`` deleted (an empty one in its place for
    PostgreSQL, as an operator would make before ``takan reindex``)."""
    if not current_database():
        for suffix in ("", "-wal", "-shm"):
            (data_dir / f"{SQLITE_FILE}{suffix}").unlink(missing_ok=True)
        return
    cluster: PostgresCluster = _test_database["cluster"]
    cluster.drop_database(_test_database["name"])
    cluster.create_database(_test_database["name"])


def database_options() -> list[str]:
    """``--database URL`` for a ``takan`` command on the test's database (none for SQLite)."""
    url = current_database()
    return ["--database", url] if url else []


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if (
        "database_engine" in metafunc.fixturenames
        and any(part in _ENGINE_DIRS for part in metafunc.definition.path.parts)
        and metafunc.definition.get_closest_marker("single_engine") is None
        # The real archive (and its copies) keeps the SQLite database it was recorded with.
        and not {"real_archive", "tampered"} & set(metafunc.fixturenames)
    ):
        metafunc.parametrize("database_engine", DATABASE_ENGINES, indirect=True)


@pytest.fixture(scope="session")
def postgres_template(postgres_cluster: PostgresCluster) -> str:
    """A database migrated to the current schema, copied for each test."""
    url = postgres_cluster.create_database(TEMPLATE_DATABASE)
    open_store(url, Path()).close()
    return TEMPLATE_DATABASE


@pytest.fixture
def own_postgres_database(postgres_cluster: PostgresCluster) -> Iterator[str]:
    """A migrated PostgreSQL database of the test's own, for the tests about writers on
    machines of their own (PostgreSQL only: SQLite's writers share one disk)."""
    name = f"own_{uuid.uuid4().hex[:12]}"
    url = postgres_cluster.create_database(name)
    open_store(url, Path()).close()  # migrated
    try:
        yield url
    finally:
        postgres_cluster.drop_database(name)


@pytest.fixture(autouse=True)
def database_engine(request: pytest.FixtureRequest) -> Iterator[str]:
    engine: str = getattr(request, "param", "sqlite")
    if engine == "sqlite":
        yield engine
        return
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    template = request.getfixturevalue("postgres_template")
    name = f"t_{uuid.uuid4().hex[:16]}"
    url = cluster.create_database(name, template=template)
    _test_database.update(url=url, cluster=cluster, name=name)
    try:
        yield engine
    finally:
        _test_database.update(url="", cluster=None, name="")
        cluster.drop_database(name)


@pytest.fixture
async def live_server(tmp_path: Path) -> AsyncIterator[LiveServer]:
    async with running_server(tmp_path / "data") as server:
        yield server


# Real S3 servers (LocalStack, tests/s3server.py; SeaweedFS, tests/seaweedfs_server.py) and a live
# server archiving to one.

S3_SERVERS: dict[str, tuple[type[S3Server], Callable[[], str | None]]] = {
    "localstack": (LocalStackServer, localstack_missing),
    "seaweedfs": (SeaweedServer, weed_missing),
}


def start_s3_server(name: str, root: Path) -> S3Server:
    """A started S3 server ``name`` on free loopback ports; missing or broken fails, never skips."""
    server_class, missing_fn = S3_SERVERS[name]
    missing = missing_fn()
    if missing:
        pytest.fail(missing, pytrace=False)
    server = server_class(free_port(), root)
    try:
        server.start()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    return server


@pytest.fixture(scope="session", params=list(S3_SERVERS))
def s3_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[S3Server]:
    """One S3 server for the session, on free loopback ports with its own data dir: every test
    that takes it runs once against LocalStack and once against SeaweedFS (pytest runs each
    server's tests together and stops one before it starts the next).

    Tests use buckets of their own (``new_bucket()``).
    """
    name: str = request.param
    server = start_s3_server(name, tmp_path_factory.mktemp(name))
    try:
        yield server
    finally:
        server.discard()


def new_bucket() -> str:
    return f"takan-{uuid.uuid4().hex[:16]}"


@contextlib.asynccontextmanager
async def running_server(
    data_dir: Path,
    storage: str = "",
    host_name: str = "127.0.0.1",
    clock: Clock | None = None,
    **overrides: Any,
) -> AsyncIterator[LiveServer]:
    """A live server on loopback with users, archiving to ``storage`` (default: the data dir);
    ``host_name`` is the public URL's host (``localhost`` where passkeys must work: browsers
    refuse them on an IP address); ``clock`` its clock (default: the system's); ``overrides``
    are further ``Settings`` fields."""
    await asyncio.to_thread(data_dir.mkdir, parents=True, exist_ok=True)
    passwords = await asyncio.to_thread(add_users, data_dir, overrides.get("database"))
    # The public URL must be known before the app is built: bind the socket first.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    if overrides.get("node") and "advertise_url" not in overrides:
        overrides["advertise_url"] = f"http://127.0.0.1:{port}"  # reached directly
    settings = Settings(
        data_dir=data_dir,
        port=port,
        public_url=f"http://{host_name}:{port}",
        storage=storage,
        **{"database": current_database(), **overrides},
    )
    app = create_app(settings, clock)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    try:
        yield LiveServer(f"http://{host_name}:{port}", data_dir, app, passwords)
    finally:
        await runner.cleanup()


@dataclass
class S3LiveServer:
    server: LiveServer
    storage: MinioStorage
    bucket: str


@pytest.fixture
async def live_server_s3(tmp_path: Path, s3_server: S3Server) -> AsyncIterator[S3LiveServer]:
    """Like ``live_server``, archiving to a fresh bucket (object lock) of the S3 server."""
    bucket = new_bucket()
    async with running_server(tmp_path / "data", s3_server.url(bucket)) as server:
        yield S3LiveServer(server, s3_server.storage(bucket), bucket)


# A local RFC 3161 timestamp authority (tests/tsa_server.py): certificates once per session.


@pytest.fixture(scope="session")
def tsa_certs(tmp_path_factory: pytest.TempPathFactory) -> TsaCerts:
    return make_tsa_certs(tmp_path_factory.mktemp("tsa-certs"))


@pytest.fixture(scope="session")
def real_archive(tmp_path_factory: pytest.TempPathFactory, tsa_certs: TsaCerts) -> RealArchive:
    """Two cases recorded through the real server, built once per session and never written
    (tests/integration/real_archive.py): what the tamper suites break copies of."""
    from tests.integration.real_archive import build_real_archive  # it imports this module

    data_dir = tmp_path_factory.mktemp("pristine") / "data"
    return asyncio.run(build_real_archive(data_dir, tsa_certs))


@pytest.fixture(scope="session")
def other_tsa_certs(tmp_path_factory: pytest.TempPathFactory) -> TsaCerts:
    """Another TSA under a root of its own, which no test trusts."""
    return make_tsa_certs(tmp_path_factory.mktemp("other-tsa-certs"), "Other TSA", "Other Root CA")


@pytest.fixture
async def local_tsa(tsa_certs: TsaCerts, tmp_path: Path) -> AsyncIterator[LocalTsa]:
    tsa = LocalTsa(tsa_certs, tmp_path / "tsa")
    await tsa.start()
    try:
        yield tsa
    finally:
        await tsa.stop()


# A throwaway PostgreSQL cluster (server/cli/cluster/postgres.py) for the session: not durable
# (fsync off), on a free loopback port. Tests make a database of their own in it
# (``postgres_cluster.create_database(name)``, its URL; ``drop_database(name)`` after).

if TYPE_CHECKING:
    from server.cli.cluster.postgres import PostgresCluster


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """Started once, stopped (and its directory removed) at the session's end. Its directory is
    made in /tmp, not under pytest's 0700 temporary one: as root, PostgreSQL runs as
    ``postgres``, who must traverse every parent. Not installed or not starting fails, naming
    why (the directory is then kept, with its logs)."""
    import shutil
    import tempfile

    from server.cli.cluster import ClusterError
    from server.cli.cluster.postgres import PostgresCluster

    root = Path(tempfile.mkdtemp(prefix="takan-postgres-"))
    try:
        cluster = PostgresCluster.start(root, durable=False)
    except ClusterError as exc:
        pytest.fail(f"{exc}\n(cluster directory: {root})", pytrace=False)
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
