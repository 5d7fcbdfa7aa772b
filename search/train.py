"""Train an exported recipe at full scale, score it on validation and test, save its weights.

    python -m search.train --recipe best.yaml [--steps N] [--out DIR]

The recipe carries the study's data description (search.export copies it), so the run trains
and scores on the same data as the search with no further flag. `DIR/metrics.json` holds
`{"val": {TASK: score}, "test": {TASK: score}, ...}` with each task's official metric (as the
paper prints it: accuracy in %, CIDEr x 100), and `DIR/predictions/<split>/<task>.json` the
predictions in each task's official results format.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import yaml

from search.cli_common import configure_logging, default_data_dir, fail, fail_lines
from search.export import write_atomic

PROGRAM = "search.train"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m {PROGRAM}", description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--recipe", required=True, type=Path, help="recipe file written by search.export")
    parser.add_argument("--steps", type=int, default=None, help="override the recipe's training steps")
    parser.add_argument("--data-dir", type=Path, default=None, help="benchmark, backbones and features (default ./data)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default <data-dir>/runs/<recipe name>)")
    parser.add_argument(
        "--data-root", type=Path, default=None, metavar="DIR",
        help="where this machine keeps the folder of the study's data file, when not where the study was launched",
    )
    return parser


def load_recipe(path: Path):
    """Read and validate a recipe; returns the recipe and its TrialConfig.

    Every problem of the configuration is listed at once: its layout, the backbone and tasks
    (named against the known ones), the method and its parameters, the training block.

    Raises:
        ValueError: unreadable file, wrong layout or an invalid configuration (all problems listed).
    """
    from models.backbones.presets import PRESETS
    from models.config import ConfigError, SharingMode, TrialConfig
    from models.petl import get_method
    from tasks.data_spec import GENERATED_TASKS, DataSpecError

    if not path.is_file():
        raise ValueError(f"recipe {str(path)!r} does not exist; write one with python -m search.export")
    try:
        recipe = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise ValueError(f"recipe {str(path)!r} is not valid YAML/JSON: {error}") from error
    if not isinstance(recipe, dict) or not isinstance(recipe.get("config"), dict):
        raise ValueError(f"recipe {str(path)!r} has no 'config' mapping; export it with python -m search.export")
    data = recipe["config"]
    problems = []
    backbone = data.get("backbone")
    if backbone is not None and backbone not in PRESETS:
        problems.append(f"backbone {backbone!r} is unknown; known backbones: {', '.join(sorted(PRESETS))}")
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
    from models.build import BackboneLocation
    from models.config import ConfigError

    try:
        BackboneLocation.resolve(backbone, data_dir).require_weights()
    except ConfigError as error:
        # search.train has no --random-init: a recipe trains the weights it names.
        ways = [p for p in error.problems if "--random-init" not in p]
        raise ValueError(f"backbone {backbone!r} of the recipe: " + "; ".join(ways)) from None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.steps is not None and args.steps < 1:
        fail(PROGRAM, f"--steps must be >= 1, got {args.steps}")
    try:
        recipe, config = load_recipe(args.recipe)
    except ValueError as error:
        fail(PROGRAM, str(error))
    if args.steps is not None:
        config = dataclasses.replace(config, training=dataclasses.replace(config.training, steps=args.steps))
    data_dir = (args.data_dir or default_data_dir()).resolve()
    if data_dir.exists() and not data_dir.is_dir():
        fail(PROGRAM, f"--data-dir {str(data_dir)!r} is a file; pass a folder (created when missing)")
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        fail(PROGRAM, f"--out {str(args.out)!r} is a file; pass a folder for the weights, metrics and recipe")
    try:
        check_backbone_weights(config.backbone, data_dir)
    except ValueError as error:
        fail(PROGRAM, str(error))
    if args.data_root is not None and not args.data_root.is_dir():
        fail(PROGRAM, f"--data-root {str(args.data_root)!r} is not a folder; give the folder holding this machine's copy of the data")
    from tasks.errors import DatasetError
    from training.environment import load_data

    data = recipe_data(recipe, config.tasks).subset(config.tasks)
    try:  # every problem of the data, before anything is written
        loaded = load_data(data_dir, config.backbone, data, data_root=args.data_root) if data.generated is None else data
    except DatasetError as error:
        fail_lines(PROGRAM, [f"data of {str(args.recipe)!r}: {line}" for line in str(error).splitlines()])
    out = args.out or data_dir / "runs" / args.recipe.stem
    configure_logging()
    return _train(recipe, config, loaded, data_dir, out)


def _train(recipe: dict, config, data, data_dir: Path, out: Path) -> int:
    import dataclasses as dc

    from models.weights import save_trainable
    from tasks.digests import summary
    from training.environment import prepare_environment
    from training.trial import score_model, train_trial

    env = dc.replace(prepare_environment(data_dir, config.backbone, data), for_search=False)
    trained = train_trial(config, env)
    outcome = trained.outcome
    scores: dict[str, dict[str, float]] = {"val": {}, "test": {}}
    predictions: dict[str, dict[str, dict]] = {}
    for split in scores:
        names = tuple(name for name in config.tasks if split in env.tasks[name].splits)
        if not names:
            continue
        found: dict[str, dict] = {}
        split_config = dc.replace(config, tasks=names)
        scores[split] = score_model(trained.model, trained.tokenizer, split_config, env, show_progress=False, split=split, predictions=found)
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
    write_atomic(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    write_atomic(out / "recipe.json", json.dumps({**recipe, "config": config.to_dict()}, indent=2) + "\n")
    expected = (recipe.get("expected") or {}).get("score")
    expected_text = f" (search measured {expected:.1f})" if isinstance(expected, (int, float)) else ""
    print(f"validation score {_text(metrics['score'])}{expected_text}; {outcome.params.trainable:,} trainable parameters ({outcome.params.trainable_pct:.2f}%)")
    for split in ("val", "test"):
        if scores[split]:
            print(f"  {split}: " + ", ".join(f"{name} {score:.1f}" for name, score in scores[split].items()))
    print(f"weights: {weights}")
    print(f"metrics: {out / 'metrics.json'}")
    print(f"predictions: {out / 'predictions'}")
    return 0


def _mean(scores: dict[str, float]) -> float | None:
    return sum(scores.values()) / len(scores) if scores else None


def _text(score: float | None) -> str:
    return "n/a" if score is None else f"{score:.1f}"


if __name__ == "__main__":
    sys.exit(main())
