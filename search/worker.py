"""Join an existing study and train its trials (another process, container or machine).

    python -m search.worker --study NAME --storage URL [--data-dir DIR]

The study's settings (budget, backbone, tasks, search space, recipe) were stored with it by
`search.launch`; the worker prepares the same benchmark and backbone in its own data directory
(built on first use, deterministic from the seed) and trains trials until the study, all
workers together, reaches its goal.

A running trial sends heartbeats; when a worker dies (SIGKILL, out of memory, machine lost),
another worker fails its trial after the study's grace period and queues it again (see
`search.liveness`). SIGTERM or Ctrl-C releases the running trial the same way at once and
exits with 128 + the signal number; completed trials stay as they are. `--wait` lets workers
start before the study exists (docker compose starts them beside `search.launch`).
"""

from __future__ import annotations

import math
import argparse
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

from search.cli_common import add_device_argument, configure_logging, device_or_fail, fail, write_refusals_end_the_run

log = logging.getLogger("search.worker")
PROGRAM = "search.worker"


def build_parser() -> argparse.ArgumentParser:
    from storage.urls import STORAGE_ENV

    parser = argparse.ArgumentParser(prog=f"python -m {PROGRAM}", description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--study", required=True, help="name of a study started by search.launch")
    parser.add_argument(
        "--storage",
        default=None,
        help=f"the study's SQLAlchemy URL, shared by every worker (default ${STORAGE_ENV}, which keeps a password out of ps)",
    )
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="this worker's benchmark, backbones and features (default ./data or $VLPETL_DATA_DIR)"
    )
    parser.add_argument(
        "--data-root",
        type=Path,
        default=None,
        metavar="DIR",
        help="where this machine keeps the study's data folder (the data file's folder at launch), when elsewhere; "
        "the study's files are compared by content before any trial",
    )
    parser.add_argument("--time-limit", type=float, default=None, help="stop starting new trials after this many seconds")
    parser.add_argument(
        "--seed", type=int, default=None, help="this worker's sampler seed (default: random, so workers propose different trials)"
    )
    add_device_argument(parser)
    parser.add_argument(
        "--quiet",
        action="store_true",
        help="no progress bar and no final summary (for workers started by search.launch, whose bar counts every worker's trials)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch threads for this worker's work outside trials, such as caching features (default 0: torch's "
        "choice, every core); trials on CPU always train on one thread, for the same score on any machine "
        "(training.trial_threads): run one worker per core to use them all",
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=0,
        metavar="SECONDS",
        help="wait up to this long for the database and the study to appear (default 0: fail at once)",
    )
    return parser


@dataclass(frozen=True)
class WorkerOptions:
    """What `python -m search.worker` was asked for, one field per flag (`--help` says what each means)."""

    study: str
    storage: str | None = None
    data_dir: Path | None = None
    data_root: Path | None = None
    time_limit: float | None = None
    seed: int | None = None
    device: str = "auto"
    quiet: bool = False
    threads: int = 0
    wait: float = 0


def main(argv: list[str] | None = None) -> int:
    return run_worker(WorkerOptions(**vars(build_parser().parse_args(argv))))


def run_worker(args: WorkerOptions) -> int:
    """Join the study and train its trials until the study, all workers together, reaches its goal.

    Returns the exit status (128 + the signal number when stopped by SIGTERM or Ctrl-C); a bad
    option prints one line and exits with 2 (SystemExit) before anything is written.
    """
    from search.join import check_folders, storage_url, wait_for_study

    storage = storage_url(PROGRAM, args.storage)
    if args.time_limit is not None and not (0 < args.time_limit < math.inf):
        fail(PROGRAM, f"--time-limit must be a finite number > 0 seconds, got {args.time_limit}; e.g. --time-limit 3600")
    if args.wait < 0:
        fail(PROGRAM, f"--wait must be >= 0 seconds, got {args.wait}")
    if args.threads < 0:
        fail(PROGRAM, f"--threads must be >= 0 (0: torch's choice), got {args.threads}")
    device_or_fail(PROGRAM, args.device)  # checked before waiting for the study; parsed again where it is used
    check_folders(PROGRAM, args.data_dir, args.data_root)
    configure_logging()
    if args.quiet:  # its launcher has said where the data is and how the space was narrowed: once, not once per worker
        for said_by_the_launcher in ("search.study_runner", "training.environment"):
            logging.getLogger(said_by_the_launcher).setLevel(logging.WARNING)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    wait_for_study(PROGRAM, args.study, storage, args.wait)
    with write_refusals_end_the_run(PROGRAM, storage):
        return _train(args, storage)


def _train(args: WorkerOptions, storage: str) -> int:
    """Open the study and train its trials (after the flags and the study were checked)."""
    from search.join import open_study
    from search.liveness import WorkerStopped, fail_dead_trials
    from search.study_runner import run_until_target
    from storage import redact

    joined = open_study(
        PROGRAM, args.study, storage, args.data_dir, args.data_root, sampler_seed=args.seed, device=device_or_fail(PROGRAM, args.device)
    )
    study, guard, objective, settings = joined.study, joined.guard, joined.objective, joined.settings
    trained_here = 0
    while True:
        try:
            trained_here += run_until_target(
                study,
                guard.wrap(objective),
                settings.target_trials,
                args.time_limit,
                joined.engine,
                settings.step_budget,
                show_progress=not args.quiet,
            )
            break
        except WorkerStopped as stop:
            retry = guard.release(stop)
            outcome = f"queued again as trial {retry}" if retry is not None else "not queued again (its error says why)"
            print(f"{PROGRAM}: stopped by {guard.signal_name}; trial {guard.interrupted} failed and {outcome}", file=sys.stderr)
            return guard.exit_code
        except (ValueError, AssertionError):
            # This worker stalled, another declared its trial dead and queued it again, and
            # Optuna refused the late result ("Cannot tell a FAIL trial"; Optuna 5.0 re-raises
            # it as an AssertionError from its bookkeeping): the guard recorded it; carry on.
            if guard.overtaken is None:
                raise
            log.warning("trial %d was retried elsewhere while it ran here; continuing", guard.overtaken)
            guard.overtaken = None
    # Optuna looks for dead trials only before starting one; look once more on the way out, so
    # a trial whose worker died near the end is marked failed (and queued) all the same.
    fail_dead_trials(study)
    if guard.signal_name is not None:
        print(f"{PROGRAM}: stopped by {guard.signal_name} between trials; trained {trained_here}", file=sys.stderr)
        return guard.exit_code
    if not args.quiet:
        print(f"{PROGRAM}: trained {trained_here} trials of study {args.study!r}; results in {redact(storage)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
