"""A searched study on a user's JSONL task, run as the README's "Search on your own data" runs it.

    python benchmarks/jsonl_study.py [--data-dir data] [--max-examples 400] [-- LAUNCH ARGS]

Two commands, each in a fresh process as a user types them:

1. `python -m tasks export-jsonl --task vqa --out DIR --max-examples N`: the generated VQA task
   written as a folder of images and train/val/test JSONL files, the generic format any user's
   data takes;
2. `python -m search.launch --budget 5% --data DIR/train.jsonl` (plus LAUNCH ARGS), into a
   fresh SQLite database.

The section records the wall time of each, and the launcher's own end-of-study report (trial
counts, the Pareto front, the full fine-tuning reference, the hypervolume) as it printed it.
`--data-dir` holds the generated benchmark and the backbones (prepared on first use, which the
export's time then includes).
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from common import Section, data_folder, load_average, positive_int, print_section, timed

REPO = Path(__file__).resolve().parent.parent
REPORT_START = "Study "  # the first line of search.launch's end-of-study report


def command(argv: list[str], data_dir: Path) -> str:
    """Run `python -m ARGV` from the repository root; its standard output (raises with both streams on failure)."""
    environment = {**os.environ, "TQDM_DISABLE": "1", "VLPETL_DATA_DIR": str(data_dir)}
    result = subprocess.run([sys.executable, "-m", *argv], cwd=REPO, env=environment, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"python -m {' '.join(argv)} exited {result.returncode}:\n{(result.stdout + result.stderr)[-4000:]}")
    return result.stdout


def report(output: str) -> str:
    """The launcher's end-of-study report: its output from the line that starts it."""
    lines = output.splitlines()
    start = max((i for i, line in enumerate(lines) if line.startswith(REPORT_START)), default=max(0, len(lines) - 40))
    return "\n".join(lines[start:]).strip()


def run(data_dir: Path, max_examples: int, launch_args: tuple[str, ...]) -> Section:
    root = Path(tempfile.mkdtemp(prefix="vlpetl-jsonl-study-"))
    try:
        out = root / "shapes"
        export = ["tasks", "export-jsonl", "--task", "vqa", "--out", str(out), "--max-examples", str(max_examples)]
        export_s = timed(lambda: command(export, data_dir))
        counts = {split: sum(1 for _ in (out / f"{split}.jsonl").open()) for split in ("train", "val", "test")}
        images = sum(1 for path in out.rglob("*") if path.suffix.lower() in {".png", ".jpg", ".jpeg"})
        launch = ["search.launch", "--budget", "5%", "--data", str(out / "train.jsonl"), *launch_args,
                  "--storage", f"sqlite:///{root / 'study.db'}"]  # fmt: skip
        printed: list[str] = []
        launch_s = timed(lambda: printed.append(command(launch, data_dir)))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    shown = " ".join([*launch[:5], *launch_args])  # without the temporary --storage
    body = (
        f"{datetime.date.today().isoformat()}, {os.cpu_count()} CPU cores visible, load average at the end {load_average()}.\n\n"
        f"`python -m tasks export-jsonl --task vqa --out DIR --max-examples {max_examples}` wrote "
        f"{counts['train']:,} / {counts['val']:,} / {counts['test']:,} train / val / test questions over {images:,} images "
        f"in {export_s:.0f} s; `python -m {shown.replace(str(out), 'DIR')}` searched them in {launch_s / 60:.1f} min "
        f"and printed:\n\n```\n{report(printed[0]).replace(str(root), 'TMP')}\n```\n"
    )
    extra = f" -- {' '.join(launch_args)}" if launch_args else ""
    return Section(
        title="A searched study on a JSONL task",
        command=f"python benchmarks/jsonl_study.py --data-dir {data_dir} --max-examples {max_examples}{extra}",
        body=body,
        figures={"launch_s": launch_s, "export_s": export_s},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--data-dir", type=data_folder, default=Path(os.environ.get("VLPETL_DATA_DIR", "data")))
    parser.add_argument("--max-examples", type=positive_int, default=400, help="examples kept per split (default 400, as the README)")
    parser.add_argument("launch_args", nargs="*", help="more search.launch arguments after --")
    args = parser.parse_args()
    print_section(run(args.data_dir.resolve(), args.max_examples, tuple(args.launch_args)))


if __name__ == "__main__":
    main()
