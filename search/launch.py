"""Launch (or resume) a PETL configuration search.

    python -m search.launch --budget 5%

Prepares the embedded benchmark and backbone on first use, runs an Optuna study that
maximises the score and minimises the trainable-parameter percentage under the budget,
trains the reference and the best configuration again with more seeds (search.confirmation),
then prints the Pareto front by mean over seeds, where the results are stored and how to browse them.
"""

from __future__ import annotations

import math
import argparse
import logging
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from core.budget import BudgetError, parse_budget
from core.data_dir import data_dir_problem
from search.cli_common import (
    add_device_argument,
    configure_logging,
    default_data_dir,
    fail,
    fail_lines,
    refuse_dash_values,
    write_refusals_end_the_run,
)

if TYPE_CHECKING:
    from training.worker_count import WorkerCount

log = logging.getLogger("search.launch")
PROGRAM = "search.launch"
SAMPLERS = ("tpe", "random", "nsga2", "gp")
DEFAULT_TASKS = ("vqa", "gqa", "nlvr2", "caption")  # the paper's image task set (PAPER.md §5)
DEFAULT_RUNGS = 2  # search.fidelity.Fidelity's (not imported here: it imports Optuna, slow for --help and bad flags)
RUNG_MEASURES = ("loss", "score")  # search.fidelity.RUNG_ATTR_PREFIX's keys
DEFAULT_RUNG_MEASURE = "loss"  # search.fidelity.Fidelity's
RUNG_PEERS = ("method", "all")  # search.fidelity.PEERS's keys
DEFAULT_RUNG_PEERS = "method"  # search.fidelity.Fidelity's
MAX_RUNGS = 4  # the first rung after 1/81 of the steps (1/54 by score): earlier, nothing has been learnt to measure


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m {PROGRAM}", description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--budget", required=True, help="trainable-parameter budget: 5%%, 0.05 or an absolute count like 150k, 2M")
    parser.add_argument(
        "--trials",
        type=int,
        default=None,
        help="trained trials the study should reach; infeasible ones and those stopped at a rung do not count "
        "(default 12; none with --step-budget alone)",
    )
    parser.add_argument(
        "--step-budget",
        type=int,
        default=None,
        metavar="STEPS",
        help="training steps the study may use, all trials together (those stopped at a rung count the steps they ran); "
        "with --trials too, the first goal reached ends the study",
    )
    parser.add_argument("--time-limit", type=float, default=None, help="stop starting new trials after this many seconds")
    parser.add_argument("--study", default=None, help="study name; relaunching with the same name resumes it")
    parser.add_argument("--storage", default=None, help="SQLAlchemy URL (default: sqlite file in the data directory)")
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="benchmark, backbones, features, database (default ./data or $VLPETL_DATA_DIR)"
    )
    parser.add_argument(
        "--backbone",
        default=None,
        help="backbone preset (default tiny-clip+tiny-t5-vlp: the embedded tiny CLIP + T5 after VL pretraining), "
        "or your own: clip=ARCH:CHECKPOINT,lm=DIR_OR_HUB_ID",
    )
    parser.add_argument(
        "--random-init",
        action="store_true",
        help="build a base-size --backbone from its config with random weights (smoke tests, parameter counting; scores mean nothing)",
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        metavar="FILE",
        help="your own data: a YAML data file naming the tasks and their files, or a train.jsonl with val.jsonl "
        "(and test.jsonl) beside it (default: the generated benchmark)",
    )
    parser.add_argument(
        "--data-root",
        type=Path,
        default=None,
        metavar="DIR",
        help="resuming a study launched on another machine: where this machine keeps the folder of the study's data "
        "file (relative paths start there; files are compared by content)",
    )
    parser.add_argument(
        "--tasks",
        default=None,
        help=f"comma-separated tasks, trained together in one model: names of the --data file's tasks (default all), "
        f"or of the generated benchmark's (default the four image tasks, {','.join(DEFAULT_TASKS)})",
    )
    parser.add_argument("--sampler", default="tpe", help=f"one of {', '.join(SAMPLERS)} (default tpe)")
    parser.add_argument("--seed", type=int, default=0, help="sampler and training seed")
    parser.add_argument("--steps", type=int, default=None, help="training steps per trial (default from the training recipe)")
    parser.add_argument("--no-reference", action="store_true", help="skip the full fine-tuning reference trial")
    parser.add_argument(
        "--confirm-seeds",
        type=int,
        default=2,
        metavar="K",
        help="after the search, train the reference and the best configuration within budget with K seeds each, "
        "their own included, and rank by the mean (1: off; default 2)",
    )
    parser.add_argument(
        "--confirm",
        default="best",
        help="which configurations get the confirmation seeds: best (the reference and the best within budget; "
        "default) or front (every configuration on the Pareto front too)",
    )
    parser.add_argument(
        "--space",
        type=Path,
        default=None,
        help="search-space YAML file (default: every PETL method's search block; python -m search.params --space prints it)",
    )
    parser.add_argument(
        "--rungs",
        type=int,
        default=DEFAULT_RUNGS,
        help="multi-fidelity rungs (MO-ASHA): measure each trial after 1/3 and 1/9 of its steps (1/2 and 1/6 with --rung-measure "
        "score; more rungs: also 1/27 ...) and let only the best third of each rung go on (of the trials of its method: "
        f"--rung-peers), by non-dominated sorting on the rung's measure and trainable %% (0: off; default {DEFAULT_RUNGS})",
    )
    parser.add_argument(
        "--rung-measure",
        choices=RUNG_MEASURES,
        default=DEFAULT_RUNG_MEASURE,
        help="what ranks trials at a rung: 'loss', the held-out loss of the reference answers on the rung's sample, or "
        f"'score', the official metric on generated answers (default {DEFAULT_RUNG_MEASURE})",
    )
    parser.add_argument(
        "--rung-peers",
        choices=RUNG_PEERS,
        default=DEFAULT_RUNG_PEERS,
        help="whom a trial is ranked against at a rung: 'method', the trials of its own PETL method (methods learn at different "
        "speeds, and a slow starter can finish best), or 'all', every trial measured there "
        f"(default {DEFAULT_RUNG_PEERS})",
    )
    parser.add_argument("--no-warm-start", action="store_true", help="do not enqueue the paper's configurations first")
    parser.add_argument(
        "--workers",
        default="auto",
        help="parallel local worker processes on this study (default auto: one per GPU, else one per CPU core as far as "
        "memory allows; 1 gives a study that proposes the same trials on every run)",
    )
    add_device_argument(parser)
    parser.add_argument(
        "--gpus",
        default=None,
        metavar="IDS",
        help="GPUs the workers share, e.g. 0,1: worker i trains on the i-th, in turn, and sees only that one "
        "(default: every GPU torch sees; none on a CPU machine)",
    )
    parser.add_argument(
        "--count-clip", action="store_true", help="count CLIP's grid path in the budget and trainable %% (the paper leaves CLIP out)"
    )
    parser.add_argument(
        "--objectives",
        default="score,trainable_pct",
        help="comma-separated, score and trainable_pct first; optional: train_time, peak_memory (default score,trainable_pct)",
    )
    return parser


