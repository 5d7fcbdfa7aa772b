"""Train an exported recipe at full scale, score it on validation and test, save its weights.

    python -m search.train --recipe best.yaml [--steps N] [--out DIR]
        [--checkpoint-every N] [--resume] [--eval-every N] [--keep-best]
        [--grad-accumulation K] [--lr-schedule linear|cosine|constant]

The recipe carries the study's data description (search.export copies it), so the run trains
and scores on the same data as the search with no further flag. `DIR/metrics.json` holds
`{"val": {TASK: score}, "test": {TASK: score}, ...}` with each task's official metric (as the
paper prints it: accuracy in %, CIDEr x 100), and `DIR/predictions/<split>/<task>.json` the
predictions in each task's official results format. The run itself is `training.recipe_run`.

With `--checkpoint-every N` the run writes `DIR/checkpoints/latest.safetensors` every N steps
(training.checkpoints); after a kill, the same command with `--resume` continues from it and ends
with the weights an uninterrupted run has. A DIR holding checkpoints is never trained over
without `--resume` (choose another --out for a fresh run). The training flags override the
recipe's `training` block and are recorded in `DIR/recipe.json`.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from core.data_dir import data_dir_problem
from search.cli_common import add_device_argument, configure_logging, default_data_dir, device_or_fail, fail, fail_lines
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
    add_device_argument(parser, help="where it trains and CLIP encodes: auto (CUDA when present, else the CPU), cpu, cuda or cuda:N")
    production = parser.add_argument_group("production training (checkpoints, resume and options beyond the search's)")
    production.add_argument("--checkpoint-every", type=int, default=None, metavar="N", help="write DIR/checkpoints/latest every N steps")
    production.add_argument("--resume", action="store_true", help="continue from DIR/checkpoints/latest (same recipe and flags)")
    production.add_argument("--eval-every", type=int, default=None, metavar="N", help="score a validation sample every N steps")
    production.add_argument(
        "--keep-best", action="store_true", help="end with the weights of the best evaluation (DIR/checkpoints/best), not the last"
    )
    production.add_argument("--grad-accumulation", type=int, default=None, metavar="K", help="K micro-batches per optimizer step")
    production.add_argument("--lr-schedule", default=None, metavar="NAME", help="after warm-up: linear (the search's), cosine or constant")
    return parser


def _check_flags(args: argparse.Namespace) -> None:
    """The flags' own values, checked before the recipe and torch load (seconds of imports):
    a mistyped flag fails at once. Exits with one line on a bad value."""
    from models.config import LR_SCHEDULES

    if args.steps is not None and args.steps < 1:
        fail(PROGRAM, f"--steps must be >= 1, got {args.steps}")
    if args.checkpoint_every is not None and args.checkpoint_every < 1:
        fail(PROGRAM, f"--checkpoint-every must be >= 1 (steps between checkpoints), got {args.checkpoint_every}; leave it out for none")
    if args.grad_accumulation is not None and args.grad_accumulation < 1:
        fail(PROGRAM, f"--grad-accumulation must be >= 1 (micro-batches per step), got {args.grad_accumulation}")
    if args.eval_every is not None and args.eval_every < 0:
        fail(PROGRAM, f"--eval-every must be >= 0 (0: score only after training), got {args.eval_every}")
    if args.lr_schedule is not None and args.lr_schedule not in LR_SCHEDULES:
        fail(PROGRAM, f"--lr-schedule must be one of {', '.join(LR_SCHEDULES)}, got {args.lr_schedule!r}")


def _training_overrides(args: argparse.Namespace, training):
    """The recipe's training block with the (checked) flags applied; exits with one line on a bad combination."""
    flags = {
        "steps": args.steps,
        "grad_accumulation": args.grad_accumulation,
        "lr_schedule": args.lr_schedule,
        "eval_every": args.eval_every,
    }
    training = dataclasses.replace(training, **{key: value for key, value in flags.items() if value is not None})
    if problems := training.problems():
        fail(PROGRAM, "; ".join(problems))
    if args.keep_best and not training.eval_every:
        fail(PROGRAM, "--keep-best needs scheduled evaluations to pick from, and the recipe's eval_every is 0; pass --eval-every N")
    return training


