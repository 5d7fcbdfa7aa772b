"""Build (pretrain) the embedded tiny backbone family.

    python -m models.pretrain [--data-dir data] [--preset tiny-clip+tiny-t5 ...]
    python -m models.pretrain --digests [--data-dir data]

The command's logic; `python -m models.pretrain` (README's name, an entry point in
models/pretrain/__main__.py) runs it. Not runnable under a second name, so `vlpetl --help`
lists each command once. `--digests` builds nothing: it prints the SHA-256 of every file of the
built backbones in `sha256sum` format, so that two builds (two machines, two thread counts) can be
compared byte for byte.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from core.data_dir import data_dir_problem
from models.backbones.presets import PRESETS
from models.embedded import component_names
from models.embedded_digests import backbones_root, digest_lines, file_digests
from training.pretrain.embedded import ensure_embedded_backbone
from training.pretrain.family import STEPS_ENV, steps_from_env


def main(argv: list[str] | None = None) -> int:
    embedded = sorted(name for name, preset in PRESETS.items() if preset.embedded and preset.vl_pretrained_from is None)
    parser = argparse.ArgumentParser(prog="python -m models.pretrain", description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("VLPETL_DATA_DIR", "data")))
    parser.add_argument("--preset", action="append", choices=embedded, help=f"default: all of {embedded}")
    parser.add_argument(
        "--digests",
        action="store_true",
        help="build nothing; print the SHA-256 of every file under DATA_DIR/backbones/ (sha256sum format, paths relative to it)",
    )
    args = parser.parse_args(argv)
    if problem := data_dir_problem(args.data_dir):
        parser.exit(2, f"python -m models.pretrain: error: {problem}\n")
    try:
        steps_from_env(STEPS_ENV, "pretraining steps")
    except ValueError as error:
        parser.exit(2, f"python -m models.pretrain: error: {error}; unset it for the full build, or set e.g. {STEPS_ENV}=40\n")
    if args.digests:
        if args.preset:
            parser.error("--digests lists every built backbone; drop --preset")
        return print_digests(args.data_dir)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    for name in ("models", "training"):  # the progress lines come from training.pretrain.embedded
        logging.getLogger(name).setLevel(logging.INFO)
    for name in args.preset or embedded:
        folder = ensure_embedded_backbone(args.data_dir.resolve(), PRESETS[name])
        print(f"{name}: {folder}")
        for component in component_names(PRESETS[name]):
            metrics = json.loads((folder.parent / "components" / component / "pretraining_metrics.json").read_text())
            summary = {k: round(v, 4) for k, v in metrics.items() if isinstance(v, float)}
            print(f"  {component}: {summary}")
    return 0


def print_digests(data_dir: Path) -> int:
    """Print the digests of the backbones built under `data_dir`; 2 with a one-line error when there are none."""
    root = backbones_root(data_dir)
    digests = file_digests(root) if root.is_dir() else {}
    if not digests:
        print(
            f"python -m models.pretrain: error: no built backbones under {root}; build them first (python -m models.pretrain)",
            file=sys.stderr,
        )
        return 2
    print("\n".join(digest_lines(digests)))
    return 0