@dataclass(frozen=True)
class LaunchOptions:
    """What `python -m search.launch` was asked for, one field per flag (`--help` says what each means)."""

    budget: str
    trials: int | None = None
    step_budget: int | None = None
    time_limit: float | None = None
    study: str | None = None
    storage: str | None = None
    data_dir: Path | None = None
    backbone: str | None = None
    random_init: bool = False
    data: Path | None = None
    data_root: Path | None = None
    tasks: str | None = None
    sampler: str = "tpe"
    seed: int = 0
    steps: int | None = None
    no_reference: bool = False
    confirm_seeds: int = 2
    confirm: str = "best"
    space: Path | None = None
    rungs: int = DEFAULT_RUNGS
    rung_measure: str = DEFAULT_RUNG_MEASURE
    rung_peers: str = DEFAULT_RUNG_PEERS
    no_warm_start: bool = False
    workers: str | int = "auto"
    device: str = "auto"
    gpus: str | None = None
    count_clip: bool = False
    objectives: str = "score,trainable_pct"


def main(argv: list[str] | None = None) -> int:
    refuse_dash_values(PROGRAM, argv, ("--budget",))
    return launch(LaunchOptions(**vars(build_parser().parse_args(argv))))


def launch(options: LaunchOptions) -> int:
    """Check every option, prepare, then run (or resume) the study and print its Pareto front.

    Returns the exit status; a bad option prints one line and exits with 2 (SystemExit) before
    any file or database is created.
    """

    settings = _validate(options)  # every check happens before any file or database is created
    configure_logging()
    with write_refusals_end_the_run(PROGRAM, settings["storage"]):
        return _run(options, **settings)


