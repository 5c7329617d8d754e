"""The evidence package: exported by REST and by ``takan export``, verified where the server
never was, and any change inside it is named by ``takan verify``."""

from __future__ import annotations

import asyncio
import json
import re
import zipfile
from pathlib import Path

import aiohttp

from tests.conftest import LiveServer, running_server
from tests.integration.recorded_case import record_inspection, takan

OFFLINE_PAGE = (
    "index.html",
    "offline/evidence-core.js",
    "offline/python-words.js",
    "offline/timestamp-token.js",
    "offline/case-verify.js",
    "offline/offline.js",
    "offline/package-index.js",
    "offline/style.css",
)


async def download_export(server: LiveServer, case_id: str, username: str, target: Path) -> str:
    """Save the package; answers its Content-Disposition."""
    headers = {"Authorization": f"Bearer {await server.token(username)}"}
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{server.base_url}/api/cases/{case_id}/export", headers=headers) as response,
    ):
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"] == "application/zip"
        assert response.headers["Cache-Control"] == "no-store"
        await asyncio.to_thread(target.write_bytes, await response.read())
        return response.headers["Content-Disposition"]


def chain_kinds(package: Path, case_id: str) -> list[dict[str, object]]:
    with zipfile.ZipFile(package) as archive:
        names = sorted(n for n in archive.namelist() if n.startswith(f"cases/{case_id}/chain/"))
        return [json.loads(archive.read(name)) for name in names]


def unzip(package: Path, target: Path) -> None:
    with zipfile.ZipFile(package) as archive:
        archive.extractall(target)


async def test_rest_and_cli_exports_verify_offline_zipped_and_unzipped(tmp_path: Path) -> None:
    data = tmp_path / "data"
    rest_zip = tmp_path / "rest.zip"
    async with running_server(data) as server:
        invite = await record_inspection(server)
        case_id = invite["case_id"]
        disposition = await download_export(server, case_id, "auditor1", rest_zip)
    assert re.fullmatch(
        rf'attachment; filename="takan-{case_id}-[0-9]{{8}}T[0-9]{{6}}Z\.zip"', disposition
    )
    # The server is gone: the CLI writes the same package from its data directory.
    cli_zip = tmp_path / "cli.zip"
    code, out, err = await takan("export", case_id, "--data", str(data), "-o", str(cli_zip))
    assert code == 0, err
    assert "exported" in out

    for package, by in ((rest_zip, "auditor1"), (cli_zip, "cli")):
        with zipfile.ZipFile(package) as archive:
            names = archive.namelist()
            infos = {info.filename: info for info in archive.infolist()}
            readme = archive.read("README.md").decode()
            public_key = archive.read("public-key.txt").decode()
        for name in (*OFFLINE_PAGE, "README.md", "public-key.txt"):
            assert name in names, name
        segments = [n for n in names if n.endswith(".webm")]
        assert segments
        assert all(infos[n].compress_type == zipfile.ZIP_STORED for n in segments)
        assert any(n.endswith("/manifest.json") for n in names)
        assert "SHA-256" in readme
        assert "哈希" in readme
        assert case_id in readme
        assert "fingerprint: sha256:" in public_key
        exported = [e for e in chain_kinds(package, case_id) if e["kind"] == "exported"]
        assert exported[-1]["body"] == {"by": by, "role": "auditor" if by == "auditor1" else "cli"}

        code, out, err = await takan("verify", str(package))
        assert code == 0, out + err
        assert f"OK: case {case_id} is intact" in out
        unzipped = tmp_path / f"unzipped-{package.stem}"
        await asyncio.to_thread(unzip, package, unzipped)
        code, out, err = await takan("verify", case_id, "--storage", f"file://{unzipped}")
        assert code == 0, out + err
    # The CLI package holds the REST export's event too, and its own after it.
    kinds = [e["kind"] for e in chain_kinds(cli_zip, case_id)]
    assert kinds.count("exported") == 2


def rewrite_member(source: Path, target: Path, name: str, offset: int) -> None:
    """Repackage ``source`` with one byte of ``name`` changed, the zip itself left valid."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            data = bytearray(old.read(info))
            if info.filename == name:
                data[offset] ^= 0x01
            new.writestr(info, bytes(data))


def flip_stored_byte(package: Path, name: str, offset: int) -> None:
    """Change one byte of a stored member in place, leaving its recorded CRC as it was."""
    with zipfile.ZipFile(package) as archive:
        info = archive.getinfo(name)
    raw = bytearray(package.read_bytes())
    header = info.header_offset
    name_length = int.from_bytes(raw[header + 26 : header + 28], "little")
    extra_length = int.from_bytes(raw[header + 28 : header + 30], "little")
    raw[header + 30 + name_length + extra_length + offset] ^= 0x01
    package.write_bytes(bytes(raw))


async def test_a_changed_byte_inside_the_package_fails_verify_naming_the_segment(
    live_server: LiveServer, tmp_path: Path
) -> None:
    invite = await record_inspection(live_server)
    case_id = invite["case_id"]
    package = tmp_path / "package.zip"
    await download_export(live_server, case_id, "admin1", package)
    with zipfile.ZipFile(package) as archive:
        segment = sorted(n for n in archive.namelist() if n.endswith(".webm"))[-1]

    repackaged = tmp_path / "repackaged.zip"
    await asyncio.to_thread(rewrite_member, package, repackaged, segment, 200)
    code, out, _ = await takan("verify", str(repackaged))
    assert code == 1
    assert out.startswith(f"FAILED: {segment}: SHA-256 is "), out

    flipped = tmp_path / "flipped.zip"
    flipped.write_bytes(package.read_bytes())
    await asyncio.to_thread(flip_stored_byte, flipped, segment, 200)
    code, out, _ = await takan("verify", str(flipped))
    assert code == 1
    assert out.startswith(f"FAILED: {segment}: "), out

    unzipped = tmp_path / "unzipped"
    await asyncio.to_thread(unzip, repackaged, unzipped)
    code, out, _ = await takan("verify", case_id, "--storage", f"file://{unzipped}")
    assert code == 1
    assert out.startswith(f"FAILED: {segment}: SHA-256 is "), out


async def test_inspectors_export_only_their_own_cases(
    live_server: LiveServer, tmp_path: Path
) -> None:
    case = await live_server.new_case("inspector1")
    status, body = await live_server.request(
        "GET", f"/api/cases/{case['case_id']}/export", "inspector2"
    )
    assert (status, body["error"]) == (403, "forbidden")
    package = tmp_path / "own.zip"
    await download_export(live_server, case["case_id"], "inspector1", package)
    with zipfile.ZipFile(package) as archive:
        assert f"cases/{case['case_id']}/chain/000000000000.json" in archive.namelist()


async def test_cli_export_of_an_unknown_case_or_without_a_key_says_why(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with running_server(data) as server:
        await server.new_case("inspector1", case_id="KNOWN-1")
    code, _, err = await takan("export", "NOPE-1", "--data", str(data), "-o", str(tmp_path / "x"))
    assert code == 1
    assert "NOPE-1 has no archive" in err
    code, _, err = await takan(
        "export", "KNOWN-1", "--storage", f"file://{data / 'archive'}", "-o", str(tmp_path / "y"),
        "--signing-key", str(tmp_path / "missing.key"),
    )  # fmt: skip
    assert code == 2
    assert "no signing key" in err
    code, _, err = await takan("export", "../x", "--data", str(data), "-o", str(tmp_path / "z"))
    assert code == 2
    assert not (tmp_path / "x").exists()
