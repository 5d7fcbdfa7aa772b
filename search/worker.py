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
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from search.cli_common import configure_logging, default_data_dir, fail, fail_lines

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
    parser.add_argument("--quiet", action="store_true", help="no final summary (for workers started by search.launch --workers)")
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
    from storage import StorageURLError, redact
    from storage.persistent import validate_persistent_storage_url
    from storage.urls import STORAGE_ENV

    if args.storage is not None and not args.storage.strip():
        fail(PROGRAM, "--storage is empty; give the study's database URL, or omit --storage to use $" + STORAGE_ENV)
    url = args.storage or os.environ.get(STORAGE_ENV)
    if not url:
        fail(PROGRAM, f"no storage given: pass --storage URL or set ${STORAGE_ENV} to the study's database URL")
    try:
        storage = validate_persistent_storage_url(url)
    except StorageURLError as error:
        fail(PROGRAM, str(error))
    if args.time_limit is not None and not (0 < args.time_limit < math.inf):
        fail(PROGRAM, f"--time-limit must be a finite number > 0 seconds, got {args.time_limit}; e.g. --time-limit 3600")
    if args.wait < 0:
        fail(PROGRAM, f"--wait must be >= 0 seconds, got {args.wait}")
    if args.threads < 0:
        fail(PROGRAM, f"--threads must be >= 0 (0: torch's choice), got {args.threads}")
    if args.data_root is not None and not args.data_root.is_dir():
        fail(PROGRAM, f"--data-root {str(args.data_root)!r} is not a folder; give the folder that holds this machine's copy of the data")
    if args.data_dir is not None and args.data_dir.exists() and not args.data_dir.is_dir():
        fail(PROGRAM, f"--data-dir {str(args.data_dir)!r} is a file; pass a folder (created when missing)")
    configure_logging()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    import optuna

    from search.launch import make_sampler
    from search.liveness import WorkerGuard, WorkerStopped, fail_dead_trials, study_liveness, study_storage
    from search.study_runner import make_objective, run_until_target
    from search.study_settings import INPUTS_ATTR, SETTINGS_ATTR, StudySettings
    from storage import init_schema, make_engine
    from tasks.data_spec import DataSpecError
    from tasks.digests import InputsChanged
    from tasks.errors import DatasetError
    from training.environment import load_data, prepare_environment

    _wait_for_study(args.study, storage, args.wait)
    engine = make_engine(storage)
    try:
        study = optuna.load_study(study_name=args.study, storage=study_storage(storage, engine, args.study))
        liveness = study_liveness(study)
    except ValueError as error:
        fail(PROGRAM, f"study {args.study!r}: {error}")
    guard = WorkerGuard(study, engine, liveness)
    guard.install()  # from here on, SIGTERM / Ctrl-C release a running trial instead of abandoning it
    try:
        settings = StudySettings.from_attr(study.user_attrs.get(SETTINGS_ATTR, {}))
    except ValueError as error:
        fail(PROGRAM, f"study {args.study!r} has no usable settings ({error}); relaunch it with python -m search.launch")
    study.sampler = make_sampler(settings.sampler, args.seed)
    data_dir = (args.data_dir or default_data_dir()).resolve()
    pinned = (study.user_attrs.get(INPUTS_ATTR) or {}).get("files")
    try:
        # The data is read and compared with the study's digests before anything is written.
        loaded = load_data(data_dir, settings.backbone, settings.data_spec(), data_root=args.data_root)
        env = prepare_environment(data_dir, settings.backbone, loaded, random_init=settings.random_init, pinned=pinned)
    except (DataSpecError, DatasetError, InputsChanged) as error:
        fail_lines(PROGRAM, [f"study {args.study!r}: {line}" for line in str(error).splitlines()])
    if not pinned:  # a study launched before data digests were recorded
        study.set_user_attr(INPUTS_ATTR, {"files": dict(env.inputs)})
        log.info("study %r had no data digests: pinned it to the %d files read here", args.study, len(env.inputs))
    init_schema(engine)
    objective = make_objective(settings, env, engine, args.study)
    trained_here = 0
    while True:
        try:
            trained_here += run_until_target(study, guard.wrap(objective), settings.target_trials, args.time_limit)
            break
        except WorkerStopped:
            retry = guard.release()
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


def _wait_for_study(name: str, url: str, wait: float) -> None:
    """Return once the study exists; fail after `wait` seconds (at once when 0).

    Only reads: workers started together on an empty database must not race each other
    (and `search.launch`) to create Optuna's tables.
    """
    from sqlalchemy.exc import OperationalError

    from storage import redact
    from storage.engine import StorageUnreachableError, check_reachable

    deadline = time.monotonic() + wait
    announced = False
    while True:
        try:
            check_reachable(url)  # names the cause: server down, unknown host, wrong password
            if _study_exists(url, name):
                return
            problem = f"--study {name!r} does not exist in {redact(url)}; start it with python -m search.launch"
        except FileNotFoundError:  # a SQLite file not created yet
            problem = f"--study {name!r} does not exist: no database at {redact(url)}; start it with python -m search.launch"
        except StorageUnreachableError as error:  # the database is not up yet (a container starting)
            problem = f"--storage: {error}"
        except OperationalError as error:  # it went away between the two connections
            problem = f"cannot reach {redact(url)} ({type(error.orig).__name__}); check the URL and that the database runs"
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            fail(PROGRAM, problem + (f" (waited {wait:.0f} s)" if wait else ""))
        if not announced:
            log.info("waiting up to %.0f s: %s", wait, problem)
            announced = True
        time.sleep(min(2.0, remaining))


def _study_exists(url: str, name: str) -> bool:
    from sqlalchemy import inspect, text

    from storage import make_readonly_engine

    engine = make_readonly_engine(url)
    try:
        with engine.connect() as connection:
            if not inspect(connection).has_table("studies"):  # Optuna's table of studies
                return False
            query = text("SELECT 1 FROM studies WHERE study_name = :name")
            return connection.execute(query, {"name": name}).first() is not None
    finally:
        engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
