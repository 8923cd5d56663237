"""The house: every import points down the rooms ARCHITECTURE.md lists, and no modules import in a circle.

Imports are read from each module's syntax tree, so an import made inside a function (the lazy
ones that keep botocore off a dry run) or under TYPE_CHECKING counts as much as one at the top.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "populator"
ROOM_ROW = re.compile(r"^\| (\d+) \| `populator/([\w.]+?)(?:/|\.py)` \|", re.M)
# The front of the house: the package's own __init__ re-exports the library surface, and
# __main__ runs the command line. Both may reach any room.
FRONT = {"populator", "populator.__main__"}


def rooms() -> dict[str, int]:
    """Room name (`commands`, `events`...) → rank, from ARCHITECTURE.md's table."""
    found = {name: int(rank) for rank, name in ROOM_ROW.findall((ROOT / "ARCHITECTURE.md").read_text())}
    assert len(found) >= 8, found
    return found


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported(name: str, path: Path, known: set[str]) -> set[tuple[str, str]]:
    """(module imported, the names taken from it) for every import of ours in the module."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[tuple[str, str]] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {(alias.name, "") for alias in node.names if alias.name.split(".")[0] == "populator"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if target.split(".")[0] != "populator":
                continue
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                found.add((submodule, "") if submodule in known else (target, alias.name))
    return found


def room_of(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else ""


def graph() -> dict[str, set[tuple[str, str]]]:
    known = modules()
    return {name: imported(name, path, set(known)) for name, path in known.items()}


def test_every_module_imports():
    for name in modules():
        if name != "populator.__main__":  # running it runs the command line
            importlib.import_module(name)


def test_every_module_lives_in_a_room_the_architecture_lists():
    listed = rooms()
    for name in modules():
        if name not in FRONT:
            assert room_of(name) in listed, f"{name}: its room is not in ARCHITECTURE.md's table"
    for room in listed:
        assert (PACKAGE / room).is_dir() or (PACKAGE / f"{room}.py").is_file(), room


def test_imports_point_down_the_rooms():
    rank = rooms()
    wrong = []
    for name, targets in graph().items():
        if name in FRONT:
            continue
        for target, attribute in targets:
            if target == "populator":
                if attribute != "__version__":  # defined before the root package imports anything
                    wrong.append(f"{name} imports {attribute} from the package root")
                continue
            mine, theirs = room_of(name), room_of(target)
            if mine == theirs:
                continue
            if rank[theirs] >= rank[mine]:
                wrong.append(f"{name} (rank {rank[mine]}) imports {target} (rank {rank[theirs]})")
    assert not wrong, "\n".join(wrong)


def test_no_modules_import_each_other_in_a_circle():
    edges = {
        name: {target for target, _ in targets if target != "populator" and target != name}
        for name, targets in graph().items()
        if name not in FRONT
    }
    # Tarjan's strongly connected components: any component of two or more is a circle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in edges.get(node, ()):
            if other not in edges:
                continue
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in edges:
        if node not in index:
            visit(node)
    assert not circles, circles


@pytest.mark.parametrize(
    "source, room",
    [
        ("from ..commands import cli\n", "job"),  # upward
        ("from ..sink import manifest\n", "source"),  # a peer
        ("def f():\n    from ..observe.report import Tally\n", "sink"),  # upward, inside a function
    ],
)
def test_the_check_catches_an_import_that_points_the_wrong_way(tmp_path, source, room):
    path = tmp_path / "populator" / room / "intruder.py"
    path.parent.mkdir(parents=True)
    path.write_text(source)
    name = f"populator.{room}.intruder"
    known = set(modules())
    targets = imported(name, path, known)
    rank = rooms()
    assert any(rank[room_of(target)] >= rank[room] for target, _ in targets), targets


@pytest.mark.parametrize("room", sorted({path.parent.name for path in PACKAGE.glob("*/__init__.py")}))
def test_every_module_is_listed_in_its_rooms_docstring(room: str) -> None:
    """A room's `__init__` says what it holds: every module of it, named in backquotes."""
    init = PACKAGE / room / "__init__.py"
    docstring = ast.get_docstring(ast.parse(init.read_text())) or ""
    named = set(re.findall(r"`(\w+)`", docstring))
    modules_here = {path.stem for path in (PACKAGE / room).glob("*.py") if path.stem != "__init__"}
    assert not modules_here - named, f"{init} does not list {sorted(modules_here - named)}"


@pytest.mark.parametrize("room", sorted({path.parent.name for path in PACKAGE.glob("*/__init__.py")}))
def test_every_module_is_listed_in_its_rooms_row_of_the_architecture(room: str) -> None:
    """ARCHITECTURE.md's table names every module of a room in its row (a merge once garbled one)."""
    rows = [
        line for line in (ROOT / "ARCHITECTURE.md").read_text().splitlines() if f"`populator/{room}/`" in line
    ]
    assert len(rows) == 1, rows
    named = set(re.findall(r"`(\w+)`", rows[0]))
    modules_here = {path.stem for path in (PACKAGE / room).glob("*.py") if path.stem != "__init__"}
    assert not modules_here - named, f"the {room} row does not list {sorted(modules_here - named)}"
