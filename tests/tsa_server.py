"""A local RFC 3161 timestamp authority for the tests: ``openssl ts -reply`` behind aiohttp.

``make_tsa_certs`` makes a root CA and a TSA certificate under it (P-256, critical timeStamping
EKU; ``certs =`` is left out of the config, as rfc3161-client refuses an unsorted chain set).
``LocalTsa`` answers ``application/timestamp-query`` POSTs on a fixed loopback port, so it can
be stopped (a TSA that is down: connection refused) and started again at the same URL. Replies
are made one at a time: openssl rewrites its serial file unlocked.
"""

from __future__ import annotations

import asyncio
import subprocess
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from tests.s3server import free_port

POLICY = "1.3.6.1.4.1.99999.1"
_EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]


@dataclass(frozen=True, slots=True)
class TsaCerts:
    directory: Path
    name: str  # the TSA certificate's CN

    @property
    def ca(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def tsa_cert(self) -> Path:
        return self.directory / "tsa.crt"

    @property
    def tsa_key(self) -> Path:
        return self.directory / "tsa.key"

    def config(self, workdir: Path) -> Path:
        """An ``openssl ts`` config whose serial file lives in ``workdir``."""
        workdir.mkdir(parents=True, exist_ok=True)
        serial = workdir / "tsaserial"
        if not serial.exists():
            serial.write_text("01\n")
        path = workdir / "tsa.cnf"
        path.write_text(
            "[ tsa ]\ndefault_tsa = tsa1\n[ tsa1 ]\n"
            f"serial = {serial}\nsigner_cert = {self.tsa_cert}\nsigner_key = {self.tsa_key}\n"
            f"signer_digest = sha256\ndefault_policy = {POLICY}\n"
            "digests = sha256, sha384, sha512\naccuracy = secs:1\ntsa_name = yes\n"
            "ess_cert_id_alg = sha256\n"
        )
        return path


def make_tsa_certs(
    directory: Path, name: str = "Test TSA", ca_name: str = "Test Root CA"
) -> TsaCerts:
    directory.mkdir(parents=True, exist_ok=True)
    certs = TsaCerts(directory, name)

    def req(*args: str) -> None:
        subprocess.run(["openssl", "req", "-x509", "-new", *_EC, *args], check=True,
                       capture_output=True, cwd=directory)  # fmt: skip

    req("-keyout", "ca.key", "-out", "ca.crt", "-days", "3650", "-subj", f"/CN={ca_name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    req("-keyout", "tsa.key", "-out", "tsa.crt", "-days", "825", "-subj", f"/CN={name}",
        "-CA", "ca.crt", "-CAkey", "ca.key",
        "-addext", "basicConstraints=critical,CA:FALSE",
        "-addext", "keyUsage=critical,digitalSignature",
        "-addext", "extendedKeyUsage=critical,timeStamping")  # fmt: skip
    return certs


def reply_now(config: Path, query: bytes) -> bytes:
    """openssl's reply to ``query`` (a Rejected one too: openssl exits 0 for those)."""
    done = subprocess.run(
        ["openssl", "ts", "-reply", "-config", str(config), "-queryfile", "/dev/stdin",
         "-out", "/dev/stdout"],
        input=query, capture_output=True, cwd=config.parent, check=True,
    )  # fmt: skip
    return done.stdout


class LocalTsa:
    """``POST /`` → ``openssl ts -reply``; ``start``/``stop`` any number of times."""

    def __init__(self, certs: TsaCerts, workdir: Path) -> None:
        self.certs = certs
        self.config = certs.config(workdir)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/tsa"
        self.requests = 0
        self._lock = asyncio.Lock()
        self._runner: web.AppRunner | None = None

    async def _answer(self, request: web.Request) -> web.Response:
        if request.content_type != "application/timestamp-query":
            raise web.HTTPUnsupportedMediaType()
        query = await request.read()
        self.requests += 1
        async with self._lock:
            process = await asyncio.create_subprocess_exec(
                "openssl", "ts", "-reply", "-config", str(self.config), "-queryfile",
                "/dev/stdin", "-out", "/dev/stdout", cwd=self.config.parent,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            out, err = await process.communicate(query)
        if process.returncode or not out:
            return web.Response(status=500, text=err.decode(errors="replace"))
        return web.Response(body=out, content_type="application/timestamp-reply")

    @property
    def running(self) -> bool:
        return self._runner is not None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/tsa", self._answer)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
