"""A throwaway PostgreSQL cluster on loopback: ``initdb`` into a directory of its own, ``pg_ctl
start -w``, databases made and dropped over psycopg, ``pg_ctl stop -m fast -w``.

The newest ``/usr/lib/postgresql/*/bin`` (Debian's layout; ``make system-deps`` installs it) is
used. As root the tools run as ``postgres`` through ``runuser`` (initdb and pg_ctl refuse root),
the directory is handed to that user and each of its parents must let it in (not under pytest's
0700 temporary directories: make one under /tmp). The server listens on 127.0.0.1 only, with its
Unix socket in the cluster's own directory (never Debian's 15/main or its /var/run/postgresql),
and trusts every local connection as the superuser ``takan``: for tests and ``make cluster``,
never for a deployment (docs/deploy.md).

Layout of ``root``: ``data/`` (the cluster), ``sock/`` (its socket), ``initdb.log``,
``pg_ctl.log`` and ``server.log`` (kept for diagnosis; ``stop()`` removes nothing).
``durable=False`` (tests) turns fsync, synchronous commits and full-page writes off: a crash of
the machine may lose or corrupt it, which a throwaway cluster may.
"""

from __future__ import annotations

import os
import pwd
import re
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from server.cli.cluster.process import (
    ClusterError,
    free_port,
    log_tail,
    run_tool,
    untraversable_parent,
)

if TYPE_CHECKING:
    from psycopg import sql  # psycopg loads when a database is made, not on import

POSTGRES_BINARIES = Path("/usr/lib/postgresql")
SUPERUSER = "takan"
SERVICE_USER = "postgres"  # Debian's package makes it
DEFAULT_DATABASE = "takan"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 60.0
NOT_DURABLE = ("-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off")
DATABASE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_INSTALL = "install Debian's postgresql (`make system-deps` does it)"


class PostgresUnavailable(ClusterError):
    """PostgreSQL cannot run here: the message names what is missing."""


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", path.parent.name)) or (-1,)


def postgres_bin(base: Path = POSTGRES_BINARIES) -> Path:
    """The newest ``base/*/bin`` holding initdb and pg_ctl, or ``PostgresUnavailable``."""
    found = sorted(base.glob("*/bin"), key=_version_key)
    if not found:
        raise PostgresUnavailable(f"PostgreSQL is not installed: no {base}/*/bin; {_INSTALL}")
    newest = found[-1]
    for tool in ("initdb", "pg_ctl", "postgres"):
        if not (newest / tool).is_file():
            raise PostgresUnavailable(
                f"PostgreSQL in {newest} is incomplete: no {tool}; {_INSTALL}"
            )
    return newest


