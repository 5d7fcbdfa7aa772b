"""Generate the benchmark's task data, or export one task as generic JSONL.

python -m tasks generate data/mini-vl [--seed 0] [--image-size 64]   # every task (mini-VL)
python -m tasks generate-vqa data/vqa_mini [--seed 0] [--train 1200] ...  # VQA only
python -m tasks export-jsonl --task vqa --out DIR [--benchmark ROOT] [--seed 0] [--max-examples N]
    # one task as generic JSONL (tasks/custom.py) plus its images; prints the paths written

Bad export-jsonl input prints one line ``tasks: error: ...`` and exits with 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

from core.data_dir import DATA_DIR_ENV, default_data_dir
from tasks.benchmark import generate_benchmark
from tasks.export_jsonl import EXPORT_TASKS, check_export_args, export_jsonl
from tasks.vqa_generate import generate_vqa


def main(argv: list[str] | None = None) -> None:
    """Parse ``argv`` and run the chosen command; prints the dataset root (export-jsonl: the paths written)."""
    # No abbreviations: a prefix that works today would silently change meaning when a flag is added.
    parser = argparse.ArgumentParser(prog="python -m tasks", description=__doc__.split("\n\n")[0], allow_abbrev=False)
    commands = parser.add_subparsers(dest="command", required=True)
    bench = commands.add_parser("generate", help="write the mini-VL benchmark (every task)", allow_abbrev=False)
    bench.add_argument("root", type=Path, help="benchmark directory to write")
    bench.add_argument("--seed", type=int, default=0, help="seed of every random choice")
    bench.add_argument("--image-size", type=int, default=64, help="image and frame side in pixels")
    vqa = commands.add_parser("generate-vqa", help="write the synthetic VQA dataset", allow_abbrev=False)
    vqa.add_argument("root", type=Path, help="dataset directory to write")
    vqa.add_argument("--seed", type=int, default=0, help="seed of every random choice")
    vqa.add_argument("--train", type=int, default=1200, help="train images")
    vqa.add_argument("--val", type=int, default=150, help="val images")
    vqa.add_argument("--test", type=int, default=150, help="test images")
    vqa.add_argument("--questions-per-image", type=int, default=2, help="questions per image (1-5)")
    vqa.add_argument("--image-size", type=int, default=64, help="image side in pixels")
    _add_export_parser(commands)
    args = parser.parse_args(argv)
    if args.command == "export-jsonl":
        _export(args)
        return
    _check_generate(args)
    if args.command == "generate":
        print(generate_benchmark(args.root, seed=args.seed, image_size=args.image_size))
        return
    root = generate_vqa(
        args.root,
        seed=args.seed,
        n_train_images=args.train,
        n_val_images=args.val,
        n_test_images=args.test,
        questions_per_image=args.questions_per_image,
        image_size=args.image_size,
    )
    print(root)


def _add_export_parser(commands: argparse._SubParsersAction) -> None:
    export = commands.add_parser("export-jsonl", help="write one task as generic JSONL files plus its images", allow_abbrev=False)
    # --task is checked by check_export_args, not argparse choices, for a one-line error.
    export.add_argument("--task", required=True, help=f"the task to export: {', '.join(EXPORT_TASKS)}")
    export.add_argument("--out", type=Path, required=True, help="a new or empty folder to write")
    export.add_argument(
        "--benchmark",
        type=Path,
        default=None,
        help=f"benchmark root to read (default: the generated benchmark under ${DATA_DIR_ENV} or ./data, generated first when missing)",
    )
    export.add_argument("--seed", type=int, default=None, help="seed of the default benchmark (default 0)")
    export.add_argument("--max-examples", type=int, default=None, help="keep the first N examples of each split")


def default_benchmark_dir(seed: int) -> Path:
    """Where the search keeps the generated benchmark of ``seed``.

    Must match training.environment.benchmark_dir (embedded 64 px image size), which is not
    imported because it pulls in torch; a different path would generate a second copy.
    """
    data_dir = default_data_dir()
    return data_dir / "benchmark" / f"mini-vl-v3-seed{seed}"


def _check_generate(args: argparse.Namespace) -> None:
    """Refuse sizes and roots the generators would fail on halfway, with a traceback and files written."""
    sizes = ["image_size"] + (["train", "val", "test", "questions_per_image"] if args.command == "generate-vqa" else [])
    for name in sizes:
        value = getattr(args, name)
        if value < 1:
            _fail(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    if args.command == "generate-vqa" and args.questions_per_image > 5:
        _fail(f"--questions-per-image must be 1-5, got {args.questions_per_image}")
    for folder in (args.root, *args.root.parents):
        if folder.exists():
            if not folder.is_dir():
                _fail(f"root {str(args.root)!r}: {str(folder)!r} is a file; give a folder to write the dataset in")
            break


def _fail(message: str) -> NoReturn:
    print(f"tasks: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def _export(args: argparse.Namespace) -> None:
    """Run export-jsonl: check everything that can be checked before writing anything."""
    try:
        check_export_args(args.task, args.out, args.max_examples)
        if args.benchmark is not None and args.seed is not None:
            raise ValueError(
                f"--seed {args.seed} only chooses the generated default benchmark, but --benchmark "
                f"{args.benchmark} was given; drop one of them."
            )
        root = args.benchmark
        if root is None:
            seed = 0 if args.seed is None else args.seed
            root = generate_benchmark(default_benchmark_dir(seed), seed=seed)
        written = export_jsonl(root, args.task, args.out, args.max_examples)
    except ValueError as err:  # DatasetError included
        _fail(str(err))
    for path in written.values():
        print(path)


if __name__ == "__main__":
    main()