def _validate(args: LaunchOptions) -> dict:
    # The flags are checked in order of what checking them costs: first those that need no more
    # than the standard library, then the light modules (tasks, storage URLs), and only then
    # torch and open_clip (the devices, the backbone's weights: seconds of imports), so that a
    # mistyped flag fails at once.
    try:
        budget = parse_budget(args.budget)
    except BudgetError as error:
        fail(PROGRAM, str(error))
    if args.trials is not None and args.trials < 1:
        fail(PROGRAM, f"--trials must be >= 1, got {args.trials}")
    if args.step_budget is not None and args.step_budget < 1:
        fail(PROGRAM, f"--step-budget must be >= 1 training steps, got {args.step_budget}")
    workers_asked = _workers_flag(args.workers)
    if args.time_limit is not None and not (0 < args.time_limit < math.inf):
        fail(PROGRAM, f"--time-limit must be a finite number > 0 seconds, got {args.time_limit}; e.g. --time-limit 3600")
    if args.steps is not None and args.steps < 1:
        fail(PROGRAM, f"--steps must be >= 1, got {args.steps}")
    if not 0 <= args.rungs <= MAX_RUNGS:
        fail(
            PROGRAM,
            f"--rungs must be 0 (no multi-fidelity) to {MAX_RUNGS}, got {args.rungs}; the default {DEFAULT_RUNGS} measures trials "
            "after 1/9 and 1/3 of their steps",
        )
    from search.confirmation_limits import MAX_SEEDS, SCOPES

    if not 1 <= args.confirm_seeds <= MAX_SEEDS:
        fail(
            PROGRAM,
            f"--confirm-seeds must be 1 (no confirmation) to {MAX_SEEDS}, got {args.confirm_seeds}; the default 2 trains each confirmed configuration once more",
        )
    if args.confirm not in SCOPES:
        fail(
            PROGRAM,
            f"--confirm {args.confirm!r} is unknown; use best (the reference and the best within budget) or front (the whole Pareto front)",
        )
    if args.sampler not in SAMPLERS:
        fail(PROGRAM, f"--sampler {args.sampler!r} is unknown; use one of {', '.join(SAMPLERS)}")
    if args.study is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,99}", args.study):
        fail(PROGRAM, f"--study {args.study!r} must be 1-100 letters, digits or _.+- starting with a letter or digit")
    if args.storage is not None and not args.storage.strip():
        fail(PROGRAM, "--storage is empty; give a database URL such as 'sqlite:///path/to/studies.db', or omit --storage for the default")
    from models.backbones.backbone_spec import canonical_backbone
    from models.backbones.presets import DEFAULT_SEARCH_BACKBONE
    from models.config import ConfigError

    try:  # a spec is stored by its canonical text (absolute paths), checked against its files
        backbone = canonical_backbone(args.backbone or DEFAULT_SEARCH_BACKBONE)
    except ConfigError as error:
        fail(PROGRAM, "--backbone " + "; ".join(error.problems))
    data = _data_spec(args)
    tasks = data.names
    data_dir = (args.data_dir or default_data_dir()).resolve()
    from storage import StorageURLError, default_storage_url
    from storage.persistent import validate_persistent_storage_url

    storage = args.storage or default_storage_url(data_dir)
    try:
        storage = validate_persistent_storage_url(storage)
    except StorageURLError as error:
        fail(PROGRAM, str(error))
    if problem := data_dir_problem(data_dir):
        fail(PROGRAM, problem)
    from training.devices import DeviceError, gpus_in_use, local_worker_devices

    try:
        gpus = gpus_in_use(args.device, args.gpus)
    except DeviceError as error:
        fail(PROGRAM, str(error))
    from models.location import BackboneLocation

    try:
        location = BackboneLocation.resolve(backbone, data_dir, random_init=args.random_init)
        location.require_weights()
    except ConfigError as error:
        fail(PROGRAM, f"--backbone {backbone!r}: " + "; ".join(error.problems))
    workers = _worker_count(workers_asked, gpus, location)
    devices = local_worker_devices(args.device, args.gpus, workers.count)
    from storage.engine import StorageUnreachableError, check_reachable

    try:
        check_reachable(storage)  # a server that is down or refuses the password: say so now
    except StorageUnreachableError as error:
        fail(PROGRAM, f"--storage: {error}")
    from search.objective import OBJECTIVES
    from search.space_file import SpaceError, clip_trainable, load_space, study_problems

    objectives = tuple(o.strip() for o in args.objectives.split(",") if o.strip())
    unknown_objectives = [o for o in objectives if o not in OBJECTIVES]
    if unknown_objectives or objectives[:2] != ("score", "trainable_pct") or len(set(objectives)) != len(objectives):
        fail(
            PROGRAM,
            f"--objectives {args.objectives!r}: give score,trainable_pct then any of train_time, peak_memory, "
            f"each once (known: {', '.join(OBJECTIVES)})",
        )

    try:
        # CLIP's policy is searched where CLIP counts in the budget and can train at all.
        space = load_space(args.space, search_clip=args.count_clip and clip_trainable(location.clip_model, tasks))
    except SpaceError as error:
        fail(PROGRAM, f"--space: {error}")
    if contradictions := study_problems(space, location.clip_model, tasks):
        fail_lines(PROGRAM, [f"--space {space.source}: {line}" for line in contradictions])
    study = args.study or f"{'+'.join(tasks)}-{_budget_slug(budget.text)}"
    loaded = None
    if data.generated is None:  # the user's data: every problem found before anything is written
        from tasks.errors import DatasetError
        from training.environment import load_data

        try:
            loaded = load_data(data_dir, backbone, data)
        except DatasetError as error:
            fail_lines(PROGRAM, [f"--data {str(args.data)!r}: {line}" for line in str(error).splitlines()])
    return {
        "budget": budget,
        "backbone": backbone,
        "tasks": tasks,
        "data_dir": data_dir,
        "storage": storage,
        "study": study,
        "space": space,
        "objectives": objectives,
        "data": data,
        "loaded": loaded,
        "devices": devices,
        "workers": workers,
    }


