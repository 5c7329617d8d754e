"""The store: every repository over one open database, chosen by the ``--database`` setting."""

from __future__ import annotations

from pathlib import Path

from server.store.attempts import Attempts
from server.store.backend import Database
from server.store.case_rows import CaseIndex
from server.store.case_search import CaseQuery, SearchPage, search
from server.store.cases import Cases
from server.store.evidence import Evidence
from server.store.inspections import Inspections, Participants
from server.store.nodes import Nodes
from server.store.reports import Reports
from server.store.templates import Templates
from server.store.users import Users

SQLITE_FILE = "takan.sqlite3"
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


class StoreUrlError(ValueError):
    """A ``--database`` value that names no database Takan can open."""


class Store:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.users = Users(db)
        self.cases = Cases(db)
        self.inspections = Inspections(db)
        self.participants = Participants(db)
        self.evidence = Evidence(db)
        self.reports = Reports(db)
        self.templates = Templates(db)
        self.case_index = CaseIndex(db)
        self.nodes = Nodes(db)
        self.attempts = Attempts(db)

    @property
    def engine(self) -> str:
        return self.db.dialect.name

    async def search(self, query: CaseQuery, owner: int | None) -> SearchPage:
        return await search(self.db, query, owner)

    def close(self) -> None:
        self.db.close()


def check_database_url(url: str) -> str:
    """``url`` if it names a database Takan can open ("" is the data dir's SQLite file)."""
    if url == "" or url.startswith(POSTGRES_SCHEMES):
        return url
    raise StoreUrlError(
        "--database must be empty (SQLite in the data dir) or a postgresql://user@host:port/db URL"
    )


def open_sqlite(path: Path) -> Store:
    """The SQLite file at ``path`` (created and migrated)."""
    from server.store.sqlite import SqliteDatabase

    return Store(SqliteDatabase(path))


def open_store(url: str, data_dir: Path) -> Store:
    """Open (creating and migrating) the database: ``url`` "" is ``data_dir``'s SQLite file."""
    if check_database_url(url) == "":
        return open_sqlite(data_dir / SQLITE_FILE)
    from server.store.postgres import PostgresDatabase

    return Store(PostgresDatabase(url))
