"""The layout is the architecture: imports run one way through server/'s rooms (see
docs/architecture.md):

cli → http → reports → inspection → live → security → store → the shared root (settings,
services, errors, clock, consent_notice, ice_servers). ``recorder/`` never imports ``server/``;
``client/`` imports neither.
Imports under ``if TYPE_CHECKING:`` are for types only and do not count.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ROOMS = ["root", "store", "security", "live", "inspection", "reports", "http", "cli"]
ROOT_MODULES = {"settings", "services", "errors", "clock", "consent_notice", "ice_servers"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def python_files(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def runtime_imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, imported module) of every import that runs, at any depth."""
    package = module_name(path).rpartition(".")[0] if path.name != "__init__.py" else None

    def visit(node: ast.AST) -> Iterator[tuple[int, str]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for other in child.orelse:
                    yield from visit(other)
                continue
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield child.lineno, alias.name
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = (package or module_name(path)).split(".")
                    anchor = anchor[: len(anchor) - child.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                # "from server.http import api" imports server.http.api when that is a module
                for alias in child.names:
                    candidate = f"{base}.{alias.name}"
                    as_path = REPO / Path(*candidate.split("."))
                    exists = as_path.with_suffix(".py").exists() or as_path.is_dir()
                    yield child.lineno, candidate if exists else base
            yield from visit(child)

    yield from visit(ast.parse(path.read_text(), str(path)))


def room_of(module: str) -> str:
    parts = module.split(".")
    if parts[0] != "server" or len(parts) < 2:
        raise ValueError(module)
    if parts[1] in ROOT_MODULES:
        return "root"
    if parts[1] not in ROOMS:
        raise AssertionError(f"{module} is in no room: put it in one of {ROOMS[1:]}")
    return parts[1]


def test_every_server_module_lives_in_a_room() -> None:
    for path in python_files("server"):
        module = module_name(path)
        if module != "server":
            room_of(module)


def test_server_imports_point_one_way_through_the_rooms() -> None:
    against = []
    for path in python_files("server"):
        importer = module_name(path)
        if importer == "server":
            continue
        rank = ROOMS.index(room_of(importer))
        for line, imported in runtime_imports(path):
            if not imported.startswith("server.") or imported == "server":
                continue
            if ROOMS.index(room_of(imported)) > rank:
                against.append(f"{path.relative_to(REPO)}:{line} imports {imported}")
    assert against == [], "imports against the rooms' direction:\n" + "\n".join(against)


@pytest.mark.parametrize(
    ("package", "forbidden"), [("recorder", ("server",)), ("client", ("server", "recorder"))]
)
def test_recorder_and_client_never_import_the_server(
    package: str, forbidden: tuple[str, ...]
) -> None:
    found = [
        f"{path.relative_to(REPO)}:{line} imports {imported}"
        for path in python_files(package)
        for line, imported in runtime_imports(path)
        if imported.split(".")[0] in forbidden
    ]
    assert found == []


def test_no_module_imports_itself_round_a_circle() -> None:
    graph: dict[str, set[str]] = {}
    for package in ("server", "recorder", "client"):
        for path in python_files(package):
            module = module_name(path)
            graph[module] = {
                imported
                for _, imported in runtime_imports(path)
                if imported.split(".")[0] in ("server", "recorder", "client") and imported != module
            }
    state: dict[str, int] = {}
    circles: list[str] = []

    def walk(module: str, trail: list[str]) -> None:
        state[module] = 1
        for imported in sorted(graph.get(module, ())):
            if imported not in graph:
                continue
            if state.get(imported) == 1:
                circles.append(" → ".join([*trail[trail.index(imported) :], imported]))
            elif imported not in state:
                walk(imported, [*trail, imported])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            walk(module, [module])
    assert circles == [], "\n".join(circles)


def test_the_command_line_loads_the_s3_client_only_for_s3_storage() -> None:
    """`takan verify` of a local archive starts without importing the MinIO client (a tenth of
    a second of every run, more than hashing a 100 MB case takes)."""
    import subprocess
    import sys

    probe = (
        "import sys, server.cli.main;"
        "from recorder.storage_url import open_storage;"
        "open_storage('file:///tmp');"
        "print('minio' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
