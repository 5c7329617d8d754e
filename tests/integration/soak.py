"""The soak's harness (``test_soak.py``, ``tests/e2e/test_soak_browser.py``): inspections through a
real server, ended at seeded random moments by every path that ends one, and what each case must
show afterwards.

The paths that end an inspection: the end button (``POST /api/inspections/{id}/end``), the
inspector's ``end`` message, a signed conclusion, the applicant leaving and then the inspector
ending, everyone disconnecting and a REST end later, and a server stopped by SIGTERM or killed
(``kill -9``) and restarted on the same data dir, then the end. While the video flows the
inspection sees chat from both sides, a snapshot and a checklist mark naming it.

Afterwards, with every server stopped and started once more (a start uploads whatever a stop left
in the spool, as a real restart would): ``takan verify`` passes on the data dir and on the case's
``takan export``, every track has chained segments, and an in-process recorder's closed segments
are exactly the chained ones. Times are the host's system wall clock (``time.time()``, which the
server's chain ``at`` and checkpoint ``at`` read too).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import random
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import aiohttp
from aiohttp import web

from recorder import layout
from recorder.chain import parse_utc
from recorder.recording import InspectionRecording
from recorder.storage import LocalStorage
from server.http.app import create_app
from server.settings import ARCHIVE_DIR, SPOOL_DIR, Settings
from tests.conftest import ApiClient, LiveServer, add_users, running_server
from tests.fault.server_process import ServerProcess
from tests.integration.evidence_helpers import mark_open_items
from tests.integration.peers import TestPeer, publishing_applicant, watching_inspector
from tests.integration.recorded_case import takan
from tests.s3server import free_port

SEGMENT_S = 1.0  # short segments: a cut every second per track, so an end often lands in one
END_AFTER_S = (1.5, 5.0)  # how long the video flows before the end (or the signal)
IN_PROCESS_PATHS = ("end_button", "end_message", "conclusion", "applicant_left", "all_disconnected")
PROCESS_PATHS = ("sigterm", "kill9")
PATHS = IN_PROCESS_PATHS + PROCESS_PATHS
INSPECTOR = "inspector1"
VIDEO_TIMEOUT_S = 30.0
END_TIMEOUT_S = 60.0
CHECKLIST_ITEM = "site_overview"  # of the default template; it wants one photo


def soak_seed() -> int:
    """``TAKAN_SOAK_SEED`` if set, else a fresh one (printed, so a failure can be replayed)."""
    text = os.environ.get("TAKAN_SOAK_SEED", "").strip()
    return int(text) if text else secrets.randbelow(2**32)


@dataclass(frozen=True, slots=True)
class Plan:
    """How one inspection goes: moments in seconds after the inspector first sees video."""

    number: int
    path: str
    end_after_s: float
    chats: tuple[float, ...]  # alternately the applicant's and the inspector's
    snapshot_at_s: float
    mark_at_s: float  # the checklist mark, naming the snapshot
    linger_s: float  # between leaving and the end (applicant_left, all_disconnected)
    by_message: bool  # applicant_left: the inspector ends by message, not REST
    resume_s: float | None  # sigterm, kill9: after the restart both rejoin and stream this long
    outcome: str  # conclusion

    def describe(self) -> str:
        how = f"#{self.number:02d} {self.path} after {self.end_after_s:.2f} s"
        if self.path == "applicant_left":
            how += ", then the end message" if self.by_message else ", then the end button"
        if self.resume_s is not None:
            how += f", rejoined after the restart for {self.resume_s:.1f} s"
        return how


def make_plans(rng: random.Random, paths: Sequence[str], each: int, total: int) -> list[Plan]:
    """``total`` plans covering every path at least ``each`` times, in a random order."""
    chosen = [path for path in paths for _ in range(each)]
    chosen += [rng.choice(paths) for _ in range(total - len(chosen))]
    rng.shuffle(chosen)
    plans = []
    for number, path in enumerate(chosen):
        resumes = path in PROCESS_PATHS and rng.random() < 0.5
        end_after = rng.uniform(*END_AFTER_S)
        window = end_after - 0.3  # everything else happens before the end
        snapshot_at = rng.uniform(0.0, window / 2)
        plans.append(
            Plan(
                number=number,
                path=path,
                end_after_s=end_after,
                chats=tuple(sorted(rng.uniform(0.0, window) for _ in range(rng.randint(1, 3)))),
                snapshot_at_s=snapshot_at,
                mark_at_s=rng.uniform(snapshot_at, window),
                linger_s=rng.uniform(0.2, 2.0),
                by_message=rng.random() < 0.5,
                resume_s=rng.uniform(1.0, 3.0) if resumes else None,
                outcome=rng.choice(("pass", "fail", "correction")),
            )
        )
    return plans


@dataclass
class Inspection:
    """What happened to one planned inspection, and what was wrong with it."""

    plan: Plan
    case_id: str = ""
    inspection_id: str = ""
    streamed_s: float = 0.0  # video seen by the inspector before the end (or the signal)
    end_sent_at: float | None = None  # time.time() as the end request went out
    recorded: dict[str, int] | None = None  # in-process: closed segments per track
    chained: dict[str, int] = field(default_factory=dict)  # segment entries per track
    end_to_signed_s: float | None = None  # end request → manifest chained and checkpoint signed
    problems: list[str] = field(default_factory=list)

    def problem(self, text: str) -> None:
        self.problems.append(text)


class Applicant(Protocol):
    """The applicant's side: joined, consented and streaming once made."""

    async def chat(self, text: str) -> None: ...

    async def leave(self) -> None: ...


