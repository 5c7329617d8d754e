"""The options of ``takan cluster`` (server/cli/cluster/local.py), apart so that ``takan``
starts without importing the launchers."""

from __future__ import annotations

import argparse
from pathlib import Path

MAX_NODES = 9


def add_cluster_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "cluster",
        help="run several nodes on this machine behind one URL (PostgreSQL, SeaweedFS, nginx)",
        description="PostgreSQL (initdb), SeaweedFS, nginx and --nodes takan serve --node"
        " processes on loopback, one URL; the demo users printed; Ctrl-C stops it all",
    )
    parser.add_argument("--nodes", type=int, default=3, help=f"how many (1-{MAX_NODES})")
    parser.add_argument("--port", type=int, default=8080, help="the URL's port (nginx)")
    parser.add_argument("--dir", type=Path, help="where it all lives (default: a new one in /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the directory at the end")
