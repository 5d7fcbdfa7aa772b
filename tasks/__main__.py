"""Command line for the task data.

python -m tasks generate data/mini-vl [--seed 0] [--image-size 64]   # every task (mini-VL)
python -m tasks generate-vqa data/vqa_mini [--seed 0] [--train 1200] ...  # VQA only
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tasks.benchmark import generate_benchmark
from tasks.vqa_generate import generate_vqa


def main(argv: list[str] | None = None) -> None:
    """Parse ``argv`` and run the chosen command; prints the dataset root."""
    parser = argparse.ArgumentParser(prog="python -m tasks", description="Task data tools.")
    commands = parser.add_subparsers(dest="command", required=True)
    bench = commands.add_parser("generate", help="write the mini-VL benchmark (every task)")
    bench.add_argument("root", type=Path, help="benchmark directory to write")
    bench.add_argument("--seed", type=int, default=0, help="seed of every random choice")
    bench.add_argument("--image-size", type=int, default=64, help="image and frame side in pixels")
    vqa = commands.add_parser("generate-vqa", help="write the synthetic VQA dataset")
    vqa.add_argument("root", type=Path, help="dataset directory to write")
    vqa.add_argument("--seed", type=int, default=0, help="seed of every random choice")
    vqa.add_argument("--train", type=int, default=1200, help="train images")
    vqa.add_argument("--val", type=int, default=150, help="val images")
    vqa.add_argument("--test", type=int, default=150, help="test images")
    vqa.add_argument("--questions-per-image", type=int, default=2, help="questions per image (1-5)")
    vqa.add_argument("--image-size", type=int, default=64, help="image side in pixels")
    args = parser.parse_args(argv)
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


if __name__ == "__main__":
    main()
