"""Train an exported recipe at full scale, score it on validation and test, save its weights.

    python -m search.train --recipe best.yaml [--steps N] [--out DIR]

The recipe carries the study's data description (search.export copies it), so the run trains
and scores on the same data as the search with no further flag. `DIR/metrics.json` holds
`{"val": {TASK: score}, "test": {TASK: score}, ...}` with each task's official metric (as the
paper prints it: accuracy in %, CIDEr x 100), and `DIR/predictions/<split>/<task>.json` the
predictions in each task's official results format. The run itself is `training.recipe_run`.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from search.cli_common import configure_logging, default_data_dir, fail, fail_lines
from training.recipe_run import RecipeRun, check_backbone_weights, load_recipe, load_recipe_data, train_recipe

PROGRAM = "search.train"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m {PROGRAM}", description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--recipe", required=True, type=Path, help="recipe file written by search.export")
    parser.add_argument("--steps", type=int, default=None, help="override the recipe's training steps")
    parser.add_argument("--data-dir", type=Path, default=None, help="benchmark, backbones and features (default ./data)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default <data-dir>/runs/<recipe name>)")
    parser.add_argument(
        "--data-root",
        type=Path,
        default=None,
        metavar="DIR",
        help="where this machine keeps the folder of the study's data file, when not where the study was launched",
    )
    return parser


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

    try:  # every problem of the data, before anything is written
        loaded = load_recipe_data(recipe, config, data_dir, args.data_root)
    except DatasetError as error:
        fail_lines(PROGRAM, [f"data of {str(args.recipe)!r}: {line}" for line in str(error).splitlines()])
    out = args.out or data_dir / "runs" / args.recipe.stem
    configure_logging()
    run = train_recipe(recipe, config, loaded, data_dir, out)
    _report(recipe, run)
    return 0


def _report(recipe: dict, run: RecipeRun) -> None:
    metrics = run.metrics
    expected = (recipe.get("expected") or {}).get("score")
    expected_text = f" (search measured {expected:.1f})" if isinstance(expected, (int, float)) else ""
    print(
        f"validation score {_text(metrics['score'])}{expected_text}; {metrics['trainable_params']:,} trainable parameters ({metrics['trainable_pct']:.2f}%)"
    )
    for split in ("val", "test"):
        if metrics[split]:
            print(f"  {split}: " + ", ".join(f"{name} {score:.1f}" for name, score in metrics[split].items()))
    print(f"weights: {run.weights}")
    print(f"metrics: {run.metrics_file}")
    print(f"predictions: {run.predictions}")


def _text(score: float | None) -> str:
    return "n/a" if score is None else f"{score:.1f}"


if __name__ == "__main__":
    sys.exit(main())
