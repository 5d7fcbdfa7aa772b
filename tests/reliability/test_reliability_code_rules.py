"""Rules every production module keeps: no pickle from files, SQL only with bound parameters.

Read from the source (ast), so a new module that breaks a rule fails here by name and line.
The behaviour behind the rules is tested with real files and real databases in
test_reliability_security.py.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "dashboard", "inference", "models", "search", "storage", "tasks", "training", "vlpetl", "benchmarks")
# Modules that unpickle whatever a file holds, or run code from it.
UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "joblib", "shelve", "marshal", "cloudpickle"}
# DDL cannot bind identifiers: the migration adds our own schema's columns, quoted by the dialect.
SQL_ALLOWED = {("storage/migrations.py", "ALTER TABLE")}


def _modules() -> Iterator[tuple[str, ast.Module]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield str(path.relative_to(ROOT)), ast.parse(path.read_text(), str(path))


def _calls(tree: ast.Module) -> Iterator[tuple[str, ast.Call]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            owner = getattr(func.value, "id", "") if isinstance(func, ast.Attribute) else ""
            yield f"{owner}.{name}" if owner else name, node


def _keyword(call: ast.Call, name: str):
    return next((k.value.value for k in call.keywords if k.arg == name and isinstance(k.value, ast.Constant)), None)


def test_no_module_unpickles_files() -> None:
    found = []
    for where, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found += [f"{where}:{node.lineno} import {a.name}" for a in node.names if a.name.split(".")[0] in UNSAFE_MODULES]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in UNSAFE_MODULES:
                found.append(f"{where}:{node.lineno} from {node.module}")
        for name, call in _calls(tree):
            line = f"{where}:{call.lineno} {name}(...)"
            if name == "torch.load" and _keyword(call, "weights_only") is not True:
                found.append(line + " without weights_only=True")
            if name in ("np.load", "numpy.load") and _keyword(call, "allow_pickle") is not False:
                found.append(line + " without allow_pickle=False")
            if name.endswith("read_pickle") or name in ("yaml.load", "yaml.unsafe_load", "yaml.full_load"):
                found.append(line + "; use safetensors, JSON or yaml.safe_load")
    assert found == [], "weights and data load only through safetensors, torch.load(weights_only=True) or plain formats"


def _dynamic(node: ast.AST) -> bool:
    """A string built at run time: an f-string, % or + formatting, or str.format."""
    if isinstance(node, ast.JoinedStr) or isinstance(node, ast.BinOp):
        return True
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format"


def test_sql_text_is_constant_and_values_are_bound() -> None:
    found = []
    for where, tree in _modules():
        for name, call in _calls(tree):
            short = name.rsplit(".", 1)[-1]
            if short not in ("text", "execute", "exec_driver_sql", "executescript") or not call.args:
                continue
            sql = call.args[0]
            source = ast.unparse(sql)
            if short == "text" and not (isinstance(sql, ast.Constant) and isinstance(sql.value, str)):
                found.append(f"{where}:{call.lineno} text({source}): SQL text must be a constant; bind values as :name")
            elif _dynamic(sql) and not any(where == f and marker in source for f, marker in SQL_ALLOWED):
                found.append(f"{where}:{call.lineno} {name}({source}): SQL built from strings; bind values instead")
    assert found == []