JoinApplicant = Callable[[ApiClient, dict[str, Any]], Awaitable[Applicant]]


@dataclass
class PythonApplicant:
    peer: TestPeer

    async def chat(self, text: str) -> None:
        await self.peer.send(type="chat", text=text)

    async def leave(self) -> None:
        await self.peer.close()


async def python_applicant(server: ApiClient, invite: dict[str, Any]) -> Applicant:
    return PythonApplicant(await publishing_applicant(server.ws_url, invite))


@dataclass
class ProcessClient(ApiClient):
    """The API of a ``takan serve`` child process (``ServerProcess``)."""

    base_url: str
    passwords: dict[str, str]
    _tokens: dict[str, str] = field(default_factory=dict)


async def sleep_until(moment: float) -> None:
    await asyncio.sleep(max(0.0, moment - time.monotonic()))


async def video_seen(inspector: TestPeer, what: str) -> float:
    """Wait until the inspector has received video; the monotonic time it had."""
    try:
        async with asyncio.timeout(VIDEO_TIMEOUT_S):
            while inspector.received.video_frames == 0:
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(
            f"no video reached the inspector within {VIDEO_TIMEOUT_S:g} s ({what})"
        ) from None
    return time.monotonic()


@dataclass
class Sides:
    """One inspection while it streams: its two sides and what they do meanwhile."""

    server: ApiClient
    inspection: Inspection
    invite: dict[str, Any]
    applicant: Applicant
    inspector: TestPeer
    streaming_at: float
    ending: asyncio.Event = field(default_factory=asyncio.Event)
    actions: asyncio.Task[None] | None = None

    async def close(self) -> None:
        for leave in (self.applicant.leave, self.inspector.close):
            with contextlib.suppress(Exception):
                await leave()
        if self.actions is not None:
            await self.actions  # records its own problems, never raises


async def join(server: ApiClient, plan: Plan, join_applicant: JoinApplicant) -> Sides:
    """A new case and inspection, the applicant streaming to a watching inspector."""
    inspection = Inspection(plan)
    invite = await server.new_inspection(INSPECTOR)
    inspection.case_id, inspection.inspection_id = invite["case_id"], invite["inspection_id"]
    applicant = await join_applicant(server, invite)
    try:
        inspector = await watching_inspector(server.ws_url, await server.token(INSPECTOR), invite)
    except BaseException:
        await applicant.leave()
        raise
    try:
        streaming_at = await video_seen(inspector, "at the start")
    except BaseException:
        await applicant.leave()
        await inspector.close()
        raise
    sides = Sides(server, inspection, invite, applicant, inspector, streaming_at)
    sides.actions = asyncio.create_task(act(sides))
    return sides