def _data_spec(args: LaunchOptions):
    """The study's data description: the --data file's tasks (or those --tasks names), or the
    generated benchmark's tasks."""
    from tasks.data_spec import DataSpecError, generated_spec, load_data_file

    names = None if args.tasks is None else tuple(t.strip() for t in args.tasks.split(","))
    if names is not None and (not all(names) or len(set(names)) != len(names)):
        fail(PROGRAM, f"--tasks {args.tasks!r}: give comma-separated task names, each once and none empty")
    if args.data_root is not None and not args.data_root.is_dir():
        fail(PROGRAM, f"--data-root {str(args.data_root)!r} is not a folder; give the folder that holds your copy of the data")
    try:
        if args.data is None:
            return generated_spec(names or DEFAULT_TASKS)
        spec = load_data_file(args.data)
    except DataSpecError as error:
        fail_lines(PROGRAM, error.problems)
    if names is None:
        return spec
    unknown = [name for name in names if name not in spec.names]
    if unknown:
        fail(PROGRAM, f"--tasks names {unknown}, which {str(args.data)!r} does not have; its tasks: {', '.join(spec.names)}")
    return spec.subset(names)


def _workers_flag(text: str | int) -> int | None:
    """`--workers`: a whole number >= 1, or auto (None)."""
    value = str(text).strip()
    if value == "auto":
        return None
    if not value.isdigit() or int(value) < 1:
        fail(PROGRAM, f"--workers must be a whole number >= 1 or auto, got {value or repr(text)}; e.g. --workers 1 for a repeatable study")
    return int(value)


