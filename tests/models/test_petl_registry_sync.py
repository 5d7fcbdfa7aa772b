"""The registry and models/petl/ stay in sync: a method file that is not registered fails here."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import models.petl
from models.petl import get_method, method_names, registry
from models.petl.presets import RUN_PRESETS

PETL_DIR = Path(models.petl.__file__).parent


def files_defining_a_method_spec() -> set[str]:
    found = set()
    for path in PETL_DIR.glob("*.py"):
        if path.stem == "registry":
            continue
        tree = ast.parse(path.read_text())
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
        if any(getattr(c.func, "id", getattr(c.func, "attr", None)) == "MethodSpec" for c in calls):
            found.add(path.stem)
    return found


def modules_loaded_by_the_registry() -> set[str]:
    return {module.rsplit(".", 1)[-1] for module in registry._BUILTIN_MODULES}


def test_every_file_defining_a_method_spec_is_loaded_by_the_registry():
    defining = files_defining_a_method_spec()
    assert {"adapter", "baselines", "compacter", "hyperformer", "lora", "prompt"} <= defining
    missing = defining - modules_loaded_by_the_registry()
    assert not missing, f"add {sorted(missing)} to models.petl.registry._BUILTIN_MODULES"


def test_every_registered_method_comes_from_a_petl_file_and_is_complete():
    for name in method_names():
        spec = get_method(name)
        assert Path(inspect.getfile(spec.apply)).parent == PETL_DIR
        assert spec.paper and spec.sharing_modes and spec.learning_rate > 0
        assert spec.config_cls().problems() == [], f"{name}: its default config must be valid"


def test_every_method_declares_a_valid_search_block_and_its_paper_runs():
    from search.space_file import parse_space

    for name in method_names():
        spec = get_method(name)
        assert spec.search, f"{name}: declare its block of the default search space (MethodSpec.search)"
        parse_space({"methods": {name: dict(spec.search)}}, f"{name}'s search block")  # raises on any problem
        assert spec.presets and all(preset.method == name for preset in spec.presets), name


def test_every_run_preset_is_a_valid_configuration():
    for preset in RUN_PRESETS.values():
        get_method(preset.method).make_config(preset.method_params, preset.sharing)
        assert preset.freeze.problems() == []