def _service_user() -> str | None:
    """Who runs the tools: ``postgres`` when this process is root, else this user (None)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        raise PostgresUnavailable(
            f"running as root, PostgreSQL must run as the user {SERVICE_USER!r}, which does not"
            f" exist; {_INSTALL}"
        ) from None
    return SERVICE_USER


def check_database_name(name: str) -> str:
    if not DATABASE_NAME.fullmatch(name):
        raise ValueError(
            f"database name {name!r}: lower-case letters, digits and _, 1 to 63, not starting"
            " with a digit"
        )
    return name


@dataclass
class PostgresCluster:
    """A running throwaway cluster; ``url()`` names one of its databases."""

    root: Path
    port: int
    bin_dir: Path
    run_as: str | None = None
    running: bool = False

    @classmethod
    def start(cls, root: Path, *, durable: bool = True, port: int | None = None) -> PostgresCluster:
        """initdb into ``root/data`` unless it holds a cluster already, start it on
        127.0.0.1:``port`` (default: a free one) and create the database ``takan``."""
        bin_dir = postgres_bin()
        run_as = _service_user()
        root = root.resolve()
        if re.search(r"[\s'\"\\$`]", str(root)):
            raise ClusterError(f"{root}: a cluster directory without spaces or quotes, please")
        (root / "sock").mkdir(parents=True, exist_ok=True)
        if run_as is not None:
            account = pwd.getpwnam(run_as)
            for path in (root, root / "sock"):
                os.chown(path, account.pw_uid, account.pw_gid)
            blocked = untraversable_parent(root, run_as)
            if blocked is not None:
                raise ClusterError(
                    f"PostgreSQL runs as {run_as!r}, who may not enter {blocked} (mode"
                    f" {blocked.stat().st_mode & 0o777:o}) above {root}: put the cluster under a"
                    " directory it can traverse, such as one made in /tmp"
                )
        cluster = cls(root, port or free_port(), bin_dir, run_as)
        if not (root / "data" / "PG_VERSION").exists():
            cluster._initdb(durable)
        cluster._pg_ctl_start(durable)
        try:
            if not cluster._database_exists(DEFAULT_DATABASE):
                cluster.create_database(DEFAULT_DATABASE)
        except BaseException:
            cluster.stop()  # nobody would own it
            raise
        return cluster

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def server_log(self) -> Path:
        return self.root / "server.log"

    def url(self, database: str = DEFAULT_DATABASE) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{check_database_name(database)}"

    def create_database(self, name: str, template: str | None = None) -> str:
        """A new empty database (or a copy of ``template``, which nobody may be connected to);
        its URL. psycopg's errors pass unchanged (``DuplicateDatabase``, ``ObjectInUse``)."""
        from psycopg import sql

        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(check_database_name(name)))
        if template is not None:
            statement += sql.SQL(" TEMPLATE {}").format(
                sql.Identifier(check_database_name(template))
            )
        self._admin(statement)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop ``name`` if it exists, closing whatever connections it still has."""
        from psycopg import sql

        self._admin(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(check_database_name(name))
            )
        )

    def stop(self) -> None:
        """``pg_ctl stop -m fast -w``: returns when the server has exited; again is a no-op."""
        if not self.running:
            return
        log = self.root / "pg_ctl.log"
        command: list[str | Path] = [self.bin_dir / "pg_ctl", "-D", self.data, "-m", "fast"]
        status = run_tool(
            [*command, "-w", "-t", f"{STOP_TIMEOUT_S:g}", "stop"],
            log,
            run_as=self.run_as,
            cwd=self.root,
            timeout_s=STOP_TIMEOUT_S + 5,
        )
        if status != 0 and self._status() != 3:  # 3: not running (it died, or was stopped)
            raise ClusterError(f"PostgreSQL in {self.data} did not stop:\n{log_tail(log)}")
        self.running = False

    def __enter__(self) -> PostgresCluster:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _initdb(self, durable: bool) -> None:
        log = self.root / "initdb.log"
        command: list[str | Path] = [
            self.bin_dir / "initdb", "-D", self.data, "-U", SUPERUSER, "-A", "trust",
            "-E", "UTF8", "--locale=C.UTF-8",
        ]  # fmt: skip
        if not durable:
            command.append("-N")  # no fsync of the new files: 0.8 s instead of 1.15 s
        status = run_tool(command, log, run_as=self.run_as, cwd=self.root, timeout_s=120)
        if status != 0:
            raise ClusterError(f"initdb failed for {self.data}:\n{log_tail(log)}")

    def _pg_ctl_start(self, durable: bool) -> None:
        options = [
            "-c listen_addresses=127.0.0.1",
            f"-p {self.port}",
            f"-k {shlex.quote(str(self.root / 'sock'))}",
            *(() if durable else NOT_DURABLE),
        ]
        log = self.root / "pg_ctl.log"
        command: list[str | Path] = [
            self.bin_dir / "pg_ctl", "-D", self.data, "-l", self.server_log,
            "-o", " ".join(options), "-w", "-t", f"{START_TIMEOUT_S:g}", "start",
        ]  # fmt: skip
        began = time.monotonic()
        status = run_tool(
            command, log, run_as=self.run_as, cwd=self.root, timeout_s=START_TIMEOUT_S + 5
        )
        if status != 0:
            if self._status() == 0:  # it came up after all: leave nothing running
                self.running = True
                self.stop()
            raise ClusterError(
                f"PostgreSQL did not start on 127.0.0.1:{self.port} from {self.data}"
                f" ({time.monotonic() - began:.1f} s):\n{log_tail(log, 10)}\n"
                f"{log_tail(self.server_log)}"
            )
        self.running = True

    def _status(self) -> int:
        """``pg_ctl status``: 0 running, 3 not running, 4 no cluster there."""
        return run_tool(
            [self.bin_dir / "pg_ctl", "-D", self.data, "status"],
            self.root / "pg_ctl.log",
            run_as=self.run_as,
            cwd=self.root,
            timeout_s=30,
        )

    def _admin(self, statement: sql.Composed) -> None:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(statement)

    def _database_exists(self, name: str) -> bool:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        return row is not None
