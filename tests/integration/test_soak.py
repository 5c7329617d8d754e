"""The soak: inspections through real servers, ended at seeded random moments by every path that
ends one, each case verified on its data dir and its export afterwards (harness: ``soak.py``).

Replay a run with ``TAKAN_SOAK_SEED``; the seed and the end → signed times are printed.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.integration.soak import (
    IN_PROCESS_PATHS,
    PATHS,
    PROCESS_PATHS,
    Inspection,
    Plan,
    check_data_dir,
    in_process_round,
    make_plans,
    problems,
    process_round,
    python_applicant,
    soak_seed,
    summary,
)

# The media path, once: what it stores (joins, consent) runs on both engines in test_signalling.
pytestmark = pytest.mark.single_engine

INSPECTIONS = 35
EACH_PATH_AT_LEAST = 4
IN_PROCESS_PER_SERVER = 9
IN_PROCESS_AT_ONCE = 3
PER_PROCESS_SERVER = 3
CHECKS_AT_ONCE = 2  # takan verify / export subprocesses
SOAK_TIMEOUT_S = 600.0


def chunks(plans: Sequence[Plan], size: int) -> list[list[Plan]]:
    return [list(plans[i : i + size]) for i in range(0, len(plans), size)]


async def test_soak_inspections_ended_at_random_moments_by_every_path_all_verify(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed = soak_seed()
    print(f"soak seed {seed}")
    plans = make_plans(random.Random(seed), PATHS, EACH_PATH_AT_LEAST, INSPECTIONS)
    started = time.monotonic()
    limit = asyncio.Semaphore(CHECKS_AT_ONCE)
    checks: list[asyncio.Task[None]] = []
    done: list[Inspection] = []

    def check(data_dir: Path, inspections: list[Inspection]) -> None:
        done.extend(inspections)
        checks.append(
            asyncio.create_task(
                check_data_dir(data_dir, inspections, data_dir.parent / "exports", limit)
            )
        )

    async def in_process() -> None:
        mine = [plan for plan in plans if plan.path in IN_PROCESS_PATHS]
        for number, chunk in enumerate(chunks(mine, IN_PROCESS_PER_SERVER)):
            data_dir = tmp_path / f"in-process-{number}" / "data"
            check(
                data_dir,
                await in_process_round(data_dir, chunk, python_applicant, IN_PROCESS_AT_ONCE),
            )

    async def by_signal() -> None:
        for signal in PROCESS_PATHS:
            mine = [plan for plan in plans if plan.path == signal]
            for number, chunk in enumerate(chunks(mine, PER_PROCESS_SERVER)):
                work = tmp_path / f"{signal}-{number}"
                check(work / "data", await process_round(work, chunk, signal))

    async with asyncio.timeout(SOAK_TIMEOUT_S):  # a hang fails here, not in CI's own timeout
        await asyncio.gather(in_process(), by_signal())
        await asyncio.gather(*checks)
    with capsys.disabled():
        print("\n" + summary(seed, done, started))
    assert not any(inspection.problems for inspection in done), problems(seed, done)
