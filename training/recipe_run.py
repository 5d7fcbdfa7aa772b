"""Train an exported recipe at full scale, score it on validation and test, save its weights.

The production run behind `python -m search.train`: `load_recipe` reads and validates a recipe
(search.export writes them), `load_recipe_data` reads the data it names, and `train_recipe`
trains it, scores val and test with each task's official metric and writes the run's folder
(its layout: training.run_folder), which `inference.load_run` loads to predict.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path
from typing import Any

import yaml

from tasks._files import write_atomic

__all__ = ["RecipeRun", "check_backbone_weights", "load_recipe", "load_recipe_data", "recipe_data", "train_recipe"]


@dataclasses.dataclass(frozen=True)
class RecipeRun:
    """What `train_recipe` wrote: the metrics (as in `metrics.json`) and where each output went."""

    metrics: dict[str, Any]
    weights: Path
    out: Path

    @property
    def metrics_file(self) -> Path:
        return self.out / "metrics.json"

    @property
    def predictions(self) -> Path:
        return self.out / "predictions"


def load_recipe(path: Path):
    """Read and validate a recipe; returns the recipe and its TrialConfig.

    Every problem of the configuration is listed at once: its layout, the backbone and tasks
    (named against the known ones), the method and its parameters, the training block.

    Raises:
        ValueError: unreadable file, wrong layout or an invalid configuration (all problems listed).
    """
    from models.backbones.backbone_spec import canonical_backbone
    from models.config import ConfigError, SharingMode, TrialConfig
    from models.petl import get_method
    from tasks.data_spec import GENERATED_TASKS, DataSpecError

    if path.is_dir():
        raise ValueError(f"recipe {str(path)!r} is a folder; give the recipe file in it (python -m search.export writes one)")
    if not path.is_file():
        raise ValueError(f"recipe {str(path)!r} does not exist; write one with python -m search.export")
    try:
        text = path.read_text(encoding="utf-8")
        # JSON by its own parser: YAML 1.1 reads JSON's 1e-06 as a string, not a number.
        recipe = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except yaml.MarkedYAMLError as error:  # where, in one line: the parser's own message spans several
        mark = error.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ValueError(f"recipe {str(path)!r} is not valid YAML{where}: {error.problem}; fix it or export it again") from error
    except (yaml.YAMLError, ValueError) as error:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise ValueError(f"recipe {str(path)!r} is not valid YAML/JSON: {' '.join(str(error).split())}") from error
    if not isinstance(recipe, dict) or not isinstance(recipe.get("config"), dict):
        raise ValueError(f"recipe {str(path)!r} has no 'config' mapping; export it with python -m search.export")
    data = recipe["config"]
    problems = []
    backbone = data.get("backbone")
    if backbone is not None:
        try:  # a spec's files are checked as at launch
            canonical_backbone(str(backbone))
        except ConfigError as error:
            problems.append("backbone " + "; ".join(error.problems))
    tasks = data.get("tasks")
    if tasks is not None:
        if not isinstance(tasks, list) or not tasks or not all(isinstance(t, str) for t in tasks):
            problems.append(f"tasks must be a non-empty list of task names, got {tasks!r}")
        elif recipe.get("data") is None:  # exported before data descriptions: the generated benchmark
            if unknown := [t for t in tasks if t not in GENERATED_TASKS]:
                problems.append(
                    f"tasks {unknown} are unknown; supported: {', '.join(GENERATED_TASKS)} (the generated benchmark's; "
                    "a recipe exported from a study on your own data carries its 'data' block)"
                )
        else:
            try:
                known = recipe_data(recipe, tuple(tasks)).names
            except DataSpecError as error:
                problems.extend(f"data: {line}" for line in error.problems)
            else:
                if unknown := [t for t in tasks if t not in known]:
                    problems.append(f"tasks {unknown} are not in the recipe's data; its tasks: {', '.join(known)}")
    config = None
    try:
        config = TrialConfig.from_dict(data)
    except ConfigError as error:
        problems.extend(error.problems)
    # The method's own rules, even when the rest of the config has problems of its own.
    params, sharing = data.get("method_params", {}), data.get("sharing", SharingMode.SINGLE.value)
    try:
        method = get_method(str(data.get("method")))
        if isinstance(params, dict) and sharing in {mode.value for mode in SharingMode}:
            method.make_config(params, SharingMode(sharing))
    except ConfigError as error:
        problems.extend(error.problems)
    if problems:
        raise ValueError(f"recipe {str(path)!r}: " + str(ConfigError(problems)))
    return recipe, config


def recipe_data(recipe: dict, tasks: tuple[str, ...]):
    """The recipe's data description; a recipe without one (exported before they were
    recorded) trains on the generated benchmark.

    Raises:
        DataSpecError: a `data` block this code cannot read, or tasks it does not have.
    """
    from tasks.data_spec import DataSpec, generated_spec

    if recipe.get("data") is None:
        return generated_spec(tasks)
    return DataSpec.from_dict(recipe["data"], "the recipe's data block")


def check_backbone_weights(backbone: str, data_dir: Path) -> None:
    """Raise ValueError naming each missing component of a base-size backbone, before anything is written."""
    from models.location import BackboneLocation
    from models.config import ConfigError

    try:
        BackboneLocation.resolve(backbone, data_dir).require_weights()
    except ConfigError as error:
        # search.train has no --random-init: a recipe trains the weights it names.
        ways = [p for p in error.problems if "--random-init" not in p]
        raise ValueError(f"backbone {backbone!r} of the recipe: " + "; ".join(ways)) from None


def load_recipe_data(recipe: dict, config, data_dir: Path, data_root: Path | None = None):
    """The recipe's data for its tasks, read (every file checked) before anything is written;
    the generated benchmark's description as is (it is generated when the run prepares).

    Raises:
        DatasetError: every problem of the data, one per line.
    """
    from training.environment import load_data

    data = recipe_data(recipe, config.tasks).subset(config.tasks)
    return load_data(data_dir, config.backbone, data, data_root=data_root) if data.generated is None else data


def train_recipe(recipe: dict, config, data, data_dir: Path, out: Path, checkpoints=None, device=None) -> RecipeRun:
    """Train `config` (the recipe's, steps possibly overridden) on `data`, score val and test,
    and write weights, `metrics.json`, the predictions and `recipe.json` under `out`.

    `checkpoints` (a training.checkpoints.CheckpointPlan, from `plan_checkpoints`) checkpoints
    the training under `out/checkpoints/` and resumes it; None trains without. `device` (a
    torch.device; None: CUDA when present) is where it trains and CLIP encodes.

    Raises:
        OSError: an output could not be written (each file is written atomically).
    """
    from core.results import LOSS_WINDOW, learning_curve
    from models.weight_digests import weight_digests
    from models.weights import save_trainable
    from training import run_folder
    from core.software import run_environment
    from tasks.digests import summary
    from training.environment import prepare_environment
    from training.trial import score_model, train_trial

    env = dataclasses.replace(prepare_environment(data_dir, config.backbone, data, device=device), for_search=False)
    trained = train_trial(config, env, checkpoints=checkpoints)
    outcome = trained.outcome
    scores: dict[str, dict[str, float]] = {"val": {}, "test": {}}
    predictions: dict[str, dict[str, dict]] = {}
    for split in scores:
        names = tuple(name for name in config.tasks if split in env.tasks[name].splits)
        # The training's final scoring already predicted each task's whole search split.
        done = {name for name in names if env.tasks[name].search_split == split}
        found: dict[str, dict] = {name: trained.predictions[name] for name in names if name in done}
        split_scores = {name: outcome.task_scores[name] for name in names if name in done}
        todo = tuple(name for name in names if name not in done)
        if todo:
            split_config = dataclasses.replace(config, tasks=todo)
            split_scores.update(
                score_model(trained.model, trained.tokenizer, split_config, env, show_progress=False, split=split, predictions=found)
            )
        scores[split] = {name: split_scores[name] for name in names}
        predictions[split] = found
    weights = save_trainable(trained.model, out, config.to_dict())
    for split, by_task in predictions.items():
        for name, answers in by_task.items():
            rows = env.tasks[name].splits[split].results(answers)
            write_atomic(out / "predictions" / split / f"{name}.json", json.dumps(rows, indent=1, default=str) + "\n")
    metrics = {
        "val": scores["val"],
        "test": scores["test"],
        "score": _mean(scores["val"]),
        "test_score": _mean(scores["test"]),
        "task_scores": scores["val"],
        "search_split_scores": outcome.task_scores,
        "trainable_params": outcome.params.trainable,
        "total_params": outcome.params.total,
        "trainable_pct": outcome.params.trainable_pct,
        "train_seconds": outcome.train_seconds,
        "losses": outcome.losses,
        "data": env.data.to_dict() if env.data is not None else None,
        "data_files": summary(env.inputs),
    }
    write_atomic(out / run_folder.METRICS, json.dumps(metrics, indent=2) + "\n")
    write_atomic(out / run_folder.RECIPE, json.dumps({**recipe, "config": config.to_dict()}, indent=2) + "\n")
    curve = learning_curve(outcome.losses, LOSS_WINDOW, config.training.steps, outcome.evaluations, outcome.evaluation_measure)
    write_atomic(out / run_folder.CURVE, json.dumps(curve or {}, indent=2) + "\n")
    _save_tokenizer(trained.tokenizer, out / run_folder.TOKENIZER)
    backbone = {"name": config.backbone, "random_init": env.location.random_init, **weight_digests(env.location)}
    prompts = {name: env.tasks[name].prompt for name in config.tasks}
    run_folder.write_manifest(out, backbone, {n: p for n, p in prompts.items() if p is not None}, run_environment(str(env.device)))
    return RecipeRun(metrics=metrics, weights=weights, out=out)


def _save_tokenizer(tokenizer, folder: Path) -> None:
    # Written beside and renamed, so that an interrupted save never leaves half a tokenizer.
    partial = folder.with_name(f".{folder.name}-partial")
    shutil.rmtree(partial, ignore_errors=True)
    tokenizer.save_pretrained(str(partial))
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(partial, folder)


def _mean(scores: dict[str, float]) -> float | None:
    return sum(scores.values()) / len(scores) if scores else None
