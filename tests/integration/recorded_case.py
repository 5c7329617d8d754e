"""A short real inspection: ``python -m client publish`` of the test source, then ended."""

from __future__ import annotations

import asyncio
import os
import stat
import sys
from pathlib import Path
from typing import Any

from tests.conftest import LiveServer

REPO = Path(__file__).resolve().parents[2]


async def run(*args: str, timeout: float = 120, cwd: Path = REPO) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *args,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(timeout):
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def takan(*args: str, cwd: Path = REPO) -> tuple[int, str, str]:
    return await run(sys.executable, "-m", "server.cli", *args, cwd=cwd)


async def record_inspection(
    server: LiveServer, seconds: int = 3, case_id: str | None = None
) -> dict[str, Any]:
    """A recorded (``seconds`` > 0) and ended inspection: its invite and ``case_id``."""
    if case_id is None:
        invite = await server.new_inspection()
    else:
        status, created = await server.request(
            "POST", f"/api/cases/{case_id}/inspections", "inspector1"
        )
        assert status == 201, created
        invite = {**created, "case_id": case_id}
    if seconds > 0:
        code, _, err = await run(
            sys.executable, "-m", "client", "publish", invite["applicant_url"],
            "--source", "testsrc", "--seconds", str(seconds),
        )  # fmt: skip
        assert code == 0, err
    status, body = await server.request(
        "POST", f"/api/inspections/{invite['inspection_id']}/end", "inspector1"
    )
    assert status == 200, body
    await server.services.archive.drain()
    return invite


def flip_byte(path: Path, offset: int) -> None:
    """Change one byte of an archived (read-only) file in place, as a tamperer would."""
    path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))
