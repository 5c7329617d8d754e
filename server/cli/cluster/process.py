"""What the cluster's launchers share: their error, free loopback ports, running a tool (as
another user when this process is root) and checking a directory is reachable by that user."""

from __future__ import annotations

import os
import pwd
import socket
import stat
import subprocess
from collections.abc import Sequence
from pathlib import Path


class ClusterError(RuntimeError):
    """A process of the local cluster did not start or stop; the message says which and why
    (with its log's tail where there is one)."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the caller binds it soon after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return f"(no {path.name})"


def untraversable_parent(directory: Path, user: str) -> Path | None:
    """The first ancestor of ``directory`` that ``user`` may not enter (no x bit for it), or
    None: a service running as that user cannot reach anything below such a directory."""
    account = pwd.getpwnam(user)
    groups = set(os.getgrouplist(user, account.pw_gid))
    for parent in reversed(directory.resolve().parents):
        info = parent.stat()
        if info.st_uid == account.pw_uid:
            allowed = bool(info.st_mode & stat.S_IXUSR)
        elif info.st_gid in groups:
            allowed = bool(info.st_mode & stat.S_IXGRP)
        else:
            allowed = bool(info.st_mode & stat.S_IXOTH)
        if not allowed:
            return parent
    return None


def run_tool(
    command: Sequence[str | Path], log: Path, *, run_as: str | None, cwd: Path, timeout_s: float
) -> int:
    """Run ``command`` (as ``run_as`` through runuser when given), appending its output to
    ``log``; its exit status."""
    prefix: list[str | Path] = ["runuser", "-u", run_as, "--"] if run_as else []
    with log.open("ab") as out:
        try:
            done = subprocess.run(  # noqa: S603 - our own argument list, no shell
                [*prefix, *command],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=cwd,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise ClusterError(
                f"{Path(command[0]).name} took more than {timeout_s:g} s:\n{log_tail(log)}"
            ) from None
    return done.returncode