async def act(sides: Sides) -> None:
    """Chat from both sides, a snapshot and a checklist mark with it, at the plan's moments.

    What a server answers once the end has begun (409, or a dropped connection) is expected;
    anything else is a problem of the inspection.
    """
    plan, inspection, server = sides.inspection.plan, sides.inspection, sides.server
    inspection_path = f"/api/inspections/{inspection.inspection_id}"

    async def at(moment: float) -> bool:
        await sleep_until(sides.streaming_at + moment)
        return not sides.ending.is_set()

    async def call(what: str, method: str, path: str, ok: int, **kwargs: Any) -> Any:
        try:
            status, body = await server.request(method, path, INSPECTOR, **kwargs)
        except aiohttp.ClientError as exc:
            if not sides.ending.is_set():
                inspection.problem(f"{what}: {exc!r}")
            return None
        if status == ok:
            return body
        if not (sides.ending.is_set() and status == 409):
            inspection.problem(f"{what}: {status} {body}")
        return None

    async def chats() -> None:
        for number, moment in enumerate(plan.chats):
            if not await at(moment):
                return
            try:
                if number % 2 == 0:
                    await sides.applicant.chat(f"申请人消息 {number}")
                else:
                    await sides.inspector.send(type="chat", text=f"检查员消息 {number}")
            except (ConnectionError, RuntimeError, aiohttp.ClientError) as exc:
                if not sides.ending.is_set():
                    inspection.problem(f"chat {number}: {exc!r}")

    async def photo_and_mark() -> None:
        if not await at(plan.snapshot_at_s):
            return
        snap = await call("snapshot", "POST", f"{inspection_path}/snapshots", 201)
        if not await at(plan.mark_at_s):
            return
        await call(
            "checklist mark",
            "POST",
            f"{inspection_path}/checklist/{CHECKLIST_ITEM}",
            200,
            json={
                "done": True,
                "note": "现场全景与照片一致",
                "snapshot_ids": [snap["snapshot_id"]] if snap else [],
            },
        )

    try:
        await asyncio.gather(chats(), photo_and_mark())
    except Exception as exc:  # a problem of this inspection, not of the whole soak
        inspection.problem(f"during the inspection: {exc!r}")


async def end_now(sides: Sides) -> None:
    """End the inspection by the plan's path (not sigterm/kill9: see ``process_round``)."""
    plan, inspection, server = sides.inspection.plan, sides.inspection, sides.server
    inspection_path = f"/api/inspections/{inspection.inspection_id}"
    sides.ending.set()
    by_message = plan.path == "end_message"
    if plan.path in ("applicant_left", "all_disconnected"):
        await sides.applicant.leave()
        if plan.path == "all_disconnected":
            await sides.inspector.close()
        await asyncio.sleep(plan.linger_s)
        by_message = plan.path == "applicant_left" and plan.by_message
    inspection.end_sent_at = time.time()
    if by_message:
        await sides.inspector.send(type="end")
        ended = await sides.inspector.receive("ended", "error", timeout=END_TIMEOUT_S)
        if ended["type"] != "ended":
            inspection.problem(f"end message: {ended}")
        # Then the server closes the socket and waits for the close handshake (up to 10 s) before
        # it chains the end: answer it at once, as a browser does.
        async with asyncio.timeout(END_TIMEOUT_S):
            while not sides.inspector.ws.closed:
                await sides.inspector.ws.receive()
    elif plan.path == "conclusion":
        if plan.outcome == "pass":
            await mark_open_items(server, inspection.inspection_id, INSPECTOR)
        status, body = await server.request(
            "POST",
            f"{inspection_path}/conclusion",
            INSPECTOR,
            json={"outcome": plan.outcome, "reason": "现场情况与申报材料核对完毕。"},
        )
        if status != 201:
            inspection.problem(f"conclusion: {status} {body}")
    else:
        status, body = await server.request("POST", f"{inspection_path}/end", INSPECTOR)
        if status != 200:
            inspection.problem(f"end: {status} {body}")
    await manifest_chained(server, inspection)


