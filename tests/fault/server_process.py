"""``takan serve`` as a child process, so it can be killed like a real one."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from tests.conftest import database_options


class ServerProcess:
    """``takan serve`` as a child process, so it can be killed like a real one."""

    def __init__(self, data_dir: Path, port: int, log: Path, args: tuple[str, ...] = ()) -> None:
        self.data_dir = data_dir
        self.port = port
        self.log = log
        self.args = args  # more ``takan serve`` options, e.g. ("--segment-seconds", "1")
        self.base_url = f"http://127.0.0.1:{port}"
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "server.cli", "serve", "--data", str(self.data_dir),
                *database_options(), "--port", str(self.port), *self.args,
                stdout=log, stderr=log,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        async with aiohttp.ClientSession() as http:
            while True:
                assert self.process.returncode is None, self.log.read_text()
                try:
                    async with http.get(f"{self.base_url}/api/keys") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                assert time.monotonic() < deadline, self.log.read_text()
                await asyncio.sleep(0.1)

    async def kill9(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        await self.process.wait()
        self.process = None

    async def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            async with asyncio.timeout(30):
                await self.process.wait()
            self.process = None

    async def call(
        self, method: str, path: str, token: str | None = None, **kwargs: Any
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with (
            aiohttp.ClientSession() as http,
            http.request(method, self.base_url + path, headers=headers, **kwargs) as response,
        ):
            return response.status, await response.json()
