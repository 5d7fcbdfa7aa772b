"""Confirm a finished study's best configurations with more seeds, and print its front by mean.

    python -m search.confirm --study NAME --storage URL [--seeds 3] [--front]

`search.launch` confirms the full fine-tuning reference and the best configuration within the
budget with a second seed when its trials are done (`--confirm-seeds`); this command does the
same on a study that already exists: with more seeds, or for every configuration on the front
(`--front`), or for a study launched before confirmation seeds existed. It joins the study as a
worker does (its settings, data and backbone, compared with the study's digests), trains the
missing seeds, each a trial and a results row of its own, and prints the front with each
configuration's mean ± standard deviation over its seeds. Running it again trains nothing new.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from dataclasses import dataclass
from pathlib import Path

from search.cli_common import add_device_argument, configure_logging, device_or_fail, fail, write_refusals_end_the_run

log = logging.getLogger("search.confirm")
PROGRAM = "search.confirm"


def build_parser() -> argparse.ArgumentParser:
    from search.confirmation_limits import DEFAULT_SEEDS, MAX_SEEDS
    from storage.urls import STORAGE_ENV

    parser = argparse.ArgumentParser(prog=f"python -m {PROGRAM}", description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--study", required=True, help="name of a study started by search.launch")
    parser.add_argument("--storage", default=None, help=f"the study's SQLAlchemy URL (default ${STORAGE_ENV})")
    parser.add_argument(
        "--seeds",
        type=int,
        default=DEFAULT_SEEDS,
        help=f"seeds per confirmed configuration, its own included (2 to {MAX_SEEDS}; default {DEFAULT_SEEDS})",
    )
    parser.add_argument(
        "--front", action="store_true", help="confirm every configuration on the Pareto front, not only the reference and the best"
    )
    parser.add_argument("--data-dir", type=Path, default=None, help="this machine's benchmark, backbones and features (default ./data)")
    parser.add_argument(
        "--data-root", type=Path, default=None, metavar="DIR", help="where this machine keeps the study's data folder, when elsewhere"
    )
    parser.add_argument("--time-limit", type=float, default=None, help="stop starting confirmation trials after this many seconds")
    add_device_argument(parser)
    return parser


@dataclass(frozen=True)
class ConfirmOptions:
    """What `python -m search.confirm` was asked for, one field per flag (`--help` says what each means)."""

    study: str
    storage: str | None = None
    seeds: int = 2
    front: bool = False
    data_dir: Path | None = None
    data_root: Path | None = None
    time_limit: float | None = None
    device: str = "auto"


def main(argv: list[str] | None = None) -> int:
    return confirm(ConfirmOptions(**vars(build_parser().parse_args(argv))))


def confirm(args: ConfirmOptions) -> int:
    """Train the study's missing confirmation seeds and print its front; returns the exit status."""
    from search.confirmation_limits import MAX_SEEDS
    from search.join import check_folders, open_study, storage_url, wait_for_study

    if not 2 <= args.seeds <= MAX_SEEDS:
        fail(PROGRAM, f"--seeds must be 2 to {MAX_SEEDS}, got {args.seeds}; it counts the configuration's own seed")
    if args.time_limit is not None and not (0 < args.time_limit < math.inf):
        fail(PROGRAM, f"--time-limit must be a finite number > 0 seconds, got {args.time_limit}; e.g. --time-limit 3600")
    device = device_or_fail(PROGRAM, args.device)
    storage = storage_url(PROGRAM, args.storage)
    check_folders(PROGRAM, args.data_dir, args.data_root)
    configure_logging()
    wait_for_study(PROGRAM, args.study, storage, 0)
    with write_refusals_end_the_run(PROGRAM, storage):
        return _confirm(args, open_study(PROGRAM, args.study, storage, args.data_dir, args.data_root, device=device))


def _confirm(args: ConfirmOptions, joined) -> int:
    """Train the missing seeds of the joined study and print its front."""
    from core.budget import parse_budget
    from search.confirmation import confirm_study
    from search.liveness import WorkerStopped
    from search.report import front_report
    from storage import load_results, redact

    budget = parse_budget(joined.settings.budget)
    guard = joined.guard
    try:
        queued = confirm_study(
            joined.study,
            guard.wrap(joined.objective),
            joined.engine,
            budget,
            seeds=args.seeds,
            scope="front" if args.front else "best",
            time_limit=args.time_limit,
        )
    except WorkerStopped as stop:
        retry = guard.release(stop)
        outcome = f"queued again as trial {retry}" if retry is not None else "not queued again (its error says why)"
        print(f"{PROGRAM}: stopped by {guard.signal_name}; trial {guard.interrupted} failed and {outcome}", file=sys.stderr)
        return guard.exit_code
    if guard.signal_name is not None:
        print(f"{PROGRAM}: stopped by {guard.signal_name} between trials; run the same command again to go on", file=sys.stderr)
        return guard.exit_code
    results = load_results(joined.engine, args.study)
    print()
    print(f"Study {args.study!r}: {len(queued)} confirmation trial(s) trained now")
    print("Pareto front (score as mean ± standard deviation over seeds):")
    print(front_report(results, budget))
    print(f"Results stored in: {redact(joined.storage)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
