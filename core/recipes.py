"""A stored trial as a self-contained training recipe.

Pure and torch-free, so the CLI export and the dashboard's download button produce the
same file from the same row.
"""

from __future__ import annotations

import json
import math
from typing import Any, Mapping

import yaml

RECIPE_VERSION = 1


def recipe_from_row(row: Mapping[str, Any], *, storage_url: str, budget: str | None = None) -> dict[str, Any]:
    """Build the recipe of one completed trial.

    Args:
        row: a row of `load_results()` (a pandas Series or a mapping).
        storage_url: where the study lives, with any password already redacted.
        budget: the budget the trial was chosen under, as the user wrote it.

    Returns:
        A JSON/YAML-ready dict: `config` rebuilds the trial with `TrialConfig.from_dict`;
        `data` is the study's data description (tasks.data_spec; absent for rows recorded
        before data descriptions, which read the generated benchmark); `expected` is what the
        search measured, with the digest of the data it was measured on. For a configuration
        trained with several seeds (a row of `core.seeds.by_configuration`), the scores are the
        means, with `score_std`, `seeds` and each seed's score (`seed_scores`).
    """
    task_scores = row.get("task_scores") or {}
    inputs = (row.get("environment") or {}).get("inputs") or {}
    recipe = {
        "recipe_version": RECIPE_VERSION,
        "source": {
            "study": str(row["study_name"]),
            "trial_number": int(row["trial_number"]),
            "storage": storage_url,
            "budget": budget,
        },
        "config": row["config"],
        "expected": {
            "score": _plain(row.get("score")),
            "task_scores": {str(k): _plain(v) for k, v in task_scores.items()},
            "trainable_params": int(row["trainable_params"]),
            "total_params": int(row["total_params"]),
            "trainable_pct": _plain(row["trainable_pct"]),
        },
    }
    seeds = row.get("seeds")
    if seeds is not None and int(seeds) >= 2:
        recipe["expected"].update(
            seeds=int(seeds),
            score_std=_plain(row.get("score_std")),
            seed_scores={str(k): _plain(v) for k, v in (row.get("seed_scores") or {}).items()},
        )
    if inputs.get("data"):  # the study's data description: search.train reads the same data
        recipe["data"] = inputs["data"]
        recipe["expected"]["data_files"] = inputs.get("data_files")
    return recipe


def dump_recipe(recipe: Mapping[str, Any], fmt: str) -> str:
    """Serialise a recipe as "yaml" or "json" text (keys in a stable order)."""
    if fmt == "json":
        return json.dumps(recipe, indent=2) + "\n"
    if fmt == "yaml":
        return yaml.safe_dump(dict(recipe), sort_keys=False)
    raise ValueError(f"recipe format must be 'yaml' or 'json', got {fmt!r}")


def _plain(value: Any) -> float | None:
    # numpy scalars and NaN do not survive YAML/JSON as users expect.
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value
