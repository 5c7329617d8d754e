"""One verdict everywhere, and a replay that plays to the end.

The same broken archive goes to every verifier there is: ``takan verify`` on the data directory,
the case page's integrity (``GET /api/cases/{id}/integrity``, recorder/verify.py on the server),
``takan verify`` on the export zip, the replay page and the offline package page (the evidence
core in Chromium, from the server's object API and from the unzipped folder on file://). Each
must say FAILED and name the same object for the same reason, in takan verify's words.

The archives are really recorded through the live server and then broken as a tamperer or a
faulty store would: a segment object stored with no chain entry recording it (what the bug
report saw), the object of the last chained segment deleted, and the manifest re-signed with the
server's own key with one segment left out. An export is also changed around the case (a file
added, the page's script, the README or public-key.txt changed, a member removed, a member of
another case, the package index removed or re-signed by another key, with or without that key
in the case): ``takan verify`` on the zip and the offline page on its folder must name the same
member for the same reason.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import re
import zipfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from playwright.async_api import BrowserContext, Page, expect

from recorder import layout
from recorder.canonical import canonical_json
from recorder.export import render_public_keys
from recorder.manifest import Manifest, SegmentRecord
from recorder.package_index import IndexedMember, parse_index
from recorder.signing import Signer
from tests.conftest import LiveServer
from tests.e2e.helpers import login, record_console
from tests.e2e.test_offline_package import export_package, open_package, unzip
from tests.e2e.test_replay import TIMEOUT_MS, Recorded, record_inspection
from tests.integration.evidence_helpers import chain, client_process
from tests.integration.recorded_case import takan

# The media path, once: what it stores (joins, consent) runs on both engines in test_signalling.
pytestmark = [pytest.mark.single_engine, pytest.mark.browser]

TRACKS = ("applicant-video", "applicant-audio", "inspector-audio")
PLAY_TIMEOUT_MS = 90_000
TOLERANCE_S = 0.5


@dataclass(frozen=True)
class Broken:
    """A broken archive and the line takan verify must print for it."""

    where: str
    reason: str

    @property
    def line(self) -> str:
        return f"FAILED: {self.where}: {self.reason}"


async def segment_entries(server: LiveServer, case_id: str) -> list[tuple[int, SegmentRecord]]:
    """(chain seq, record) of every chained segment of the case, in chain order."""
    return [
        (entry.seq, SegmentRecord.from_json(entry.body))
        for entry in await chain(server, case_id)
        if entry.kind == "segment"
    ]


def stored(recorded: Recorded, key: str) -> Path:
    return recorded.archive / key


async def orphan_a_segment(server: LiveServer, recorded: Recorded) -> Broken:
    """A video segment object after the last chained one, stored but recorded by no entry."""
    video = [r for _, r in await segment_entries(server, recorded.case_id) if r.track == TRACKS[0]]
    last = video[-1]
    key = layout.segment_key(recorded.case_id, recorded.inspection_id, TRACKS[0], last.seq + 1)
    stored(recorded, key).write_bytes(stored(recorded, last.key).read_bytes())
    return Broken(key, "stored object is not referenced by any chain entry")


async def delete_the_last_segment(server: LiveServer, recorded: Recorded) -> Broken:
    """The object of the last segment the chain records is gone."""
    seq, last = (await segment_entries(server, recorded.case_id))[-1]
    stored(recorded, last.key).unlink()
    return Broken(last.key, f"missing (recorded by chain entry {seq})")


async def resign_the_manifest_without_a_segment(server: LiveServer, recorded: Recorded) -> Broken:
    """The manifest signed again, by the server's real key, without the last video segment."""
    key = layout.manifest_key(recorded.case_id, recorded.inspection_id)
    path = stored(recorded, key)
    manifest = Manifest.from_signed_json(json.loads(path.read_bytes()))
    left_out = [s for s in manifest.segments if s.track == TRACKS[0]][-1]
    forged = Manifest.build(
        case_id=manifest.case_id,
        inspection_id=manifest.inspection_id,
        segments=[s for s in manifest.segments if s.key != left_out.key],
        chain_head_seq=manifest.chain_head_seq,
        chain_head=manifest.chain_head,
        created_at=manifest.created_at,
        signer=server.services.archive.signer,
    )
    path.chmod(0o644)
    path.write_bytes(canonical_json(forged.signed_json()))
    return Broken(key, f"segments differ from the chain's; not in the manifest: {left_out.key}")


BREAKS: dict[str, Callable[[LiveServer, Recorded], Awaitable[Broken]]] = {
    "orphaned-segment": orphan_a_segment,
    "missing-last-segment": delete_the_last_segment,
    "manifest-missing-a-segment": resign_the_manifest_without_a_segment,
}


