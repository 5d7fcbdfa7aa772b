"""Dead trials are released by every process that opens the study, and owed trials run first.

A trial whose worker was SIGKILLed keeps RUNNING in Optuna until some process notices that its
heartbeats stopped; Optuna looks only before starting a trial, so a relaunch of a study that
has met its goal used to leave it running for good. Its retry, and any confirmation seed, must
then run before the queued search trials (warm starts kept for a longer relaunch).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import warnings

import optuna
from optuna.trial import TrialState

from search.liveness import LIVENESS_ATTR, Liveness, fail_dead_trials, study_storage
from search.objective import REFERENCE_ATTR, REPLICATE_ATTR, SEED_ATTR
from search.queue_order import owed_first
from search.study_runner import run_until_target
from storage import TrialRecord, init_schema, load_results, make_engine, record_trial

LIVENESS = Liveness(heartbeat_interval=1, grace_period=2, max_retry=1)


def _dead_trial(url: str, engine, name: str) -> int:
    """Start a trial that beats once and goes silent, as if its worker were SIGKILLed."""
    storage = study_storage(url, engine, name)
    study = optuna.load_study(study_name=name, storage=storage)
    with warnings.catch_warnings():  # "heartbeat is supposed to be used with Study.optimize"
        warnings.simplefilter("ignore")
        trial = study.ask()
    storage.record_heartbeat(trial._trial_id)
    record = TrialRecord(name, trial.number, "running", "lora", {"method": "lora"}, 10, 100, worker="gone-host:41")
    record_trial(engine, record)
    storage.engine.dispose()
    return trial.number


def test_a_retry_then_the_confirmation_seeds_run_before_queued_search_trials(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    engine = make_engine(url)
    init_schema(engine)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    created = optuna.create_study(study_name="queue", storage=url, directions=["maximize", "minimize"])
    created.set_user_attr(LIVENESS_ATTR, LIVENESS.to_attr())
    created.enqueue_trial({}, user_attrs={REFERENCE_ATTR: True})
    created.enqueue_trial({"x": 0.25})  # a warm start, waiting
    created.enqueue_trial({"x": 0.75})  # another
    dead = _dead_trial(url, engine, "queue")  # the reference, taken first, then its worker died
    created.enqueue_trial({"x": 0.5}, user_attrs={REPLICATE_ATTR: 9, SEED_ATTR: 1})  # a confirmation seed
    time.sleep(3.2)  # past the grace period (SQLite's clock counts whole seconds)
    study = owed_first(optuna.load_study(study_name="queue", storage=study_storage(url, engine, "queue")))
    fail_dead_trials(study)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        taken = [study.ask() for _ in range(4)]
    trials = {t.number: t for t in study.get_trials()}
    first = trials[taken[0].number]
    assert first.system_attrs["failed_trial"] == dead and first.user_attrs[REFERENCE_ATTR], "the retried reference first"
    assert trials[taken[1].number].user_attrs[REPLICATE_ATTR] == 9, "then the confirmation seed"
    assert [trials[t.number].params.get("x", None) for t in taken[2:]] == [None, None]  # params come when suggested
    assert [trials[t.number].system_attrs["fixed_params"]["x"] for t in taken[2:]] == [0.25, 0.75], "then the queue, oldest first"
    engine.dispose()


def test_a_relaunch_releases_a_dead_trial_even_when_the_goal_is_met(data_dir, env, tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    command = [
        sys.executable, "-m", "search.launch", "--workers", "1", "--budget", "5%", "--trials", "1", "--steps", "2", "--rungs", "0",
        "--no-warm-start", "--no-reference", "--confirm-seeds", "1", "--tasks", "vqa", "--study", "dead",
        "--storage", url, "--data-dir", str(data_dir),
    ]  # fmt: skip
    first = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stderr[-3000:]
    engine = make_engine(url)
    optuna.load_study(study_name="dead", storage=url).set_user_attr(LIVENESS_ATTR, LIVENESS.to_attr())
    dead = _dead_trial(url, engine, "dead")
    time.sleep(3.2)
    again = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    trials = optuna.load_study(study_name="dead", storage=url).trials
    assert trials[dead].state == TrialState.FAIL and TrialState.RUNNING not in {t.state for t in trials}
    row = load_results(engine, "dead").set_index("trial_number").loc[dead]
    assert row["status"] == "failed" and "stopped sending heartbeats" in row["error"] and "queued again as trial" in row["error"]
    # The retry was owed, so the relaunch trained it although the study already had its trial.
    retry = next(t for t in trials if t.system_attrs.get("failed_trial") == dead)
    assert retry.state == TrialState.COMPLETE
    engine.dispose()


def _study_at_its_goal(tmp_path, name: str):
    """A study with its one trial trained, on the heartbeat storage, as a worker opens it."""
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    engine = make_engine(url)
    init_schema(engine)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    created = optuna.create_study(study_name=name, storage=url, directions=["maximize", "minimize"])
    created.set_user_attr(LIVENESS_ATTR, LIVENESS.to_attr())
    created.enqueue_trial({"x": 1.0})
    created.optimize(lambda t: (t.suggest_float("x", 0.0, 2.0), 1.0), n_trials=1)
    return url, engine


def _objective(trial: optuna.Trial) -> tuple[float, float]:
    return trial.suggest_float("x", 0.0, 2.0), 1.0


def test_a_worker_at_the_goal_waits_for_a_trial_that_just_went_silent_and_trains_its_retry(tmp_path) -> None:
    # The last survivors of a study used to leave while a worker killed a second ago still
    # looked alive, so its trial stayed "running" for good (seen in CI with three workers).
    url, engine = _study_at_its_goal(tmp_path, "silent")
    dead = _dead_trial(url, engine, "silent")  # not stale yet: the grace period has not passed
    study = optuna.load_study(study_name="silent", storage=study_storage(url, engine, "silent"))

    assert run_until_target(study, _objective, target=1, time_limit=None, engine=engine) == 1, "the retry, trained here"

    trials = study.get_trials()
    assert trials[dead].state == TrialState.FAIL
    retry = next(t for t in trials if t.system_attrs.get("failed_trial") == dead)
    assert retry.state == TrialState.COMPLETE
    row = load_results(engine, "silent").set_index("trial_number").loc[dead]
    assert row["status"] == "failed" and f"queued again as trial {retry.number}" in row["error"]
    engine.dispose()


def test_a_worker_at_the_goal_leaves_a_trial_whose_worker_still_beats_to_it(tmp_path) -> None:
    url, engine = _study_at_its_goal(tmp_path, "alive")
    alive = _dead_trial(url, engine, "alive")
    beating = study_storage(url, engine, "alive")
    trial_id = beating.get_trial_id_from_study_id_trial_number(beating.get_study_id_from_name("alive"), alive)
    stop = threading.Event()

    def beat() -> None:  # its worker, alive and training
        while not stop.wait(0.5):
            beating.record_heartbeat(trial_id)

    beater = threading.Thread(target=beat)
    beater.start()
    try:
        study = optuna.load_study(study_name="alive", storage=study_storage(url, engine, "alive"))
        started = time.monotonic()
        assert run_until_target(study, _objective, target=1, time_limit=None, engine=engine) == 0
        waited = time.monotonic() - started
    finally:
        stop.set()
        beater.join()
    assert study.get_trials()[alive].state == TrialState.RUNNING, "a live worker's trial is its own to finish"
    # It left once the heartbeat moved, not after the grace period plus two intervals (4 s).
    assert waited < LIVENESS.grace_period + 2 * LIVENESS.heartbeat_interval, waited
    beating.engine.dispose()
    engine.dispose()