def _check_writable(out: Path) -> None:
    """Exit with 2 unless files can be created where the run folder goes.

    A probe file is created in the nearest folder that exists (the run folder itself, or the
    folder it will be made in) and removed at once, so nothing stays behind; what the probe
    cannot do (a read-only file system, no permission, no space left), the run could not either.
    """
    import tempfile

    existing = out
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".vlpetl-write-check-"):
            pass
    except OSError as error:
        fail(
            PROGRAM,
            f"--out {str(out)!r} cannot be written: creating a file in {str(existing)!r} failed ({error.strerror or error}); "
            "give a folder on a writable file system with free space (nothing was trained)",
        )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _check_flags(args)
    device = device_or_fail(PROGRAM, args.device)
    try:
        recipe, config = load_recipe(args.recipe)
    except ValueError as error:
        fail(PROGRAM, str(error))
    config = dataclasses.replace(config, training=_training_overrides(args, config.training))
    data_dir = (args.data_dir or default_data_dir()).resolve()
    if problem := data_dir_problem(data_dir):
        fail(PROGRAM, problem)
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        fail(PROGRAM, f"--out {str(args.out)!r} is a file; pass a folder for the weights, metrics and recipe")
    try:
        check_backbone_weights(config.backbone, data_dir)
    except ValueError as error:
        fail(PROGRAM, str(error))
    out = args.out or data_dir / "runs" / args.recipe.stem
    _check_writable(out)  # a read-only or full file system is found now, not after the training
    from training.checkpoints import CheckpointError, plan_checkpoints

    try:  # before the data is read: a resume of another configuration fails at once
        checkpoints = plan_checkpoints(out, config.to_dict(), args.checkpoint_every or 0, args.keep_best, args.resume)
    except CheckpointError as error:
        fail(PROGRAM, str(error))
    if args.data_root is not None and not args.data_root.is_dir():
        fail(PROGRAM, f"--data-root {str(args.data_root)!r} is not a folder; give the folder holding this machine's copy of the data")
    from tasks.errors import DatasetError

    try:  # every problem of the data, before anything is written
        loaded = load_recipe_data(recipe, config, data_dir, args.data_root)
    except DatasetError as error:
        fail_lines(PROGRAM, [f"data of {str(args.recipe)!r}: {line}" for line in str(error).splitlines()])
    configure_logging()
    from models.backbone_pin import BackboneChanged
    from models.embedded import BuildChanged

    try:
        run = train_recipe(recipe, config, loaded, data_dir, out, checkpoints, device)
    except (BuildChanged, BackboneChanged) as error:  # raised while preparing, before any training
        fail_lines(PROGRAM, [f"backbone of {str(args.recipe)!r}: {line}" for line in str(error).splitlines()])
    _report(recipe, run)
    return 0


def _report(recipe: dict, run: RecipeRun) -> None:
    metrics = run.metrics
    measured = recipe.get("expected") or {}
    expected = measured.get("score")
    expected_text = f" (search measured {expected:.1f})" if isinstance(expected, (int, float)) else ""
    if isinstance(expected, (int, float)) and isinstance(measured.get("score_std"), (int, float)):
        # A confirmed configuration: the mean over seeds, and what this recipe's own seed scored.
        from core.seeds import seed_of

        seed = seed_of(recipe.get("config"))
        own = (measured.get("seed_scores") or {}).get(str(seed))
        own_text = f"; its seed {seed} scored {own:.1f}" if isinstance(own, (int, float)) else ""
        expected_text = f" (search measured {expected:.1f} ± {measured['score_std']:.1f} over {measured.get('seeds')} seeds{own_text})"
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