async def browser_verdict(page: Page) -> tuple[str, str]:
    """(data-where, the verdict line) once the replay has checked every object."""
    replay = page.locator("#replay")
    await expect(replay).to_have_attribute(
        "data-verdict", re.compile("^(failed|verified)$"), timeout=TIMEOUT_MS
    )
    verdict = page.locator("#replay-verdict")
    return await verdict.get_attribute("data-where") or "", await verdict.inner_text()


async def cli_verdict(*args: str) -> tuple[int, str]:
    """The exit code and the verdict: the summary when intact, else the ``FAILED:`` line (a
    listing of every missing object may follow it)."""
    code, out, err = await takan("verify", *args)
    assert code in (0, 1), err
    return code, out.strip() if code == 0 else out.strip().splitlines()[0]


@pytest.mark.parametrize("breaking", list(BREAKS))
async def test_every_verifier_says_failed_naming_the_same_object(
    live_server: LiveServer, desktop: BrowserContext, tmp_path: Path, breaking: str
) -> None:
    recorded = await record_inspection(live_server)
    broken = await BREAKS[breaking](live_server, recorded)
    case_id = recorded.case_id

    # takan verify on the data directory (first: later verifiers chain events of their own).
    assert await cli_verdict(case_id, "--data", str(live_server.data_dir)) == (1, broken.line)

    # The case page's integrity, computed by the server.
    status, integrity = await live_server.request(
        "GET", f"/api/cases/{case_id}/integrity", "auditor1"
    )
    assert status == 200, integrity
    assert (integrity["state"], integrity["where"], integrity["reason"]) == (
        "broken",
        broken.where,
        broken.reason,
    )

    # takan verify on the export of the broken archive (the server's own export endpoint: it
    # packs what is stored, as it is stored).
    package = await export_package(live_server, case_id)
    zip_path = tmp_path / "package.zip"
    zip_path.write_bytes(package)
    assert await cli_verdict(str(zip_path)) == (1, broken.line)

    console: list[str] = []
    try:
        # The case page and the replay page in Chromium.
        page = await desktop.new_page()
        record_console(page, console, "server")
        await login(page, live_server, "auditor1", "/audit")
        await page.goto(f"{live_server.base_url}/cases/{case_id}")
        await expect(page.locator("#integrity")).to_have_attribute(
            "data-state", "broken", timeout=TIMEOUT_MS
        )
        await expect(page.locator("#integrity-where")).to_contain_text(broken.where)
        await page.goto(f"{live_server.base_url}/replay/{case_id}/{recorded.inspection_id}")
        assert await browser_verdict(page) == (broken.where, broken.line)
        replay = page.locator("#replay")
        await expect(replay).to_have_attribute("data-verify", "broken")
        await expect(replay).to_have_attribute("data-reported", "true", timeout=TIMEOUT_MS)
        findings = [
            e.body for e in await chain(live_server, case_id) if e.kind == "replay_verified"
        ]
        assert (findings[-1]["state"], findings[-1]["where"], findings[-1]["reason"]) == (
            "broken",
            broken.where,
            broken.reason,
        )

        # The offline package page, from file://, on the unzipped export.
        folder = tmp_path / "package"
        unzip(package, folder)
        offline = await open_package(desktop, folder, console)
        assert await browser_verdict(offline) == (broken.where, broken.line)
        await expect(offline.locator("#replay")).to_have_attribute("data-verify", "broken")
    finally:
        print("\n".join(console))


# the package around the case

INDEX = "package-index.json"
FORGER = Signer.generate()


@dataclass(frozen=True)
class Tampering:
    """A change to an export: members replaced (bytes) or dropped (None), members added, and
    the line takan verify must print for it; ``by_case`` when the case's rules find it first
    (the page's package verdict then names the package's own first failure)."""

    broken: Broken
    replaced: dict[str, bytes | None] = dataclasses.field(default_factory=dict)
    added: dict[str, bytes] = dataclasses.field(default_factory=dict)
    by_case: bool = False

    def apply(self, source: Path, target: Path) -> Path:
        with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
            for info in old.infolist():
                data = self.replaced.get(info.filename, old.read(info))
                if data is not None:
                    new.writestr(info, data)
            for name, data in self.added.items():
                new.writestr(name, data)
        return target


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _changed(members: dict[str, bytes], name: str, data: bytes) -> Tampering:
    """``name`` holding ``data`` instead, named with the index's size or SHA-256."""
    was = members[name]
    if len(data) == len(was):
        reason = f"SHA-256 is {_sha256(data)}; the package index records {_sha256(was)}"
    else:
        size = f"more than {len(was)}" if len(data) > len(was) else str(len(data))
        reason = f"size is {size} bytes; the package index records {len(was)}"
    return Tampering(Broken(name, reason), replaced={name: data})