def _worker_count(asked: int | None, gpus: tuple[int, ...], location) -> "WorkerCount":
    """The local workers (the launcher counted): as asked, or the machine's default (training.worker_count)."""
    from training.worker_count import MachineResources, WorkerCount, default_workers, weight_bytes

    if asked is not None:
        return WorkerCount(asked, "as asked (--workers)")
    files = [location.clip_checkpoint, location.language_model if Path(location.language_model).is_dir() else None]
    count = default_workers(gpus, MachineResources.here(), weight_bytes(files))
    return WorkerCount(count.count, f"auto: {count.reason}")


def _budget_slug(text: str) -> str:
    return "budget-" + text.replace("%", "pct").replace(".", "_")


def _run(args: LaunchOptions, budget, backbone, tasks, data_dir, storage, study, space, objectives, data, loaded, devices, workers) -> int:
    import optuna

    from search.liveness import WorkerGuard, WorkerStopped, fail_dead_trials, study_liveness, study_storage
    from search.fidelity import saved_compute
    from search.objective import OBJECTIVES, REFERENCE_ATTR, WARM_START_ATTR
    from search.confirmation import confirm_study
    from search.queue_order import owed_first
    from search.report import front_report, hypervolume_text, nothing_fits, status_counts
    from search.space import fixed_config
    from search.warm_start import adapted_warm_starts
    from search.study_runner import make_objective, run_until_target
    from search.study_settings import BACKBONE_ATTR, INPUTS_ATTR, SETTINGS_ATTR, StudySettings
    from storage import init_schema, load_results, make_engine, redact
    from models.backbone_pin import BackboneChanged, backbone_pin
    from models.embedded import BuildChanged
    from tasks.data_spec import DataSpecError
    from tasks.digests import InputsChanged
    from tasks.errors import DatasetError
    from training.environment import prepare_environment
    from training.trial import count_trial_parameters

    started = time.perf_counter()
    log.info("data directory: %s", data_dir)
    log.info("%s; training on %s", workers.describe(), ", ".join(d.where() for d in devices))
    requested = StudySettings(
        budget=budget.text,
        backbone=backbone,
        tasks=tasks,
        target_trials=_trial_goal(args),
        step_budget=args.step_budget,
        seed=args.seed,
        steps=args.steps,
        sampler=args.sampler,
        space_yaml=space.text,
        space_source=space.source,
        count_clip=args.count_clip,
        objectives=objectives,
        random_init=args.random_init,
        rungs=args.rungs,
        rung_measure=args.rung_measure,
        rung_peers=args.rung_peers,
        data=None if data.generated is not None else data.to_dict(),
    )
    settings = _resumed_settings(storage, study, requested)
    budget, backbone, tasks, objectives = parse_budget(settings.budget), settings.backbone, settings.tasks, settings.objectives
    pinned = _pinned_inputs(storage, study)
    pinned_backbone = _stored_attr(storage, study, BACKBONE_ATTR)
    log.info("preparing data, backbone %s and visual features (cached after the first run) ...", backbone)
    try:
        spec = settings.data_spec()
        reuse = loaded is not None and spec == loaded.spec and backbone == requested.backbone and args.data_root is None
        source = loaded if reuse else spec
        env = prepare_environment(
            data_dir,
            backbone,
            source,
            benchmark_seed=0,
            random_init=settings.random_init,
            data_root=args.data_root,
            pinned=pinned,
            pinned_backbone=pinned_backbone,
            device=devices[0].device,
        )
    except (DataSpecError, DatasetError, InputsChanged, BuildChanged, BackboneChanged) as error:
        fail_lines(PROGRAM, [f"study {study!r}: {line}" for line in str(error).splitlines()])
    assert env.data is not None, "prepare_environment records the data it read"
    log.info(
        "prepared in %.0f s; data: %s (tasks %s; %d files pinned by digest)",
        time.perf_counter() - started,
        env.data.source,
        ", ".join(env.tasks),
        len(env.inputs),
    )
    engine = make_engine(storage)
    init_schema(engine)
    study_obj = optuna.create_study(
        study_name=study,
        storage=study_storage(storage, engine, study),  # heartbeats; a dead worker's trial is retried
        directions=[OBJECTIVES[name] for name in objectives],
        sampler=make_sampler(settings.sampler, settings.seed),
        load_if_exists=True,
    )
    if existing := len(study_obj.get_trials(deepcopy=False)):
        # A relaunch: a sampler seeded as the first launch's would draw its first random
        # configurations again (trained already: each one pruned as a repeat, a retry's turn
        # included). Seeded by the study's seed and its trial count, the search goes on, and a
        # relaunch of the same study state proposes the same trials.
        study_obj.sampler = make_sampler(settings.sampler, settings.seed + existing)
    owed_first(study_obj)
    # A trial whose worker died (a SIGKILL, say) is failed and queued again now, whatever the goal:
    # Optuna looks only before starting a trial, and a study at its goal starts none.
    fail_dead_trials(study_obj)
    objective = make_objective(settings, env, engine, study)
    log.info("search space: %s (methods %s)", space.source, ", ".join(objective.defaults.space.methods))
    if not pinned:
        if study_obj.trials:
            log.info(
                "study %r had no data digests (launched before they were recorded): pinned it to the %d files read here",
                study,
                len(env.inputs),
            )
        study_obj.set_user_attr(INPUTS_ATTR, {"files": dict(env.inputs)})
    if not pinned_backbone:  # before the settings: a worker that finds them finds the pin too
        if study_obj.trials:
            log.info(
                "study %r had no backbone digests (launched before they were recorded): pinned it to the %d backbone files read here",
                study,
                len(env.backbone_files),
            )
        study_obj.set_user_attr(BACKBONE_ATTR, backbone_pin(env.location, env.backbone_files))
    if not study_obj.trials:
        study_obj.set_user_attr(SETTINGS_ATTR, settings.to_attr())
        if not args.no_reference:
            study_obj.enqueue_trial({}, user_attrs={REFERENCE_ATTR: True})
        if not args.no_warm_start:
            starts, skipped = adapted_warm_starts(
                objective.defaults.space,
                lambda params: count_trial_parameters(fixed_config(params, objective.defaults), env, with_clip=settings.count_clip),
                budget,
            )
            for start in starts:
                study_obj.enqueue_trial(start.params, user_attrs={WARM_START_ATTR: start.name})
            log.info(
                "warm starts (the paper's configurations at their relative sizes on %s): %s",
                backbone,
                ", ".join(f"{s.name} {s.trainable_pct:.2f}% (target {s.target_pct:.2f}%)" for s in starts) or "none",
            )
            if skipped:
                log.info("warm starts left out: %s", "; ".join(skipped))
    elif SETTINGS_ATTR not in study_obj.user_attrs:
        study_obj.set_user_attr(SETTINGS_ATTR, settings.to_attr())  # a study from before settings were stored
    log.info("study %r in %s: budget %s, goal %s", study, redact(storage), budget.describe(), settings.goal_text())
    baseline = {name: task.majority_baseline for name, task in env.tasks.items()}
    guard = WorkerGuard(study_obj, engine, study_liveness(study_obj))
    guard.install()  # Ctrl-C / SIGTERM: the running trial is failed and queued again, not lost
    processes = _start_workers(devices[1:], study, storage, data_dir)
    try:
        run_until_target(
            study_obj, guard.wrap(objective), settings.target_trials, args.time_limit, engine, settings.step_budget, workers=workers.count
        )
        _wait(processes)  # their last trials are results the confirmation must rank
        if guard.signal_name is None:
            remaining = None if args.time_limit is None else args.time_limit - (time.perf_counter() - started)

            def helpers(queued: int) -> None:  # the launcher trains one, its local workers the others
                processes.extend(_start_workers(devices[1:queued], study, storage, data_dir))

            confirm_study(
                study_obj,
                guard.wrap(objective),
                engine,
                budget,
                seeds=args.confirm_seeds,
                scope=args.confirm,
                time_limit=remaining,
                on_queued=helpers,
                slots=workers.count,
            )
    except WorkerStopped as stop:
        retry = guard.release(stop)
        outcome = f"queued again as trial {retry}" if retry is not None else "not queued again (its error says why)"
        print(
            f"{PROGRAM}: stopped by {guard.signal_name}; trial {guard.interrupted} failed and {outcome}; "
            f"completed trials are kept: run the same command again to resume study {study!r}",
            file=sys.stderr,
        )
        return guard.exit_code
    finally:
        if guard.signal_name is not None:
            _stop(processes)  # each releases its running trial at once, as on its own
        _wait(processes)
    fail_dead_trials(study_obj)  # once more on the way out, as search.worker does
    if guard.signal_name is not None:
        print(f"{PROGRAM}: stopped by {guard.signal_name} between trials; run the same command again to resume", file=sys.stderr)
        return guard.exit_code
    results = load_results(engine, study)
    print()
    print(f"Study {study!r}: {status_counts(results)}; budget {budget.describe()} ({budget.text})")
    print("Majority-answer baseline: " + ", ".join(f"{k} {v:.1f}" for k, v in baseline.items()))
    print("Pareto front (score vs trainable %, complete trials):")
    print(front_report(results, budget))
    print(f"Hypervolume: {hypervolume_text(results)}")
    print(saved_compute(study_obj.get_trials(deepcopy=False)).describe().capitalize())
    print(f"Trained by: {workers.describe()}")
    print(f"Results stored in: {redact(storage)}  (Optuna tables + trial_results)")
    print(f"Elapsed: {time.perf_counter() - started:.0f} s")
    print(f"Browse: python -m dashboard --storage '{redact(storage)}'")
    hopeless = nothing_fits(results, budget)
    if hopeless is not None:  # the search ran, but it has no answer within the budget: say why, exit 1
        print(f"{PROGRAM}: {hopeless}", file=sys.stderr)
        return 1
    print(f"Export: python -m search.export --study {study} --storage '{redact(storage)}' --budget {budget.text} --out best-recipe.yaml")
    return 0


