"""models/ imports nothing of ours above it: not tasks, training, search, storage or the dashboard.

Dependencies point one way (ARCHITECTURE.md): training and search build on models, so models
may not reach back into them, nor into the data layer (tasks) or Optuna and the database.
Read from the source (ast), so every import counts, the ones inside functions and under
TYPE_CHECKING included, and a new module that breaks the rule fails here by name and line.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {"tasks", "training", "search", "storage", "dashboard", "optuna", "sqlalchemy"}
# The documented command names `python -m models.prepare` and `python -m models.pretrain` are
# kept as entry points into training, where those commands now live; they may import training
# and nothing else above models, and no module may import them.
ENTRY_POINTS = {"models/prepare.py": {"training"}, "models/pretrain/__main__.py": {"training"}}


def _imports(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """(line, module name) of every import, and of every importlib.import_module("constant")."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in ("import_module", "__import__"):
            if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                yield node.lineno, node.args[0].value


def _sources(*packages: str) -> Iterator[tuple[str, ast.Module]]:
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield path.relative_to(ROOT).as_posix(), ast.parse(path.read_text(), str(path))


def test_models_imports_nothing_above_it() -> None:
    found = []
    for where, tree in _sources("models"):
        allowed = ENTRY_POINTS.get(where, set())
        for line, module in _imports(tree):
            top = module.split(".")[0]
            if top in FORBIDDEN and top not in allowed:
                found.append(f"{where}:{line} imports {module}")
    assert found == [], "models must not import these (move the code to training/, or the shared type below both)"


def test_the_command_entry_points_are_only_run() -> None:
    shims = {"models.prepare", "models.pretrain", "models.pretrain.__main__"}
    found = [
        f"{where}:{line} imports {module}"
        for where, tree in _sources("models", "training", "search", "storage", "dashboard", "tasks", "benchmarks", "tests")
        for line, module in _imports(tree)
        if module in shims
    ]
    assert found == [], "import the commands from training.prepare and training.pretrain.command; models' names are for `python -m` only"


def test_training_and_inference_import_no_command_layer() -> None:
    # search -> inference -> training -> models: the run folder is written by training and read
    # by inference, so neither may reach back into the commands, the database or the dashboard.
    above = {
        "training": {"search", "inference", "storage", "dashboard", "optuna", "sqlalchemy"},
        "inference": {"search", "storage", "dashboard"},
    }
    found = [
        f"{where}:{line} imports {module}"
        for package, forbidden in above.items()
        for where, tree in _sources(package)
        for line, module in _imports(tree)
        if module.split(".")[0] in forbidden
    ]
    assert found == [], "move the shared code down (core/ or training/), or the caller up"