def _resigned_by_a_forger(case_id: str, members: dict[str, bytes], with_key: bool) -> Tampering:
    """The index signed again by a forger's own key, and (``with_key``) that key put into the
    case and public-key.txt: a package consistent with itself, but its key is not the case's."""
    key_name = layout.public_key_key(case_id, FORGER.fingerprint)
    key_text = render_public_keys(case_id, {FORGER.fingerprint: FORGER.public_key_bytes})
    index = parse_index(members[INDEX]).index
    listed = list(index.members)
    if with_key:
        listed = [
            IndexedMember(m.name, len(key_text), _sha256(key_text))
            if m.name == "public-key.txt"
            else m
            for m in listed
        ]
        listed.append(IndexedMember(key_name, 32, _sha256(FORGER.public_key_bytes)))
    forged = dataclasses.replace(index, key_fingerprint=FORGER.fingerprint, members=tuple(listed))
    if not with_key:
        return Tampering(
            Broken(INDEX, f"names signing key {FORGER.fingerprint}, absent ({key_name})"),
            replaced={INDEX: forged.signed(FORGER)},
        )
    return Tampering(
        Broken(key_name, "stored object is not referenced by any chain entry"),
        replaced={INDEX: None, "public-key.txt": key_text},
        added={key_name: FORGER.public_key_bytes, INDEX: forged.signed(FORGER)},
        by_case=True,
    )


def tamperings(case_id: str, members: dict[str, bytes]) -> dict[str, Tampering]:
    key_text = members["public-key.txt"]
    fingerprint = re.search(rb"fingerprint: (sha256:[0-9a-f]{64})", key_text)
    assert fingerprint is not None
    script = members["offline/offline.js"]
    assert script.endswith(b"\n")
    stray = f"cases/{case_id}-other/chain/000000000000.json"
    return {
        "extra-member": Tampering(
            Broken("evil.html", "not listed in the package index"),
            added={"evil.html": b"<!doctype html><script>alert(1)</script>"},
        ),
        "changed-script": _changed(members, "offline/offline.js", script[:-1] + b" "),
        "changed-readme": _changed(
            members, "README.md", members["README.md"] + "已核验 / verified\n".encode()
        ),
        "changed-public-key": _changed(
            members, "public-key.txt", key_text.replace(fingerprint[1], b"sha256:" + b"0" * 64)
        ),
        "removed-readme": Tampering(
            Broken("README.md", "listed in the package index but absent"),
            replaced={"README.md": None},
        ),
        "member-of-another-case": Tampering(
            Broken(stray, f"a member of case {case_id}-other; this package is of case {case_id}"),
            added={stray: members[f"cases/{case_id}/chain/000000000000.json"]},
        ),
        "index-removed": Tampering(
            Broken(INDEX, "missing: the package has no index of its members"),
            replaced={INDEX: None},
        ),
        "index-resigned-by-an-absent-key": _resigned_by_a_forger(case_id, members, False),
        "index-resigned-by-a-key-put-in-the-case": _resigned_by_a_forger(case_id, members, True),
    }


async def test_a_tampered_package_gets_one_verdict_from_takan_verify_and_the_offline_page(
    live_server: LiveServer, desktop: BrowserContext, tmp_path: Path
) -> None:
    """Each change to an export, outside ``cases/`` as inside, is named by ``takan verify`` on
    the zip and by the offline page on the unzipped folder, at the same place in the same words;
    the page still opens the package's own case."""
    recorded = await record_inspection(live_server)
    case_id = recorded.case_id
    original = tmp_path / "original.zip"
    original.write_bytes(await export_package(live_server, case_id))
    code, out = await cli_verdict(str(original))
    assert code == 0, out
    with zipfile.ZipFile(original) as package:
        members = {info.filename: package.read(info) for info in package.infolist()}
    console: list[str] = []
    try:
        for name, tampering in tamperings(case_id, members).items():
            broken = tampering.broken
            tampered = tampering.apply(original, tmp_path / f"{name}.zip")
            assert await cli_verdict(str(tampered)) == (1, broken.line), name
            folder = tmp_path / name
            with zipfile.ZipFile(tampered) as archive:
                archive.extractall(folder)
            page = await open_package(desktop, folder, console)
            verdict = page.locator("#package-verdict")
            await expect(verdict).to_have_attribute("data-state", "failed", timeout=TIMEOUT_MS)
            if not tampering.by_case:
                assert (await verdict.get_attribute("data-where"), await verdict.inner_text()) == (
                    broken.where,
                    broken.line,
                ), name
            assert await page.locator("#case-select").input_value() == case_id, name
            assert await browser_verdict(page) == (broken.where, broken.line), name
            await page.close()
    finally:
        print("\n".join(console))