async def manifest_chained(server: ApiClient, inspection: Inspection) -> None:
    """Wait until the inspection's manifest entry is in the case's chain."""
    path = f"/api/cases/{inspection.case_id}/audit"
    deadline = time.monotonic() + END_TIMEOUT_S
    seen = 0
    while time.monotonic() < deadline:
        status, page = await server.request(
            "GET", path, INSPECTOR, params={"offset": seen, "limit": 500}
        )
        assert status == 200, page
        for entry in page["entries"]:
            body = entry["body"]
            if entry["kind"] == "manifest" and body["inspection_id"] == inspection.inspection_id:
                return
        seen += len(page["entries"])
        if seen >= page["total"]:
            await asyncio.sleep(0.1)
    inspection.problem(f"no manifest chained within {END_TIMEOUT_S:g} s of the end")


async def live_inspection(
    server: ApiClient,
    plan: Plan,
    join_applicant: JoinApplicant,
    recording_of: Callable[[str], InspectionRecording | None] | None = None,
) -> Inspection:
    """One inspection from invite to end, by one of ``IN_PROCESS_PATHS``."""
    try:
        sides = await join(server, plan, join_applicant)
    except Exception as exc:
        inspection = Inspection(plan)
        inspection.problem(f"could not start: {exc!r}")
        return inspection
    inspection = sides.inspection
    recording = recording_of(inspection.inspection_id) if recording_of is not None else None
    try:
        await sleep_until(sides.streaming_at + plan.end_after_s)
        inspection.streamed_s = time.monotonic() - sides.streaming_at
        await end_now(sides)
    except Exception as exc:
        inspection.problem(f"ending: {exc!r}")
    finally:
        await sides.close()
    if recording is not None:
        inspection.recorded = {r.track: r.segments for r in recording.recorders}
    return inspection


def in_process_recording(server: LiveServer) -> Callable[[str], InspectionRecording | None]:
    def recording_of(inspection_id: str) -> InspectionRecording | None:
        live = server.services.live.get(inspection_id)
        return live.recording if live is not None else None

    return recording_of


async def in_process_round(
    data_dir: Path, plans: Sequence[Plan], join_applicant: JoinApplicant, concurrency: int
) -> list[Inspection]:
    """The plans on one server in the test's event loop, ``concurrency`` at a time."""
    limit = asyncio.Semaphore(concurrency)
    async with running_server(data_dir, segment_s=SEGMENT_S) as server:

        async def one(plan: Plan) -> Inspection:
            async with limit:
                return await live_inspection(
                    server, plan, join_applicant, in_process_recording(server)
                )

        inspections = await asyncio.gather(*(one(plan) for plan in plans))
    return list(inspections)


async def process_round(work: Path, plans: Sequence[Plan], signal: str) -> list[Inspection]:
    """The plans at once on one ``takan serve`` process, stopped by ``signal`` (sigterm or
    kill9) when each has streamed about its planned time (their starts are staggered for that),
    started again on the same data dir, then each inspection ended (some after rejoining)."""
    data_dir = work / "data"
    data_dir.mkdir(parents=True)
    process = ServerProcess(
        data_dir, free_port(), work / "server.log", ("--segment-seconds", f"{SEGMENT_S:g}")
    )
    client = ProcessClient(process.base_url, add_users(data_dir))
    await process.start()
    longest = max(plan.end_after_s for plan in plans)

    async def started(plan: Plan) -> Sides | Inspection:
        await asyncio.sleep(longest - plan.end_after_s)
        try:
            return await join(client, plan, python_applicant)
        except Exception as exc:
            failed = Inspection(plan)
            failed.problem(f"could not start: {exc!r}")
            return failed

    try:
        joined = await asyncio.gather(*(started(plan) for plan in plans))
        live = [sides for sides in joined if isinstance(sides, Sides)]
        await sleep_until(max(s.streaming_at + s.inspection.plan.end_after_s for s in live))
        for sides in live:
            sides.inspection.streamed_s = time.monotonic() - sides.streaming_at
            sides.ending.set()
        if signal == "kill9":
            await process.kill9()
        else:
            await process.stop()  # SIGTERM, and wait for the exit
        await asyncio.gather(*(sides.close() for sides in live))
        await process.start()
        await asyncio.gather(*(end_after_restart(client, sides) for sides in live))
    finally:
        await process.stop()
    inspections = [s if isinstance(s, Inspection) else s.inspection for s in joined]
    if any(inspection.problems for inspection in inspections):
        log = (work / "server.log").read_text(errors="replace").splitlines()
        errors = [line for line in log if " ERROR " in line or "Traceback" in line]
        for inspection in inspections:
            if inspection.problems and errors:
                inspection.problem("server log: " + " | ".join(errors[-5:]))
    return inspections


