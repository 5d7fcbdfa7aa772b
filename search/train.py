"""Train an exported recipe at full scale, evaluate it and save its trainable weights.

    python -m search.train --recipe best.yaml [--steps N] [--out DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import yaml

from search.cli_common import configure_logging, default_data_dir, fail
from search.export import write_atomic

PROGRAM = "search.train"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m {PROGRAM}", description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", required=True, type=Path, help="recipe file written by search.export")
    parser.add_argument("--steps", type=int, default=None, help="override the recipe's training steps")
    parser.add_argument("--data-dir", type=Path, default=None, help="benchmark, backbones and features (default ./data)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default <data-dir>/runs/<recipe name>)")
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
    from training.environment import SUPPORTED_TASKS

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
        if not isinstance(tasks, list) or not tasks:
            problems.append(f"tasks must be a non-empty list, got {tasks!r}")
        elif unknown := [t for t in tasks if t not in SUPPORTED_TASKS]:
            problems.append(f"tasks {unknown} are unknown; supported: {', '.join(SUPPORTED_TASKS)}")
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
    configure_logging()

    from models.weights import save_trainable
    from training.environment import prepare_environment
    from training.trial import run_trial

    out = args.out or data_dir / "runs" / args.recipe.stem
    env = prepare_environment(data_dir, config.backbone, config.tasks)
    outcome = run_trial(config, env)
    weights = save_trainable(outcome.model, out, config.to_dict())
    metrics = {
        "score": outcome.score,
        "task_scores": outcome.task_scores,
        "trainable_params": outcome.params.trainable,
        "total_params": outcome.params.total,
        "trainable_pct": outcome.params.trainable_pct,
        "train_seconds": outcome.train_seconds,
        "losses": outcome.losses,
    }
    write_atomic(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    write_atomic(out / "recipe.json", json.dumps({**recipe, "config": config.to_dict()}, indent=2) + "\n")
    expected = (recipe.get("expected") or {}).get("score")
    expected_text = f" (search measured {expected:.1f})" if isinstance(expected, (int, float)) else ""
    print(f"score {outcome.score:.1f}{expected_text}; {outcome.params.trainable:,} trainable parameters ({outcome.params.trainable_pct:.2f}%)")
    print(f"weights: {weights}")
    print(f"metrics: {out / 'metrics.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
