"""Every package `src/headwater` imports is installed by `pip install .` (no extras).

The test environment has the dev extras, so a module imported at run time that only
a dev extra brings (httpx, once) passes every other test and fails `make demo` on a
clean machine. This reads each module's imports and checks that the package providing
each one is in the closure of headwater's runtime requirements.
"""

from __future__ import annotations

import ast
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

SRC = Path(__file__).resolve().parent.parent / "src" / "headwater"


def imported_top_levels() -> dict[str, list[str]]:
    """Top-level module names imported anywhere in the package, with a file importing each."""
    found: dict[str, list[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], []).append(str(path.relative_to(SRC)))
    return found


def runtime_closure() -> set[str]:
    """Distributions `pip install .` brings: the requirements without extras, recursively
    (with the extras a requirement names, such as pyiceberg[sql-sqlite])."""
    seen: set[tuple[str, frozenset[str]]] = set()
    todo: list[tuple[str, frozenset[str]]] = [("headwater", frozenset())]
    names: set[str] = set()
    while todo:
        name, extras = todo.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        names.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for line in requires:
            req = Requirement(line)
            wanted = req.marker is None or any(
                req.marker.evaluate({"extra": extra}) for extra in [*extras, ""]
            )
            if wanted:
                todo.append((canonicalize_name(req.name), frozenset(req.extras)))
    return names


def test_every_import_is_a_runtime_dependency() -> None:
    providers = metadata.packages_distributions()
    closure = runtime_closure()
    missing = {}
    for module, files in imported_top_levels().items():
        if module in sys.stdlib_module_names or module in ("headwater", "__future__"):
            continue
        dists = {canonicalize_name(d) for d in providers.get(module, [])}
        assert dists, f"{module} (imported in {files[0]}) is not installed at all"
        if not dists & closure:
            missing[module] = (sorted(dists), files[0])
    assert not missing, (
        f"imported but only in dev extras (add to [project] dependencies): {missing}"
    )


def test_the_check_sees_a_dev_only_package() -> None:
    """pytest is in the dev extra only: the closure must not contain it."""
    assert "pytest" not in runtime_closure()
    assert {"duckdb", "pyarrow", "pyiceberg", "sqlalchemy"} <= runtime_closure()
