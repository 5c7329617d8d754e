"""What the cluster's launchers share: their error, free loopback ports, running a tool (as
another user when this process is root), launching a server in a session of its own and waiting
until it is ready, ending it, and checking a directory is reachable by a service's user."""

from __future__ import annotations

import os
import pwd
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
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


def launch(
    command: Sequence[str],
    *,
    name: str,
    log: Path,
    ready: Callable[[], bool],
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    poll_s: float = 0.05,
    timeout_s: float = 60.0,
) -> subprocess.Popen[bytes]:
    """Start ``command`` in a session of its own (so that its group is it and its children),
    its output appended to ``log``, and return it once ``ready()``; if it exits first or
    ``timeout_s`` passes, end it and raise ``ClusterError`` with the log's tail."""
    with log.open("ab") as out:
        process = subprocess.Popen(  # noqa: S603 - our own argument list, no shell
            command,
            env=env,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout_s
    while not ready():
        if process.poll() is not None or time.monotonic() > deadline:
            how = "exited" if process.poll() is not None else f"not ready after {timeout_s:g} s"
            end_process(process, signal.SIGTERM, 15.0)
            raise ClusterError(f"{name} did not start ({how}):\n{log_tail(log)}")
        time.sleep(poll_s)
    return process


def end_process(process: subprocess.Popen[bytes], how: signal.Signals, timeout_s: float) -> None:
    """Signal ``process``'s group (its own session) with ``how`` and wait for it; SIGKILL if it
    is still there after ``timeout_s``. Nothing if it has exited."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, how)
        process.wait(timeout_s)
    except ProcessLookupError:
        process.wait()
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
