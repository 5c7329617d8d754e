"""Evidence package throughput against a plain zip of the same files, in one run.

    .venv/bin/python tests/bench/bench_export.py [--mb 100]

Builds a case of about --mb MB through the real recorder API (``bench_verify.build_case``: 4 s
segments of random bytes sized like the recorder's, chained, a signed manifest and checkpoint),
then, twice in turn (the first round warms the page cache, the second is reported):

- plain ``zipfile`` over every object file of the case, media stored and JSON deflated, one pass;
- ``recorder.export.write_package`` of the same objects from the ``LocalStorage`` (streamed
  through ``Storage.open`` and hashed as they go, plus README, public key, the offline page and
  the signed package index) to a file;
- ``takan export CASE --data DATA`` as a subprocess (chaining, signing, interpreter start).

MB/s are object bytes over elapsed time. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script: find `tests`

from recorder.clock import utc_iso
from recorder.export import STORED_SUFFIXES, PackageAssets, write_package
from recorder.signing import Signer
from tests.bench.bench_verify import CASE_ID, BuiltCase, build_case

REPO = Path(__file__).resolve().parents[2]
TAKAN = REPO / ".venv" / "bin" / "takan"


def plain_zip(case: BuiltCase, keys: list[str], target: Path) -> None:
    with zipfile.ZipFile(target, "w") as archive:
        for key in keys:
            stored = key.endswith(STORED_SUFFIXES)
            archive.write(
                case.storage.root / key,
                key,
                compress_type=zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED,
            )


def package(
    case: BuiltCase, keys: list[str], assets: PackageAssets, signer: Signer, target: Path
) -> None:
    with target.open("wb") as handle:
        exported_at = utc_iso(time.time())
        write_package(handle, case.storage, CASE_ID, keys, assets, exported_at, signer)


def cli_export(data_dir: Path, target: Path) -> None:
    command = [str(TAKAN), "export", CASE_ID, "--data", str(data_dir), "-o", str(target)]
    subprocess.run(command, check=True, capture_output=True)


def timed(fn: Callable[..., object], *args: object) -> float:
    started = time.perf_counter()
    fn(*args)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=int, default=100, help="segment megabytes to build")
    args = parser.parse_args()
    assets = PackageAssets.from_web_dir(REPO / "web")
    with tempfile.TemporaryDirectory(prefix="takan-bench-export-") as tmp:
        root = Path(tmp)
        data_dir = root / "data"
        case = asyncio.run(build_case(data_dir, args.mb))
        signer = Signer.load_or_create(data_dir / "signing.key")  # the case's, as `takan export`'s
        keys = case.storage.list(f"cases/{CASE_ID}/")
        megabytes = case.object_bytes / 1e6
        print(
            f"case: {case.objects} objects, {megabytes:.1f} MB"
            f" ({case.segment_bytes / 1e6:.1f} MB of segments), built in {case.build_s:.1f} s"
        )
        results: dict[str, float] = {}
        for _ in range(2):
            results = {
                "plain zipfile": timed(plain_zip, case, keys, root / "plain.zip"),
                "write_package": timed(package, case, keys, assets, signer, root / "package.zip"),
                "takan export (CLI)": timed(cli_export, data_dir, root / "cli.zip"),
            }
        baseline = results["plain zipfile"]
        print(f"{'':<20} {'seconds':>8} {'MB/s':>8} {'vs plain zip':>13}")
        for name, seconds in results.items():
            print(
                f"{name:<20} {seconds:8.3f} {megabytes / seconds:8.1f} {seconds / baseline:12.2f}x"
            )
        sizes = {p.name: p.stat().st_size / 1e6 for p in (root / "plain.zip", root / "package.zip")}
        print("zip sizes (MB): " + ", ".join(f"{k} {v:.1f}" for k, v in sizes.items()))
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