async def end_after_restart(server: ApiClient, sides: Sides) -> None:
    inspection, plan = sides.inspection, sides.inspection.plan
    try:
        if plan.resume_s is not None:
            applicant = await python_applicant(server, sides.invite)
            inspector = await watching_inspector(
                server.ws_url, await server.token(INSPECTOR), sides.invite
            )
            try:
                await sleep_until(await video_seen(inspector, "after the restart") + plan.resume_s)
                inspection.end_sent_at = time.time()
                status, body = await server.request(
                    "POST", f"/api/inspections/{inspection.inspection_id}/end", INSPECTOR
                )
            finally:
                await applicant.leave()
                await inspector.close()
        else:
            await asyncio.sleep(plan.linger_s)
            inspection.end_sent_at = time.time()
            status, body = await server.request(
                "POST", f"/api/inspections/{inspection.inspection_id}/end", INSPECTOR
            )
        if status != 200:
            inspection.problem(f"end after the restart: {status} {body}")
        await manifest_chained(server, inspection)
    except Exception as exc:
        inspection.problem(f"after the restart: {exc!r}")


async def start_once_more(data_dir: Path) -> None:
    """Start a server on the data dir and stop it: it uploads what the spool still holds and
    recovers what a recording left open, as the next start of a real server does."""
    app = create_app(Settings(data_dir=data_dir, port=0))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await runner.cleanup()


# afterwards


def _last_line(*texts: str) -> str:
    lines = [line for text in texts for line in text.strip().splitlines() if line.strip()]
    failed = [line for line in lines if line.startswith("FAILED")]
    return (failed or lines or ["(no output)"])[-1]


async def check_data_dir(
    data_dir: Path, inspections: Sequence[Inspection], exports: Path, limit: asyncio.Semaphore
) -> None:
    """Everything the soak demands of each case in a stopped server's data dir."""
    leftovers = spooled(data_dir)
    await start_once_more(data_dir)
    await asyncio.to_thread(exports.mkdir, parents=True, exist_ok=True)
    archive = LocalStorage(data_dir / ARCHIVE_DIR)

    async def check(inspection: Inspection) -> None:
        if not inspection.case_id:
            return
        case_id = inspection.case_id
        for key in leftovers.get(case_id, []):
            inspection.problem(f"left in the spool by a clean stop: {key}")
        facts(archive, inspection)
        async with limit:
            code, out, err = await takan("verify", case_id, "--data", str(data_dir))
            if code != 0:
                inspection.problem(f"takan verify --data: {_last_line(out, err)}")
            package = exports / f"{case_id}.zip"
            code, out, err = await takan(
                "export", case_id, "--data", str(data_dir), "-o", str(package)
            )
            if code != 0:
                inspection.problem(f"takan export: {_last_line(out, err)}")
                return
            code, out, err = await takan("verify", str(package))
            if code != 0:
                inspection.problem(f"takan verify EXPORT.zip: {_last_line(out, err)}")

    await asyncio.gather(*(check(inspection) for inspection in inspections))


def spooled(data_dir: Path) -> dict[str, list[str]]:
    """Objects still in the spool (not yet uploaded), by case."""
    root = data_dir / SPOOL_DIR / "objects"
    found: dict[str, list[str]] = {}
    for path in sorted(root.rglob("*")) if root.is_dir() else []:
        if path.is_file():
            key = path.relative_to(root).as_posix()
            found.setdefault(key.split("/")[1], []).append(key)
    return found


