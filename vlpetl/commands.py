"""Every user-facing command, with where it lives; descriptions are read from each module's source.

A command is a module with an `if __name__ == "__main__":` block, or a package with a
`__main__.py`; tests/vlpetl/test_vlpetl_commands.py checks that this list names every one.
"""

from __future__ import annotations

import ast
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["COMMANDS", "Command", "describe", "source_file"]


@dataclass(frozen=True)
class Command:
    """`vlpetl NAME ARGS` runs `python -m MODULE ARGS`."""

    name: str
    module: str


# In the order of a study's life: data and backbones, the search, its results.
COMMANDS: tuple[Command, ...] = (
    Command("tasks", "tasks"),
    Command("pretrain", "models.pretrain"),
    Command("vl-pretrain", "training.vl_pretrain"),
    Command("prepare", "models.prepare"),
    Command("params", "search.params"),
    Command("launch", "search.launch"),
    Command("worker", "search.worker"),
    Command("confirm", "search.confirm"),
    Command("dashboard", "dashboard"),
    Command("screenshot", "dashboard.screenshot"),
    Command("export", "search.export"),
    Command("train", "search.train"),
    Command("predict", "search.predict"),
    Command("evaluate", "search.evaluate"),
)


def source_file(module: str) -> Path:
    """The file `python -m module` runs, found without importing the module or its packages.

    Raises:
        LookupError: the module's top-level package is not importable, or the file is missing.
    """
    top, *rest = module.split(".")
    spec = importlib.util.find_spec(top)  # a top-level name: found, not imported
    if spec is None or not spec.submodule_search_locations:
        raise LookupError(f"command module {module!r}: package {top!r} is not importable")
    for folder in spec.submodule_search_locations:  # a namespace package (models/) may have several
        path = Path(folder).joinpath(*rest)
        for candidate in (path / "__main__.py", path.with_suffix(".py")):
            if candidate.is_file():
                return candidate
    raise LookupError(f"command module {module!r} has no {'/'.join([top, *rest])}.py or __main__.py")


def describe(module: str) -> str:
    """The first paragraph of the module's docstring, on one line (RST ``literals`` as `literals`)."""
    tree = ast.parse(source_file(module).read_text(encoding="utf-8"))
    doc = ast.get_docstring(tree) or ""
    first = " ".join(doc.split("\n\n")[0].split())
    return re.sub(r"``(.+?)``", r"`\1`", first)
