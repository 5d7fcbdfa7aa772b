"""A recipe in JSON (a run folder's recipe.json, or search.export --out x.json) reads its numbers
as numbers: YAML 1.1 would read JSON's 1e-06 as the string "1e-06"."""

from __future__ import annotations

import json

from models.config import TrialConfig
from training.recipe_run import load_recipe


def test_a_json_recipe_keeps_exponent_numbers_as_floats(tmp_path):
    config = TrialConfig(backbone="tiny-clip+tiny-t5", tasks=("vqa",), method="lora", method_params={"rank": 4})
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps({"config": config.to_dict()}))
    assert "1e-06" in path.read_text()
    _, loaded = load_recipe(path)
    assert loaded.training.adam_eps == 1e-6 and isinstance(loaded.training.adam_eps, float)
    assert loaded == config