def facts(archive: LocalStorage, inspection: Inspection) -> None:
    """Chained segments per track, their plausibility, and end → signed from the chain."""
    case_id, inspection_id = inspection.case_id, inspection.inspection_id
    entries = [json.loads(archive.get(k)) for k in archive.list(layout.chain_prefix(case_id))]
    ours = [e for e in entries if e["body"].get("inspection_id") == inspection_id]
    segments = Counter(e["body"]["track"] for e in ours if e["kind"] == "segment")
    gaps = Counter(e["body"]["track"] for e in ours if e["kind"] == "gap")
    runs = sum(1 for e in ours if e["kind"] == "recording_started")
    inspection.chained = {track: segments[track] for track in layout.TRACKS}
    manifests = [e for e in ours if e["kind"] == "manifest"]
    ended = [e for e in ours if e["kind"] == "ended"]
    if len(manifests) != 1 or len(ended) != 1:
        inspection.problem(f"{len(ended)} ended and {len(manifests)} manifest entries, not 1 each")
        return
    started = min(wall(e["at"]) for e in ours if e["kind"] == "recording_started")
    span_s = wall(ended[0]["at"]) - started
    # A kill -9 may leave a track's only segment with nothing readable on disk: then its
    # ``recovered`` entry (readable false) is what the track left.
    recovered = Counter(e["body"]["track"] for e in ours if e["kind"] == "recovered")
    for track in layout.TRACKS:
        count = segments[track]
        # Each segment but a run's last, or one a gap closed, holds at least SEGMENT_S of media.
        most = math.ceil(span_s / SEGMENT_S) + runs + gaps[track] + 1
        if count + recovered[track] == 0 or count > most:
            inspection.problem(
                f"{track}: {count} segments chained over {span_s:.1f} s"
                f" ({recovered[track]} recovered, {gaps[track]} gaps, {runs} recordings)"
            )
    if inspection.recorded is not None and inspection.recorded != inspection.chained:
        inspection.problem(
            f"recorders closed {inspection.recorded} segments, the chain has {inspection.chained}"
        )
    manifest = manifests[0]
    checkpoints = [
        json.loads(archive.get(key))["checkpoint"]
        for key in archive.list(layout.checkpoint_prefix(case_id))
    ]
    signed = [c for c in checkpoints if c["seq"] >= manifest["seq"]]
    if not signed:
        inspection.problem("no checkpoint signs the manifest entry")
    elif inspection.end_sent_at is not None:
        done = max(wall(manifest["at"]), min(wall(c["at"]) for c in signed))
        inspection.end_to_signed_s = done - inspection.end_sent_at


def wall(text: str) -> float:
    return parse_utc(text).timestamp()


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def summary(seed: int, inspections: Sequence[Inspection], started: float) -> str:
    paths = Counter(inspection.plan.path for inspection in inspections)
    latencies = [i.end_to_signed_s for i in inspections if i.end_to_signed_s is not None]
    lines = [
        f"soak seed {seed} (TAKAN_SOAK_SEED={seed} replays it): {len(inspections)} inspections"
        f" in {time.monotonic() - started:.0f} s, "
        + ", ".join(f"{path} {paths[path]}" for path in PATHS if paths[path]),
        f"  streamed {min(i.streamed_s for i in inspections):.1f}"
        f"-{max(i.streamed_s for i in inspections):.1f} s before the end;"
        f" segments chained per inspection (applicant video):"
        f" {sorted(i.chained.get('applicant-video', 0) for i in inspections)}",
    ]
    if latencies:
        lines.append(
            f"  end request sent -> manifest chained and checkpoint signed (system wall clock,"
            f" n={len(latencies)}): p50 {percentile(latencies, 0.5) * 1000:.0f} ms,"
            f" p95 {percentile(latencies, 0.95) * 1000:.0f} ms,"
            f" max {max(latencies) * 1000:.0f} ms"
        )
        by_path = {
            path: [i.end_to_signed_s for i in inspections if i.plan.path == path] for path in PATHS
        }
        lines.append(
            "    by path (p50/max ms): "
            + ", ".join(
                f"{path} {percentile(times, 0.5) * 1000:.0f}/{max(times) * 1000:.0f}"
                for path, values in by_path.items()
                if (times := [t for t in values if t is not None])
            )
        )
    failed = [i for i in inspections if i.problems]
    lines.append(f"  {len(failed)} of {len(inspections)} inspections had problems")
    return "\n".join(lines)


def problems(seed: int, inspections: Sequence[Inspection]) -> str:
    lines = [
        f"{i.plan.describe()} (case {i.case_id or '-'}): {problem}"
        for i in inspections
        for problem in i.problems
    ]
    return f"soak seed {seed}, {len(lines)} problems:\n" + "\n".join(lines)
