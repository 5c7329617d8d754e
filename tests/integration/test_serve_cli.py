"""``takan serve`` (and ``make run``) as a person starts it: where it listens, the URLs it prints
for a phone, the links it makes, a port already taken, demo users made once."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import ifaddr
import pytest

from tests.conftest import database_options
from tests.integration.recorded_case import REPO, run, takan
from tests.s3server import free_port

ALL_ADDRESSES = "0.0.0.0"  # noqa: S104 - what HOST=0.0.0.0 asks for
DEMO_LINE = re.compile(r"^  (inspector|auditor|admin)\s+(\w+)\s+(\S+)$")


@dataclass
class Served:
    """A ``takan serve`` child process and what it printed before it served."""

    process: asyncio.subprocess.Process
    lines: list[str]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def passwords(self) -> dict[str, str]:
        found = (DEMO_LINE.match(line) for line in self.lines)
        return {m.group(2): m.group(3) for m in found if m}

    def printed(self, label: str) -> str:
        """The value printed after ``label:`` (``invite links, QR``)."""
        for line in self.lines:
            if line.strip().startswith(f"{label}:"):
                return line.split(":", 1)[1].split()[0]
        raise AssertionError(f"no {label!r} line in:\n{self.text}")


@contextlib.asynccontextmanager
async def serving(*args: str) -> AsyncIterator[Served]:
    """``takan serve ARGS``, once it has said all it says at start; stopped afterwards."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server.cli", "serve", *args, *database_options(),
        cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    served = Served(process, [])
    try:
        async with asyncio.timeout(60):
            while not served.lines or served.lines[-1] != "Stop with Ctrl+C.":
                line = await process.stdout.readline()
                if not line:
                    assert process.stderr is not None
                    raise AssertionError(served.text + (await process.stderr.read()).decode())
                served.lines.append(line.decode().rstrip("\n"))
        yield served
    finally:
        if process.returncode is None:
            process.terminate()
        async with asyncio.timeout(30):
            await process.communicate()


async def get(url: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, await response.json()


async def start_inspection(base_url: str, username: str, password: str) -> dict[str, Any]:
    """Sign in at ``base_url`` as a demo inspector, make a case, start an inspection."""
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{base_url}/api/login", json={"username": username, "password": password}
        ) as response:
            assert response.status == 200, await response.text()
            token = (await response.json())["token"]
        headers = {"Authorization": f"Bearer {token}"}
        case = {"case_id": "LAN-1", "title": "厂房踏勘", "address": "文三路 100 号"}
        async with http.post(f"{base_url}/api/cases", json=case, headers=headers) as response:
            assert response.status == 201, await response.text()
        async with http.post(
            f"{base_url}/api/cases/LAN-1/inspections", headers=headers
        ) as response:
            assert response.status == 201, await response.text()
            invite: dict[str, Any] = await response.json()
        async with http.get(base_url + invite["qr_svg_url"], headers=headers) as response:
            assert response.status == 200, await response.text()
            invite["qr_svg"] = await response.text()
        return invite


def lan_ipv4_addresses() -> list[str]:
    """This machine's IPv4 addresses besides loopback and link-local, as the system lists them."""
    return [
        str(ip.ip)
        for adapter in ifaddr.get_adapters()
        for ip in adapter.ips
        if isinstance(ip.ip, str) and not ip.ip.startswith(("127.", "169.254."))
    ]


# Today's defaults: loopback, demo users printed once


async def test_with_no_options_it_serves_loopback_and_prints_the_demo_passwords_once(
    tmp_path: Path,
) -> None:
    data, port = tmp_path / "data", free_port()
    async with serving("--data", str(data), "--port", str(port), "--demo-users") as served:
        assert served.lines[0] == "Demo users (passwords shown once):", served.text
        assert set(served.passwords()) == {"inspector", "auditor", "admin"}, served.text
        assert served.printed("sign in here") == f"http://127.0.0.1:{port}/login"
        assert served.printed("invite links, QR") == f"http://127.0.0.1:{port}"
        assert "not reachable; make run HOST=0.0.0.0" in served.text
        assert await get(f"http://127.0.0.1:{port}/api/health") == (
            200,
            {"ok": True, "live_inspections": 0},
        )
    async with serving("--data", str(data), "--port", str(port), "--demo-users") as again:
        assert again.passwords() == {}, again.text  # never shown twice
        assert (
            "Demo users exist already (inspector, auditor, admin); their passwords were shown"
            " when they were made. A new password: takan user passwd NAME --data"
        ) in again.text


# HOST=0.0.0.0: the LAN URL, and links a phone can open


async def test_on_all_addresses_it_prints_the_lan_url_and_invite_links_and_qr_use_it(
    tmp_path: Path,
) -> None:
    addresses = lan_ipv4_addresses()
    assert addresses, "this test needs a network interface besides loopback"
    port = free_port()
    args = ("--data", str(tmp_path / "data"), "--host", ALL_ADDRESSES, "--port", str(port))
    async with serving(*args, "--demo-users") as served:
        network = (
            served.lines[
                next(i for i, line in enumerate(served.lines) if "on the network:" in line)
            ]
            .split(":", 1)[1]
            .split()
        )
        assert sorted(network) == sorted(f"http://{a}:{port}" for a in addresses), served.text
        lan = served.printed("invite links, QR")
        assert lan == network[0]
        assert "need HTTPS for the camera" in served.text
        status, health = await get(f"{lan}/api/health")  # the phone's way in really serves
        assert (status, health["ok"]) == (200, True)
        invite = await start_inspection(
            f"http://127.0.0.1:{port}", "inspector", served.passwords()["inspector"]
        )
    assert invite["applicant_url"].startswith(f"{lan}/join/"), invite
    assert invite["code_url"] == f"{lan}/j", invite
    assert "127.0.0.1" not in invite["applicant_url"]
    assert invite["qr_svg"].startswith("<?xml") or "<svg" in invite["qr_svg"]


