"""VL pretraining (PAPER.md §6, "with VL pretraining"): of an embedded backbone, or of yours on your data.

    python -m training.vl_pretrain --backbone tiny-clip+tiny-t5 [--data-dir data] [--steps N] [--seed S]
    python -m training.vl_pretrain --backbone SPEC_OR_PRESET --data DATA --out DIR [--steps N] [--device D] ...

Without --data: generates the benchmark when missing (the corpus must stay disjoint from it),
builds the base backbone when missing, then trains and saves `<backbone>-vlp` under
`<data-dir>/backbones/` (training.pretrain.vl_variant). Built once per settings: a second run only prints.

With --data (a data file: captions in COCO's layout or JSONL, VQA, any task tasks.data_spec
reads): trains the backbone's language model and V->L projection on every task of the file,
CLIP frozen (training.pretrain.on_data), and writes DIR; it prints the backbone spec that
starts a search from it (`clip=...,lm=DIR/language_model,proj=DIR/vl_projection.safetensors`).

Both print the held-out loss before and after VL pretraining.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from pathlib import Path
from typing import NoReturn

from core.data_dir import data_dir_problem

PROGRAM = "training.vl_pretrain"
BENCHMARK_SEED = 0  # the benchmark search.launch trains on


# search.cli_common has these, but `training` must not import `search` (dependencies point one way).
def fail(program: str, message: str, code: int = 2) -> NoReturn:
    """Print one line naming the problem and exit non-zero."""
    print(f"{program}: error: {message}", file=sys.stderr)
    raise SystemExit(code)


def _configure_logging() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    for name in ("training", "models"):
        logging.getLogger(name).setLevel(logging.INFO)
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        fail(PROGRAM, message)  # one line, exit 2, for bad flags too


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=f"python -m {PROGRAM}", description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument(
        "--backbone",
        default="tiny-clip+tiny-t5",
        help="embedded preset to start from (default tiny-clip+tiny-t5); with --data, any backbone: a preset or a spec "
        "clip=ARCH:CHECKPOINT,lm=DIR_OR_HUB_ID[,proj=FILE]",
    )
    parser.add_argument("--data-dir", type=Path, default=None, help="benchmark, backbones and feature cache (default ./data)")
    parser.add_argument(
        "--steps", type=int, default=None, help="VL-pretraining steps (default 600, or $VLPETL_VLP_STEPS; with --data 2000)"
    )
    parser.add_argument("--seed", type=int, default=None, help="seed of the corpus, examples and training (default 0)")
    yours = parser.add_argument_group("your backbone on your data (--data)")
    yours.add_argument("--data", type=Path, default=None, help="data file (YAML, or a train.jsonl) whose tasks it trains on")
    yours.add_argument("--tasks", default=None, help="comma-separated tasks of the data file (default: all)")
    yours.add_argument("--data-root", type=Path, default=None, metavar="DIR", help="where the data file's relative paths start")
    yours.add_argument("--out", type=Path, default=None, help="new folder for the pretrained language model and projection")
    yours.add_argument("--batch-size", type=int, default=None, help="examples per step (default 32)")
    yours.add_argument("--learning-rate", type=float, default=None, help="AdamW peak rate (default 1e-4, the paper's)")
    yours.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.data is not None:
        return _on_data(args)
    given = [flag for flag, value in (("--out", args.out), ("--tasks", args.tasks), ("--batch-size", args.batch_size),
                                      ("--learning-rate", args.learning_rate), ("--data-root", args.data_root)) if value is not None]  # fmt: skip
    if given:
        fail(PROGRAM, f"{given[0]} applies to VL pretraining on your data; pass --data FILE too, or drop {given[0]}")
    if args.steps is not None and args.steps < 1:
        fail(PROGRAM, f"--steps must be >= 1, got {args.steps}")
    if args.seed is not None and args.seed < 0:
        fail(PROGRAM, f"--seed must be >= 0, got {args.seed}")

    from models.config import ConfigError
    from training.pretrain.vl_variant import VLPretrainSettings, ensure_vl_pretrained_backbone, held_out_losses, vl_pretrained_variant

    try:
        variant = vl_pretrained_variant(args.backbone)
        settings = VLPretrainSettings.from_env()
    except (ConfigError, ValueError) as error:
        fail(PROGRAM, str(error).replace("invalid configuration:\n  - ", "").replace("\n", " "))
    overrides = {k: v for k, v in (("steps", args.steps), ("seed", args.seed)) if v is not None}
    settings = dataclasses.replace(settings, **overrides)
    _configure_logging()

    from tasks import generate_benchmark
    from training.environment import benchmark_dir

    data_dir = (args.data_dir or Path(os.environ.get("VLPETL_DATA_DIR", "data"))).resolve()
    if problem := data_dir_problem(data_dir):
        fail(PROGRAM, problem)
    root = generate_benchmark(
        benchmark_dir(data_dir, BENCHMARK_SEED, variant.image_size), seed=BENCHMARK_SEED, image_size=variant.image_size
    )
    folder = ensure_vl_pretrained_backbone(data_dir, variant, exclude_root=root, settings=settings)
    print(f"{variant.name}: {folder}")
    losses = held_out_losses(folder)
    if losses is not None:
        print(f"  held-out caption loss: {losses['before']:.4f} before, {losses['after']:.4f} after VL pretraining")
    return 0


def _on_data(args: argparse.Namespace) -> int:
    """VL-pretrain the backbone on the data file's tasks; every check before anything is written."""
    from models.backbones.backbone_spec import canonical_backbone
    from models.backbones.presets import get_preset
    from models.config import ConfigError
    from models.location import BackboneLocation
    from tasks.data_spec import DataSpecError, load_data_file
    from tasks.errors import DatasetError
    from training.devices import DeviceError, parse_device
    from training.environment import load_data, prepare_environment
    from training.pretrain.on_data import DataPretrainSettings, output_problem, pretrain_on_data

    if args.out is None:
        fail(PROGRAM, "--data needs --out DIR: the new folder the pretrained language model and projection go to")
    overrides = {
        key: value
        for key, value in (
            ("steps", args.steps),
            ("seed", args.seed),
            ("batch_size", args.batch_size),
            ("learning_rate", args.learning_rate),
        )
        if value is not None
    }
    settings = dataclasses.replace(DataPretrainSettings(), **overrides)
    if problems := settings.problems():
        fail(PROGRAM, problems[0])
    if problem := output_problem(args.out):
        fail(PROGRAM, problem)
    try:
        device = parse_device(args.device)
    except DeviceError as error:
        fail(PROGRAM, str(error))
    try:
        backbone = canonical_backbone(args.backbone)
    except ConfigError as error:
        fail(PROGRAM, "--backbone " + "; ".join(error.problems))
    if get_preset(backbone).embedded:
        fail(
            PROGRAM,
            f"--backbone {backbone!r} is an embedded preset, VL-pretrained on the project's own corpus: drop --data "
            "(python -m training.vl_pretrain --backbone ...), or name your backbone as a spec clip=ARCH:CHECKPOINT,lm=DIR",
        )
    data_dir = (args.data_dir or Path(os.environ.get("VLPETL_DATA_DIR", "data"))).resolve()
    if problem := data_dir_problem(data_dir):
        fail(PROGRAM, problem)
    try:
        location = BackboneLocation.resolve(backbone, data_dir)
        location.require_weights()
    except ConfigError as error:
        fail(PROGRAM, f"--backbone {backbone!r}: " + "; ".join(p for p in error.problems if "--random-init" not in p))
    if args.data_root is not None and not args.data_root.is_dir():
        fail(PROGRAM, f"--data-root {str(args.data_root)!r} is not a folder; give the folder the data file's relative paths start from")
    try:
        spec = load_data_file(args.data)
        if args.tasks is not None:
            names = tuple(t.strip() for t in args.tasks.split(","))
            unknown = [n for n in names if n not in spec.names]
            if unknown or not all(names):
                fail(
                    PROGRAM,
                    f"--tasks {args.tasks!r}: {unknown or 'an empty name'} not in {str(args.data)!r}; its tasks: {', '.join(spec.names)}",
                )
            spec = spec.subset(names)
        loaded = load_data(data_dir, backbone, spec, data_root=args.data_root)
    except DataSpecError as error:
        for line in error.problems:
            print(f"{PROGRAM}: error: {line}", file=sys.stderr)
        raise SystemExit(2) from None
    except DatasetError as error:
        for line in str(error).splitlines():
            print(f"{PROGRAM}: error: --data {str(args.data)!r}: {line}", file=sys.stderr)
        raise SystemExit(2) from None
    _configure_logging()
    env = prepare_environment(data_dir, backbone, loaded, device=device)
    result = pretrain_on_data(env, f"clip={location.clip_model}:{location.clip_checkpoint}", args.out, settings)
    print(f"VL-pretrained backbone: {result.folder}")
    print(f"  held-out loss: {result.loss_before:.4f} before, {result.loss_after:.4f} after VL pretraining")
    print(f"  search from it with: --backbone '{result.spec}'")
    return 0


if __name__ == "__main__":
    sys.exit(main())
