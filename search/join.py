"""Join an existing study: what `search.worker` and `search.confirm` do before their first trial.

The study's settings were stored with it by `search.launch`; joining reads them back, prepares
the same data and backbone in this machine's data directory (compared with the study's digests
before anything is written), and builds the study's objective. Every problem exits with a
one-line message naming the fix, before any trial starts.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.data_dir import data_dir_problem
from search.cli_common import default_data_dir, fail, fail_lines

log = logging.getLogger(__name__)


@dataclass
class JoinedStudy:
    """A study this process can train trials of."""

    storage: str  # the validated URL
    study: Any  # optuna.Study, on the heartbeat storage
    engine: Any  # sqlalchemy.Engine on the results tables
    guard: Any  # search.liveness.WorkerGuard, installed
    settings: Any  # search.study_settings.StudySettings
    env: Any  # training.environment.TrialEnvironment
    objective: Any  # search.objective.Objective


def storage_url(program: str, given: str | None) -> str:
    """The study's storage URL from `--storage` or the environment, validated (exits with 2 otherwise)."""
    from storage import StorageURLError
    from storage.persistent import validate_persistent_storage_url
    from storage.urls import STORAGE_ENV

    if given is not None and not given.strip():
        fail(program, "--storage is empty; give the study's database URL, or omit --storage to use $" + STORAGE_ENV)
    url = given or os.environ.get(STORAGE_ENV)
    if not url:
        fail(program, f"no storage given: pass --storage URL or set ${STORAGE_ENV} to the study's database URL")
    try:
        return validate_persistent_storage_url(url)
    except StorageURLError as error:
        fail(program, str(error))


def check_folders(program: str, data_dir: Path | None, data_root: Path | None) -> None:
    """`--data-dir` and `--data-root` name folders (a missing data directory is created later)."""
    if data_root is not None and not data_root.is_dir():
        fail(program, f"--data-root {str(data_root)!r} is not a folder; give the folder that holds this machine's copy of the data")
    if data_dir is not None and (problem := data_dir_problem(data_dir)):
        fail(program, problem)


def open_study(
    program: str,
    name: str,
    storage: str,
    data_dir: Path | None,
    data_root: Path | None,
    sampler_seed: int | None = None,
    device: Any = None,
) -> JoinedStudy:
    """Load the study, install the stop guard, and prepare its data, backbone and objective.

    Args:
        program: The command, for messages.
        name: The study.
        storage: A validated URL (:func:`storage_url`) whose study exists.
        sampler_seed: This process's sampler seed (None: a random one, so workers propose
            different trials).
        device: Where this process trains and encodes (a torch.device; None: CUDA when present).
    """
    import optuna

    from search.launch import make_sampler
    from search.liveness import WorkerGuard, fail_dead_trials, study_liveness, study_storage
    from search.queue_order import owed_first
    from search.study_runner import make_objective
    from search.study_settings import BACKBONE_ATTR, INPUTS_ATTR, SETTINGS_ATTR, StudySettings
    from models.backbone_pin import BackboneChanged, backbone_pin
    from models.embedded import BuildChanged
    from storage import init_schema, make_engine
    from tasks.data_spec import DataSpecError
    from tasks.digests import InputsChanged
    from tasks.errors import DatasetError
    from training.environment import load_data, prepare_environment

    engine = make_engine(storage)
    try:
        study = owed_first(optuna.load_study(study_name=name, storage=study_storage(storage, engine, name)))
        liveness = study_liveness(study)
    except ValueError as error:
        fail(program, f"study {name!r}: {error}")
    fail_dead_trials(study)  # a dead worker's trial is released now, whatever the study's goal
    guard = WorkerGuard(study, engine, liveness)
    guard.install()  # from here on, SIGTERM / Ctrl-C release a running trial instead of abandoning it
    try:
        settings = StudySettings.from_attr(study.user_attrs.get(SETTINGS_ATTR, {}))
    except ValueError as error:
        fail(program, f"study {name!r} has no usable settings ({error}); relaunch it with python -m search.launch")
    study.sampler = make_sampler(settings.sampler, sampler_seed)
    data_dir = (data_dir or default_data_dir()).resolve()
    pinned = (study.user_attrs.get(INPUTS_ATTR) or {}).get("files")
    pinned_backbone = study.user_attrs.get(BACKBONE_ATTR)
    if not isinstance(pinned_backbone, dict) or not isinstance(pinned_backbone.get("files"), dict):
        pinned_backbone = None  # none stored (a study from before), or unreadable: pinned below
    try:
        # The data and the backbone are compared with the study's digests before anything is
        # written (a missing embedded backbone is built first: reproducibly, so it compares equal).
        loaded = load_data(data_dir, settings.backbone, settings.data_spec(), data_root=data_root)
        env = prepare_environment(
            data_dir,
            settings.backbone,
            loaded,
            random_init=settings.random_init,
            pinned=pinned,
            pinned_backbone=pinned_backbone,
            device=device,
        )
    except (DataSpecError, DatasetError, InputsChanged, BuildChanged, BackboneChanged) as error:
        fail_lines(program, [f"study {name!r}: {line}" for line in str(error).splitlines()])
    if not pinned:  # a study launched before data digests were recorded
        study.set_user_attr(INPUTS_ATTR, {"files": dict(env.inputs)})
        log.info("study %r had no data digests: pinned it to the %d files read here", name, len(env.inputs))
    if not pinned_backbone:  # a study launched before backbone digests were recorded
        study.set_user_attr(BACKBONE_ATTR, backbone_pin(env.location, env.backbone_files))
        log.info("study %r had no backbone digests: pinned it to the %d backbone files read here", name, len(env.backbone_files))
    init_schema(engine)
    objective = make_objective(settings, env, engine, name)
    return JoinedStudy(storage, study, engine, guard, settings, env, objective)


def wait_for_study(program: str, name: str, url: str, wait: float) -> None:
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
            fail(program, problem + (f" (waited {wait:.0f} s)" if wait else ""))
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