def _trial_goal(args: LaunchOptions) -> int:
    """The trained-trial goal: --trials, else 12, else none (0) when only a step budget is given."""
    if args.trials is not None:
        return args.trials
    return 0 if args.step_budget is not None else 12


def _resumed_settings(storage: str, study: str, requested):
    """The settings a launch runs with: a new study's from the command line; an existing study's
    as stored with it (relaunching resumes the same search), only the trial goal from the
    command line. Differences are logged, never silently applied."""
    import dataclasses

    import optuna

    from search.study_settings import SETTINGS_ATTR, StudySettings
    from storage.urls import is_sqlite, sqlite_path

    if is_sqlite(storage) and ((path := sqlite_path(storage)) is None or not path.exists()):
        # No database yet (a first run: the data directory may not exist either), so no study
        # to resume; opening one here would try to create the file before its folder.
        return requested
    try:
        stored = optuna.load_study(study_name=study, storage=storage).user_attrs.get(SETTINGS_ATTR)
        stored = StudySettings.from_attr(stored) if stored else None
    except (KeyError, ValueError):  # a new study, or one stored before settings were
        return requested
    if stored is None:
        return requested
    searched = (
        "budget",
        "backbone",
        "tasks",
        "seed",
        "steps",
        "sampler",
        "space_yaml",
        "count_clip",
        "objectives",
        "random_init",
        "rungs",
        "rung_measure",
        "rung_peers",
        "data",
    )
    ignored = [name for name in searched if getattr(requested, name) != getattr(stored, name)]
    if ignored:
        log.warning(
            "study %r exists: resuming it with its stored settings; the command line's %s ignored (start a new --study to change them)",
            study,
            ", ".join(ignored),
        )
    return dataclasses.replace(stored, target_trials=requested.target_trials, step_budget=requested.step_budget)