async def test_a_public_url_is_what_every_link_says(tmp_path: Path) -> None:
    port = free_port()
    async with serving(
        "--data", str(tmp_path / "data"), "--host", ALL_ADDRESSES, "--port", str(port),
        "--public-url", "https://takan.example.test/", "--demo-users",
    ) as served:  # fmt: skip
        assert served.printed("invite links, QR") == "https://takan.example.test"
        assert "need HTTPS" not in served.text
        invite = await start_inspection(
            f"http://127.0.0.1:{port}", "inspector", served.passwords()["inspector"]
        )
    assert invite["applicant_url"].startswith("https://takan.example.test/join/"), invite
    assert invite["inspector_url"].startswith("https://takan.example.test/inspect/"), invite
    assert invite["code_url"] == "https://takan.example.test/j", invite


@pytest.mark.parametrize(
    ("public_url", "named"),
    [
        ("takan.example.test", "must start with http:// or https://"),
        ("https://takan.example.test/takan?x=1", "must be only scheme, host and port"),
    ],
)
async def test_a_bad_public_url_is_refused_before_anything_is_made(
    tmp_path: Path, public_url: str, named: str
) -> None:
    data = tmp_path / "data"
    code, out, err = await takan(
        "serve", "--data", str(data), "--port", str(free_port()), "--public-url", public_url,
        "--demo-users",
    )  # fmt: skip
    assert code == 2, out + err
    assert named in err, err
    assert not data.exists()


@pytest.mark.single_engine
async def test_a_turn_url_without_a_password_is_refused_before_anything_is_made(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    code, out, err = await takan(
        "serve", "--data", str(data), "--port", str(free_port()),
        "--ice-server", "turn:takan@turn.example.test:3478",
    )  # fmt: skip
    assert code == 2, out + err
    assert "TURN credentials must be USER:PASSWORD@host: turn:…@turn.example.test:3478" in err
    assert not data.exists()


async def test_passkeys_required_on_an_ip_address_is_refused_before_anything_is_made(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    code, out, err = await takan(
        "serve", "--data", str(data), "--port", str(free_port()), "--passkeys", "required",
    )  # fmt: skip
    assert code == 2, out + err
    assert "--passkeys required: passkeys need the system reached by a host name" in err, err
    assert not data.exists()


@pytest.mark.parametrize(
    ("database", "named"),
    [
        ("mysql://takan@127.0.0.1/takan", "--database must be empty (SQLite in the data dir) or a"),
        (
            f"postgresql://takan@127.0.0.1:{free_port()}/takan",
            "--database: cannot connect to PostgreSQL at 127.0.0.1:",
        ),
    ],
    ids=["another engine", "nothing listening"],
)
async def test_a_database_that_cannot_be_opened_is_named_and_nothing_is_served(
    tmp_path: Path, database: str, named: str
) -> None:
    code, out, err = await takan(
        "serve", "--data", str(tmp_path / "data"), "--port", str(free_port()),
        "--database", database,
    )  # fmt: skip
    assert code == 2, out + err
    assert named in err, err
    assert "Traceback" not in err, err
    assert "Takan serving on" not in out, out


# A port already in use


@pytest.mark.parametrize("host", ["127.0.0.1", ALL_ADDRESSES])
async def test_a_port_in_use_is_one_line_naming_it_and_nothing_is_made(
    tmp_path: Path, host: str
) -> None:
    data = tmp_path / "data"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, out, err = await takan(
            "serve", "--data", str(data), "--host", host, "--port", str(port), "--demo-users"
        )
    assert code == 2, out + err
    assert out == "", out  # no demo passwords that could never be shown again
    assert err.strip().splitlines() == [
        f"takan: port {port} is already in use on {host} (another Takan or another program);"
        " choose another with --port 8081 (make run PORT=8081)"
    ], err
    assert not data.exists()  # no data directory, no database, no users


# make run HOST=… PORT=… PUBLIC_URL=…


async def test_make_run_passes_host_port_and_public_url_to_takan_serve() -> None:
    code, out, err = await run(
        "make", "-n", "-s", "run", "HOST=0.0.0.0", "PORT=8099",
        "PUBLIC_URL=https://takan.example.test",
    )  # fmt: skip
    assert code == 0, out + err
    command = " ".join(out.replace("\\\n", " ").split())
    assert (
        "takan serve --data 'data' --host '0.0.0.0' --port '8099'"
        " --public-url 'https://takan.example.test' --demo-users"
    ) in command, out


async def test_make_run_without_variables_keeps_loopback_even_if_the_shell_exports_host() -> None:
    process = await asyncio.create_subprocess_exec(
        "make", "-n", "-s", "run", cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "HOST": "my-laptop", "PORT": "1"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    assert process.returncode == 0, err
    command = " ".join(out.decode().replace("\\\n", " ").split())
    assert "--host '127.0.0.1' --port '8080' --public-url '' --demo-users" in command, command


# The time zone reports print


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "../etc/passwd", ""])
async def test_an_unknown_report_timezone_is_one_line_naming_it_and_nothing_is_made(
    tmp_path: Path, zone: str
) -> None:
    data = tmp_path / "data"
    code, out, err = await takan(
        "serve", "--data", str(data), "--port", str(free_port()), "--report-timezone", zone,
        "--demo-users",
    )  # fmt: skip
    assert code == 2, out + err
    assert out == "", out
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"takan: --report-timezone: time zone {zone!r}: "), err
    assert "Asia/Shanghai" in lines[0], err
    assert not data.exists()
