"""Join an existing study and train its trials (another process, container or machine).

    python -m search.worker --study NAME --storage URL [--data-dir DIR]

The study's settings (budget, backbone, tasks, search space, recipe) were stored with it by
`search.launch`; the worker prepares the same benchmark and backbone in its own data directory
(built on first use, deterministic from the seed) and trains trials until the study, all
workers together, reaches its goal.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from search.cli_common import configure_logging, default_data_dir, fail

log = logging.getLogger("search.worker")
PROGRAM = "search.worker"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m {PROGRAM}", description=__doc__.split("\n\n")[0])
    parser.add_argument("--study", required=True, help="name of a study started by search.launch")
    parser.add_argument("--storage", required=True, help="the study's SQLAlchemy URL (shared by every worker)")
    parser.add_argument("--data-dir", type=Path, default=None, help="this worker's benchmark, backbones and features (default ./data or $VLPETL_DATA_DIR)")
    parser.add_argument("--time-limit", type=float, default=None, help="stop starting new trials after this many seconds")
    parser.add_argument("--seed", type=int, default=None, help="this worker's sampler seed (default: random, so workers propose different trials)")
    parser.add_argument("--quiet", action="store_true", help="no final summary (for workers started by search.launch --workers)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from storage import StorageURLError, redact, validate_storage_url

    try:
        storage = validate_storage_url(args.storage)
    except StorageURLError as error:
        fail(PROGRAM, str(error))
    if args.time_limit is not None and args.time_limit <= 0:
        fail(PROGRAM, f"--time-limit must be > 0 seconds, got {args.time_limit}")
    configure_logging()
    import optuna

    from search.launch import make_sampler
    from search.study_runner import make_objective, run_until_target
    from search.study_settings import SETTINGS_ATTR, StudySettings
    from storage import init_schema, make_engine
    from training.environment import prepare_environment

    try:
        study = optuna.load_study(study_name=args.study, storage=storage)
    except KeyError:
        fail(PROGRAM, f"--study {args.study!r} does not exist in {redact(storage)}; start it with python -m search.launch")
    try:
        settings = StudySettings.from_attr(study.user_attrs.get(SETTINGS_ATTR, {}))
    except ValueError as error:
        fail(PROGRAM, f"study {args.study!r} has no usable settings ({error}); relaunch it with python -m search.launch")
    study.sampler = make_sampler(settings.sampler, args.seed)
    data_dir = (args.data_dir or default_data_dir()).resolve()
    env = prepare_environment(data_dir, settings.backbone, settings.tasks, benchmark_seed=0)
    engine = make_engine(storage)
    init_schema(engine)
    objective = make_objective(settings, env, engine, args.study)
    trained_here = run_until_target(study, objective, settings.target_trials, args.time_limit)
    if not args.quiet:
        print(f"{PROGRAM}: trained {trained_here} trials of study {args.study!r}; results in {redact(storage)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
