"""Where a server's CPU goes: py-spy samples of the server process, summarised.

py-spy is a diagnosis tool, not a project dependency: when it is not installed (next to the
interpreter or on PATH), profiling is skipped with a note.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.bench._harness import PYTHON, ServerProcess, print_table

RATE_HZ = 100
_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


@dataclass
class ServerProfile:
    executable: str
    workdir: Path
    gil_only: bool = False
    outputs: list[tuple[Path, float, str]] = field(default_factory=list)

    @classmethod
    def create(cls, workdir: Path, gil_only: bool = False) -> ServerProfile | None:
        candidate = Path(PYTHON).parent / "py-spy"
        executable = str(candidate) if candidate.exists() else shutil.which("py-spy")
        if executable is None:
            print("profile: py-spy is not installed; skipped (pip install py-spy to diagnose)")
            return None
        return cls(executable, workdir, gil_only)

    @contextlib.asynccontextmanager
    async def recording(self, server: ServerProcess, seconds: float) -> AsyncIterator[None]:
        output = self.workdir / f"py-spy-{server.pid}.txt"
        process = await asyncio.create_subprocess_exec(
            self.executable,
            "record",
            "--pid",
            str(server.pid),
            "--duration",
            str(max(1, round(seconds))),
            "--rate",
            str(RATE_HZ),
            "--format",
            "raw",
            "--nonblocking",
            "--threads",
            *(["--gil"] if self.gil_only else []),
            "--output",
            str(output),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            yield
        finally:
            try:
                await asyncio.wait_for(process.wait(), seconds + 15)
            except TimeoutError:
                process.kill()
                await process.wait()
        self.outputs.append((output, max(1, round(seconds)), server.name))

    def report(self, measured_cpu: float, top: int = 18) -> None:
        """Print the busiest threads, files and functions; ``measured_cpu`` (% of a core, from
        /proc) scales the shares, because py-spy counts some waiting threads as busy."""
        for output, seconds, name in self.outputs:
            if not output.exists():
                print(f"profile: py-spy wrote nothing for {name} (permissions?)")
                continue
            only = ", only the thread holding the GIL" if self.gil_only else ""
            print(
                f"\nwhere the {name} server's CPU goes (py-spy, {RATE_HZ} Hz, {seconds:g} s{only}):"
            )
            self._summarise(output, seconds, measured_cpu, top)

    @staticmethod
    def _summarise(output: Path, seconds: float, measured_cpu: float, top: int) -> None:
        threads: Counter[str] = Counter()
        leaf_files: Counter[str] = Counter()
        leaf_functions: Counter[str] = Counter()
        idle = busy = 0
        for line in output.read_text(errors="replace").splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            count = int(count_text)
            parsed = [_FRAME.match(frame) for frame in stack.split(";")]
            frames = [(m["function"], _short(m["file"])) for m in parsed if m is not None]
            if not frames:
                continue
            function, file = frames[-1]
            if f"{function.rsplit('.', 1)[-1]} ({file})" in IDLE_LEAVES:
                idle += count
                continue
            busy += count
            main = not any(f == "threading.py" and fn.endswith("_bootstrap") for fn, f in frames)
            threads["event loop thread" if main else "other threads"] += count
            leaf_files[file] += count
            leaf_functions[f"{function} ({file})"] += count
        print(
            f"samples: {busy} busy ({busy / (seconds * RATE_HZ) * 100:.0f}% of a core as py-spy "
            f"sees it), {idle} in known blocking waits (left out); measured by /proc: "
            f"{measured_cpu:.1f}% of a core; '~%core' = share of busy samples x measured"
        )

        def rows(counter: Counter[str], limit: int) -> list[list[str]]:
            return [
                [f"{100 * c / busy:.1f}", f"{measured_cpu * c / busy:.1f}", name]
                for name, c in counter.most_common(limit)
            ]

        if busy:
            print_table(["% busy", "~%core", "thread"], rows(threads, 2))
            print_table(["% busy", "~%core", "file (self time)"], rows(leaf_files, top))
            print_table(["% busy", "~%core", "function (self time)"], rows(leaf_functions, top))


# Leaf frames where a thread is blocked, not working (py-spy counts some of them as active).
IDLE_LEAVES = frozenset(
    {
        "wait (threading.py)",
        "select (selectors.py)",
        "_worker (concurrent/futures/thread.py)",
        "get (queue.py)",
        "_wait_for_tstate_lock (threading.py)",
    }
)


def _short(path: str) -> str:
    for marker in ("site-packages/", "lib/python3.11/", "/work/main/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path
