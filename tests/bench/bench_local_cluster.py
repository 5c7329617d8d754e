"""What the local cluster's launchers cost (server/cli/cluster/): PostgreSQL and nginx, up and down.

    .venv/bin/python tests/bench/bench_local_cluster.py [--runs 8] [--databases 20]

--runs times each: a throwaway PostgreSQL from nothing to accepting connections with its
``takan`` database (durable, as ``make cluster`` starts it, and not, as the tests' fixture does),
and its ``stop -m fast``; in one not-durable cluster, --databases times each: a database made
and dropped (empty; and copied from a template holding a few tables, as a suite may make one per
test); a private nginx in front of three nodes started (``nginx -t`` included), reloaded with
another node list and stopped. Prints median (min-max) in ms; asserts nothing.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import psycopg

from server.cli.cluster.nginx import NginxProxy, Node
from server.cli.cluster.postgres import PostgresCluster

SCHEMA = [
    "CREATE TABLE cases (id text PRIMARY KEY, title text NOT NULL, created_at text NOT NULL)",
    "CREATE TABLE inspections (id text PRIMARY KEY, case_id text REFERENCES cases(id))",
    "CREATE TABLE chain_entries (case_id text, seq int, body text, UNIQUE (case_id, seq))",
    "CREATE INDEX ON inspections (case_id)",
]


class Stopwatch:
    """``with watch:`` adds the block's time, in ms, to ``watch.values``."""

    def __init__(self) -> None:
        self.values: list[float] = []
        self._began = 0.0

    def __enter__(self) -> Stopwatch:
        self._began = time.perf_counter()
        return self

    def __exit__(self, *_: object) -> None:
        self.values.append((time.perf_counter() - self._began) * 1000)


def summary(label: str, values: list[float]) -> None:
    print(
        f"{label:<52} {statistics.median(values):8.1f} ms"
        f"  ({min(values):.1f}-{max(values):.1f}, n={len(values)})"
    )


def fresh_root(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))


def bench_postgres(runs: int, databases: int) -> None:
    for durable in (True, False):
        start, stop = Stopwatch(), Stopwatch()
        for _ in range(runs):
            root = fresh_root("takan-bench-pg-")
            with start:
                cluster = PostgresCluster.start(root, durable=durable)
            with stop:
                cluster.stop()
            shutil.rmtree(root)
        kind = "durable" if durable else "not durable"
        summary(f"PostgreSQL start, {kind} (initdb to takan db)", start.values)
        summary(f"PostgreSQL stop -m fast, {kind}", stop.values)

    root = fresh_root("takan-bench-pg-")
    with PostgresCluster.start(root, durable=False) as cluster:
        with psycopg.connect(cluster.create_database("template_schema")) as conn:
            for statement in SCHEMA:
                conn.execute(statement)
        for template in (None, "template_schema"):
            create, drop = Stopwatch(), Stopwatch()
            for number in range(databases):
                with create:
                    cluster.create_database(f"bench_{number}", template)
                with drop:
                    cluster.drop_database(f"bench_{number}")
            kind = "empty" if template is None else "from a 3-table template"
            summary(f"create database, {kind}", create.values)
            summary(f"drop database, {kind}", drop.values)
            both = [a + b for a, b in zip(create.values, drop.values, strict=True)]
            summary(f"create + drop, {kind}", both)
        with psycopg.connect(cluster.url(), autocommit=True) as conn:
            schema = Stopwatch()
            for number in range(databases):
                with schema:
                    conn.execute(f"CREATE SCHEMA bench_{number}")
                    conn.execute(f"SET search_path TO bench_{number}")
                    for statement in SCHEMA:
                        conn.execute(statement)
                    conn.execute(f"DROP SCHEMA bench_{number} CASCADE")
            summary("for comparison: a schema, its 3 tables, dropped", schema.values)
    shutil.rmtree(root)


def bench_nginx(runs: int) -> None:
    nodes = [Node(f"n{number}", "127.0.0.1", 9000 + number) for number in (1, 2, 3)]
    start, reload, stop = Stopwatch(), Stopwatch(), Stopwatch()
    for _ in range(runs):
        root = fresh_root("takan-bench-nginx-")
        with start:
            proxy = NginxProxy.start(root, nodes)
        with reload:
            proxy.reload(nodes[:2])
        with stop:
            proxy.stop()
        shutil.rmtree(root)
    summary("nginx start (nginx -t, then accepting)", start.values)
    summary("nginx reload (nginx -t, HUP, new worker)", reload.values)
    summary("nginx stop (QUIT)", stop.values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--databases", type=int, default=20)
    args = parser.parse_args()
    bench_postgres(args.runs, args.databases)
    bench_nginx(args.runs)


if __name__ == "__main__":
    main()
