"""Build the VL-pretrained variant of an embedded backbone (PAPER.md §6, "with VL pretraining").

    python -m training.vl_pretrain --backbone tiny-clip+tiny-t5 [--data-dir data] [--steps N] [--seed S]

Generates the benchmark when missing (the corpus must stay disjoint from it), builds the base
backbone when missing, then trains and saves `<backbone>-vlp` under `<data-dir>/backbones/`
(training.pretrain.vl_variant). Prints where it went and the held-out caption loss before and
after VL pretraining. Built once per settings: a second run only prints.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from pathlib import Path
from typing import NoReturn

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
    parser.add_argument("--backbone", default="tiny-clip+tiny-t5", help="embedded preset to start from (default tiny-clip+tiny-t5)")
    parser.add_argument("--data-dir", type=Path, default=None, help="benchmark and backbones (default ./data)")
    parser.add_argument("--steps", type=int, default=None, help="VL-pretraining steps (default 600, or $VLPETL_VLP_STEPS)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the corpus, examples and training (default 0)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
    root = generate_benchmark(
        benchmark_dir(data_dir, BENCHMARK_SEED, variant.image_size), seed=BENCHMARK_SEED, image_size=variant.image_size
    )
    folder = ensure_vl_pretrained_backbone(data_dir, variant, exclude_root=root, settings=settings)
    print(f"{variant.name}: {folder}")
    losses = held_out_losses(folder)
    if losses is not None:
        print(f"  held-out caption loss: {losses['before']:.4f} before, {losses['after']:.4f} after VL pretraining")
    return 0


if __name__ == "__main__":
    sys.exit(main())