def _pinned_inputs(storage: str, study: str) -> dict[str, str] | None:
    """The data digests stored with an existing study (None: a new study, or one from before)."""
    from search.study_settings import INPUTS_ATTR

    stored = _stored_attr(storage, study, INPUTS_ATTR)
    return dict(stored["files"]) if stored is not None else None


def _stored_attr(storage: str, study: str, attr: str) -> dict | None:
    """A digests attribute (`{"files": {...}, ...}`) of an existing study (None: a new study, or one from before it)."""
    import optuna

    from storage.urls import is_sqlite, sqlite_path

    if is_sqlite(storage) and ((path := sqlite_path(storage)) is None or not path.exists()):
        return None
    try:
        stored = optuna.load_study(study_name=study, storage=storage).user_attrs.get(attr)
    except (KeyError, ValueError):
        return None
    return dict(stored) if isinstance(stored, dict) and isinstance(stored.get("files"), dict) else None


def _start_workers(devices: list, study: str, storage: str, data_dir: Path) -> list:
    """Extra local worker processes on the same study (`--workers N` starts N-1 of them), each
    on its device (training.devices.local_worker_devices: one GPU each, in turn)."""
    import subprocess

    from storage.urls import STORAGE_ENV
    from training.devices import worker_environment

    workers = []
    for index, placed in enumerate(devices, start=1):
        command = [sys.executable, "-m", "search.worker", "--study", study, "--data-dir", str(data_dir), "--quiet"]
        command += ["--device", placed.flag()]
        # The URL goes in the environment: on the command line, ps would show its password.
        env = {**worker_environment(placed.gpu), STORAGE_ENV: storage}
        workers.append(subprocess.Popen(command, env=env))
        log.info("started local worker %d (pid %d) on %s", index, workers[-1].pid, placed.where())
    return workers


def _stop(workers: list) -> None:
    """Ask the local workers to stop (SIGTERM): each fails and queues its running trial, then exits."""
    import signal

    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            log.info("stopping local worker (pid %d)", worker.pid)


def _wait(workers: list) -> None:
    for worker in workers:
        try:
            worker.wait()
        except BaseException:  # Ctrl-C, or the stop guard exiting: take the workers down too
            worker.terminate()
            worker.wait()
            raise


def make_sampler(name: str, seed: int | None):
    """The Optuna sampler named on the command line (seed None: a random one)."""
    import warnings

    import optuna

    # Constraints reach the samplers through trial.set_constraint (Optuna >= 5).
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    if name == "gp":
        # Optuna's GP sampler handles several objectives and constraints (it needs scipy). It
        # models the parameters every trial shares (the method, the optimiser) and samples each
        # method's conditional ones independently.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.GPSampler(seed=seed, warn_independent_sampling=False)
    with warnings.catch_warnings():
        # `group` (conditional parameters per method) is marked experimental since Optuna 2.8.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True)


if __name__ == "__main__":
    sys.exit(main())
