"""Several writers, one chain: a running server and ``takan export`` (and any process sharing
the data directory) append to a case one at a time, each linking to what the others wrote, so
no seq is taken twice, nothing is set aside, and the case verifies."""

from __future__ import annotations

import asyncio
import sys
import textwrap
from pathlib import Path

from recorder.canonical import parse_json
from recorder.chain import ChainEntry
from recorder.storage import LocalStorage
from recorder.verify import verify_case
from server.store.store import open_store
from tests.conftest import current_database, running_server
from tests.integration.evidence_helpers import chain
from tests.integration.recorded_case import record_inspection, takan
from tests.integration.test_export import download_export


async def test_a_cli_export_beside_the_running_server_leaves_one_chain_and_no_wedge(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    async with running_server(data) as server:
        invite = await record_inspection(server)
        case_id = invite["case_id"]
        before = len(await chain(server, case_id))
        code, out, err = await takan(
            "export", case_id, "--data", str(data), "-o", str(tmp_path / "cli.zip")
        )
        assert code == 0, out + err
        # The server appends after the CLI's entry, linking to it: no conflict, no flag.
        await server.services.archive.append(case_id, "note", {"text": "after the export"})
        other = (await server.new_inspection())["case_id"]
        entries = await chain(server, case_id)
        kinds = [e.kind for e in entries[before:]]
        assert kinds.count("exported") == 1
        assert kinds[-1] == "note"
        assert [e.seq for e in entries] == list(range(len(entries)))
        assert "foreign_tail" not in kinds
        async with asyncio.timeout(30):
            await server.services.archive.drain()  # every case keeps uploading
        assert not (data / "spool" / "conflicts").exists()
        assert await asyncio.to_thread(server.services.archive.flagged_cases) == {}
        status, integrity = await server.request(
            "GET", f"/api/cases/{case_id}/integrity", "auditor1"
        )
        assert status == 200, integrity
        assert integrity["state"] == "verified", integrity
        await download_export(server, case_id, "auditor1", tmp_path / "rest.zip")
        assert LocalStorage(data / "archive").list(f"cases/{other}/chain/")


WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from recorder.archive import Archive
    from recorder.signing import Signer
    from recorder.storage import LocalStorage
    from server.store.chain_log import DatabaseChain, writer_name
    from server.store.store import open_store

    async def main(data: Path, name: str, count: int, case: str, database: str) -> None:
        # On SQLite the writers share the data directory (its lock and head ledger); on
        # PostgreSQL each has a directory of its own, as on machines of their own, and they
        # share only the database, the signing key and the archive.
        store = open_store(database, data) if database else None
        if store is not None:
            spool = data / f"node-{name}" / "spool"
        else:
            spool = data / "spool" if name == "server" else data / f"spool-{name}"
        archive = Archive(
            LocalStorage(data / "archive"),
            spool,
            Signer.load_or_create(data / "signing.key"),
            ledger_dir=None if store else data / "spool",
            shared_chain=DatabaseChain(store.db, writer_name(name)) if store else None,
        )
        await archive.start()
        try:
            for n in range(count):
                await archive.append(case, "tick", {"writer": name, "n": n})
            await archive.checkpoint(case)
            await archive.drain()
        finally:
            await archive.stop()
            if store is not None:
                store.close()

    case = sys.argv[4] if len(sys.argv) > 4 else "race"
    database = sys.argv[5] if len(sys.argv) > 5 else ""
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), case, database))
    """
)


async def test_four_processes_appending_at_once_make_one_linear_chain(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "spool").mkdir(parents=True)
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    count = 500
    writers = ["server", "cli-1", "cli-2", "cli-3"]
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            str(script),
            str(data),
            name,
            str(count),
            "race",
            current_database(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for name in writers
    ]
    async with asyncio.timeout(300):  # read every pipe at once: a full one would stall its writer
        results = await asyncio.gather(*(p.communicate() for p in processes))
    for process, (_, err) in zip(processes, results, strict=True):
        assert process.returncode == 0, err.decode()
    report = verify_case(LocalStorage(data / "archive"), "race")
    assert report.chain_entries >= len(writers) * count
    storage = LocalStorage(data / "archive")

    entries = [
        ChainEntry.from_json(parse_json(storage.get(key)))
        for key in storage.list("cases/race/chain/")
    ]
    written = {(e.body["writer"], e.body["n"]) for e in entries if "writer" in e.body}
    assert written == {(name, n) for name in writers for n in range(count)}
    assert not any(data.rglob("conflicts")), "a writer took a seq another had taken"
    assert "foreign_tail" not in {e.kind for e in entries}
    for _, err in results:
        assert not err, err.decode()  # not one error logged
    if current_database():
        # Each seq was taken in the database, by the writer whose entry the archive holds.
        store = open_store(current_database(), data)
        try:
            rows = await store.db.read(
                lambda tx: tx.all(
                    "SELECT seq, data FROM chain_entries WHERE case_id = ? ORDER BY seq",
                    ("race",),
                )
            )
        finally:
            store.close()
        assert [r["seq"] for r in rows] == [e.seq for e in entries]
        assert [bytes(r["data"]) for r in rows] == [
            storage.get(key) for key in storage.list("cases/race/chain/")
        ]