# the replay plays to the end


async def _exits_cleanly(process: asyncio.subprocess.Process) -> None:
    async with asyncio.timeout(90):
        _, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()[-2000:]


async def record_inspector_talking_on(server: LiveServer) -> Recorded:
    """An inspection whose inspector stays (and is recorded) ~6 s after the applicant left, so
    the inspector's audio outlasts the applicant's video."""
    invite = await server.new_inspection("inspector1")
    watcher = await client_process(
        "watch", invite["inspector_url"], "--token", await server.token("inspector1"),
        "--seconds", "15",
    )  # fmt: skip
    await asyncio.sleep(1)
    publisher = await client_process(
        "publish", invite["applicant_url"], "--source", "testsrc", "--seconds", "7"
    )
    await _exits_cleanly(publisher)
    await _exits_cleanly(watcher)
    status, body = await server.request(
        "POST", f"/api/inspections/{invite['inspection_id']}/end", "inspector1"
    )
    assert status == 200, body
    await server.services.archive.drain()
    return Recorded(invite["case_id"], invite["inspection_id"], server.data_dir / "archive")


def _utc(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


async def assert_plays_every_track_to_its_last_segment(
    page: Page, records: list[SegmentRecord]
) -> None:
    """The replay, left to play, ends where the chained segments end: every track's last
    segment appended and played to its end, the timeline's spans those of the chain's times."""
    replay = page.locator("#replay")
    await expect(replay).to_have_attribute("data-state", "ready", timeout=TIMEOUT_MS)
    await expect(replay).to_have_attribute("data-ended", re.compile("."), timeout=PLAY_TIMEOUT_MS)
    await expect(replay).to_have_attribute("data-verdict", "verified", timeout=TIMEOUT_MS)
    t0 = min(_utc(r.start_utc) for r in records)
    shown: list[dict[str, str]] = await page.locator(".tl-seg").evaluate_all(
        "els => els.map((e) => ({...e.dataset}))"
    )
    for track in TRACKS:
        chained = [r for r in records if r.track == track]
        lane = sorted((s for s in shown if s["track"] == track), key=lambda s: int(s["seq"]))
        assert [int(s["seq"]) for s in lane] == [r.seq for r in chained], track
        first, last = lane[0], lane[-1]
        span = float(last["end"]) - float(first["start"])
        chained_span = _utc(chained[-1].end_utc) - _utc(chained[0].start_utc)
        assert abs(span - chained_span) < TOLERANCE_S, (track, span, chained_span)
        assert abs(float(last["end"]) - (_utc(chained[-1].end_utc) - t0)) < TOLERANCE_S, track
        assert last.get("appended") == "true", (track, last)
        assert float(last.get("playedTo", "-1")) > float(last["end"]) - TOLERANCE_S, (track, last)
    chained_end = max(_utc(r.end_utc) for r in records) - t0
    played = float(await replay.get_attribute("data-ended") or "0")
    assert abs(played - chained_end) < TOLERANCE_S, (played, chained_end)


async def test_replay_plays_the_last_chained_segment_of_every_track_to_the_end(
    live_server: LiveServer, desktop: BrowserContext, tmp_path: Path
) -> None:
    recorded = await record_inspector_talking_on(live_server)
    records = [r for _, r in await segment_entries(live_server, recorded.case_id)]
    ends = {t: max(_utc(r.end_utc) for r in records if r.track == t) for t in TRACKS}
    assert ends["inspector-audio"] > ends["applicant-video"] + 3, ends  # audio outlasts video
    console: list[str] = []
    try:
        page = await desktop.new_page()
        record_console(page, console, "server")
        await login(page, live_server, "auditor1", "/audit")
        await page.goto(
            f"{live_server.base_url}/replay/{recorded.case_id}/{recorded.inspection_id}"
        )
        await assert_plays_every_track_to_its_last_segment(page, records)

        folder = tmp_path / "package"
        unzip(await export_package(live_server, recorded.case_id), folder)
        offline = await open_package(desktop, folder, console)
        await assert_plays_every_track_to_its_last_segment(offline, records)
    finally:
        print("\n".join(console))
