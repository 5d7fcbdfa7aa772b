"""Distributed studies: dead workers' trials retried once, SIGTERM releases, the compose topology.

The quick tests drive Optuna's heartbeat machinery in-process with a stand-in objective, on
SQLite and on PostgreSQL. The slow ones start real `search.worker` processes on tiny trials
(1 training step, the session's prepared benchmark): one SIGTERM'd mid-trial (SQLite), three
with one SIGKILL'd mid-trial (PostgreSQL, skipped without ``VLPETL_TEST_POSTGRES_URL``), and
the services of docker-compose.yml run as local processes.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import optuna
from sqlalchemy.exc import InterfaceError, OperationalError
import pandas as pd
import pytest
import sqlalchemy
import yaml
from optuna.trial import TrialState
from worker_studies import make_worker_study
from postgres_schemas import POSTGRES_ENV, fresh_schema

from search.liveness import (
    LIVENESS_ATTR,
    Liveness,
    RetryDeadTrial,
    WorkerGuard,
    fail_dead_trials,
    study_storage,
)
from search.space_file import parse_space
from storage import TrialRecord, default_storage_url, init_schema, load_results, make_engine, record_trial

REPO = Path(__file__).resolve().parents[2]
HOST = socket.gethostname()
# Small and cheap: LoRA rank 128 is over a 5% budget (infeasible, never trains), the rest fit.
SPACE_YAML = """
methods:
  lora:
    rank: [4, 8, 128]
    learning_rate_scale: [0.5, 1.0, 2.0]
  vl_only:
    learning_rate_scale: [0.5, 1.0, 2.0]
  vl_ln:
    learning_rate_scale: [0.5, 1.0, 2.0]
optimizer: [adamw]
"""
SPACE = parse_space(yaml.safe_load(SPACE_YAML), "test space")


def point(method: str, **values: Any) -> dict[str, Any]:
    params = SPACE.fixed_params(method, values)
    assert params is not None, (method, values)
    return params


# ---------------------------------------------------------------- backends


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A URL whose tables (ours and Optuna's) live in a fresh schema, dropped afterwards."""
    with fresh_schema("vlpetl_dist", "the distributed tests on PostgreSQL") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield default_storage_url(tmp_path / "db")
        return
    with postgres_schema() as url:
        yield url


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with postgres_schema() as url:
        yield url


# ---------------------------------------------------------------- settings


def test_liveness_settings_are_checked_and_stored_with_the_study() -> None:
    assert Liveness.from_attr(None) == Liveness()
    assert Liveness.from_attr(Liveness(2, 9, 0).to_attr()) == Liveness(2, 9, 0)
    with pytest.raises(ValueError) as info:
        Liveness(heartbeat_interval=0, grace_period=1, max_retry=-1)
    message = str(info.value)
    assert "heartbeat_interval must be >= 1 second, but got 0" in message
    assert "max_retry must be >= 0" in message
    with pytest.raises(ValueError, match=r"grace_period >= 2 \* heartbeat_interval must hold.*grace_period=15"):
        Liveness(heartbeat_interval=10, grace_period=15)
    with pytest.raises(ValueError, match=r"'vlpetl_liveness' must map.*study.set_user_attr"):
        Liveness.from_attr({"heartbeat": 5})


# ---------------------------------------------------------------- in-process heartbeats


def _heartbeat_study(url: str, name: str, liveness: Liveness):
    engine = make_engine(url)
    init_schema(engine)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    created = optuna.create_study(study_name=name, storage=url, directions=["maximize", "minimize"])
    created.set_user_attr(LIVENESS_ATTR, liveness.to_attr())
    storage = study_storage(url, engine, name)
    assert (storage.heartbeat_interval, storage.grace_period) == (liveness.heartbeat_interval, liveness.grace_period)
    return engine, storage, optuna.load_study(study_name=name, storage=storage)


def _guarded_study(url: str, name: str):
    """A heartbeat study (1 s beats, 2 s grace) and a worker's guard on it."""
    liveness = Liveness(heartbeat_interval=1, grace_period=2, max_retry=2)
    engine, storage, study = _heartbeat_study(url, name, liveness)
    return engine, storage, study, WorkerGuard(study, engine, liveness)


def _running_row(engine, study: optuna.Study, trial: optuna.Trial, worker: str) -> None:
    record_trial(
        engine,
        TrialRecord(study.study_name, trial.number, "running", "lora", {"method": "lora", "x": trial.params.get("x")},
                    10, 100, worker=worker),
    )  # fmt: skip


def _start_dead_trial(engine, storage, study: optuna.Study, worker: str) -> optuna.Trial:
    """A trial that beat once and then went silent, as if its worker were SIGKILLed."""
    with warnings.catch_warnings():  # "heartbeat is supposed to be used with Study.optimize"
        warnings.simplefilter("ignore")
        trial = study.ask()
    trial.suggest_float("x", 0, 1)
    storage.record_heartbeat(trial._trial_id)
    _running_row(engine, study, trial, worker)
    return trial


def test_dead_trial_is_marked_failed_and_retried_exactly_once(backend_url: str) -> None:
    engine, storage, study = _heartbeat_study(backend_url, "dead", Liveness(heartbeat_interval=1, grace_period=2, max_retry=1))
    dead = _start_dead_trial(engine, storage, study, "gone-host:41")
    fail_dead_trials(study)
    assert study.trials[0].state == TrialState.RUNNING, "within the grace period a silent trial is still alive"

    time.sleep(3.2)  # past the grace period (the database clock counts whole seconds on SQLite)
    fail_dead_trials(study)
    fail_dead_trials(study)  # a second look (another worker) finds nothing more to do
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.WAITING]
    retry = trials[1]
    assert retry.params == dead.params and retry.system_attrs["failed_trial"] == dead.number
    row = load_results(engine, "dead").iloc[0]
    assert row["status"] == "failed" and row["worker"] == "gone-host:41"
    assert "stopped sending heartbeats for over 2 s" in row["error"]
    assert f"queued again as trial {retry.number}" in row["error"]

    # The next trial any worker runs is the retry, with the same parameters, recorded once.
    def objective(trial: optuna.Trial) -> tuple[float, float]:
        x = trial.suggest_float("x", 0, 1)
        record_trial(engine, TrialRecord("dead", trial.number, "complete", "lora", {"method": "lora", "x": x}, 10, 100,
                                         score=50.0, worker="live-host:42", finished_at=datetime.now(UTC)))  # fmt: skip
        return 50.0, 10.0

    study.optimize(objective, n_trials=1)
    assert study.trials[1].state == TrialState.COMPLETE and study.trials[1].params == dead.params
    rows = load_results(engine, "dead")
    assert rows["trial_number"].tolist() == [0, 1] and rows["status"].tolist() == ["failed", "complete"]

    # max_retry=1: a trial whose retry dies too is not queued a third time, and the row says why.
    fresh = _start_dead_trial(engine, storage, study, "gone-host:43")
    time.sleep(3.2)
    fail_dead_trials(study)
    again = _start_dead_trial(engine, storage, study, "gone-host:44")  # its retry, popped from the queue
    assert (again.number, again.params) == (fresh.number + 1, fresh.params)
    time.sleep(3.2)
    fail_dead_trials(study)
    assert [t.state for t in study.get_trials()][2:] == [TrialState.FAIL, TrialState.FAIL], "no retry beyond max_retry"
    row = load_results(engine, "dead").set_index("trial_number").loc[again.number]
    assert row["status"] == "failed" and row["worker"] == "gone-host:44"
    assert (
        f"not queued again: trial {fresh.number} already ran 2 times (trials {fresh.number}, {again.number}; at most 1 retries)"
        in row["error"]
    )
    engine.dispose()
    storage.engine.dispose()


def test_a_dead_trial_that_recorded_nothing_yet_gets_its_failed_row(backend_url: str) -> None:
    # Its worker died between counting the parameters and writing the "running" row.
    engine, storage, study = _heartbeat_study(backend_url, "early", Liveness(heartbeat_interval=1, grace_period=2, max_retry=1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trial = study.ask()
    trial.suggest_float("x", 0, 1)
    config = {"method": "lora", "method_params": {"rank": 4}}
    for key, value in (("config", config), ("trainable_params", 10), ("total_params", 1000)):
        trial.set_user_attr(key, value)
    storage.record_heartbeat(trial._trial_id)
    silent = study.ask()  # one that died before counting: nothing to write a row from
    storage.record_heartbeat(silent._trial_id)
    time.sleep(3.2)
    fail_dead_trials(study)
    rows = load_results(engine, "early")
    assert rows["trial_number"].tolist() == [trial.number]
    row = rows.iloc[0]
    assert (row["status"], row["method"], row["config"], row["trainable_params"]) == ("failed", "lora", config, 10)
    assert "stopped sending heartbeats for over 2 s" in row["error"] and "queued again as trial" in row["error"]
    engine.dispose()
    storage.engine.dispose()


def test_a_stalled_worker_cannot_record_a_trial_already_retried(backend_url: str) -> None:
    engine, storage, study, guard = _guarded_study(backend_url, "zombie")

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        x = trial.suggest_float("x", 0, 1)
        _running_row(engine, study, trial, "slow-host:1")
        # Meanwhile another worker declares this one dead and queues the trial again ...
        storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        RetryDeadTrial(engine, guard.liveness)(study, storage.get_trial(trial._trial_id))
        # ... and the stalled worker finishes and records its result anyway.
        record_trial(engine, TrialRecord("zombie", trial.number, "complete", "lora", {"method": "lora", "x": x}, 10, 100,
                                         score=50.0, worker="slow-host:1", finished_at=datetime.now(UTC)))  # fmt: skip
        return 50.0, 10.0

    # Optuna refuses the late result; 5.0 reports "Cannot tell a FAIL trial" as an AssertionError.
    with pytest.raises((ValueError, AssertionError)):
        study.optimize(guard.wrap(objective), n_trials=1)
    assert guard.overtaken == 0
    row = load_results(engine, "zombie").iloc[0]
    assert row["status"] == "failed" and "after another worker had declared it dead" in row["error"]
    assert [t.state for t in study.get_trials()] == [TrialState.FAIL, TrialState.WAITING]
    engine.dispose()
    storage.engine.dispose()


@pytest.mark.parametrize("recorded", ["infeasible", "failed"])
def test_an_error_after_the_outcome_is_recorded_fails_the_row_as_optuna_fails_the_trial(backend_url: str, recorded: str) -> None:
    # The soak test once ended with a trial Optuna had failed and a row still "infeasible":
    # an error raised after the objective wrote its outcome (a storage call, say).
    engine, storage, study, guard = _guarded_study(backend_url, "late-error")

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        x = trial.suggest_float("x", 0, 1)
        error = "its own reason" if recorded == "failed" else "over the budget"
        record_trial(engine, TrialRecord("late-error", trial.number, recorded, "lora", {"method": "lora", "x": x}, 10, 100,
                                         error=error, finished_at=datetime.now(UTC)))  # fmt: skip
        raise RuntimeError("the storage went away after the row was written")

    study.optimize(guard.wrap(objective), n_trials=1, catch=(Exception,))
    assert [t.state for t in study.get_trials()] == [TrialState.FAIL]
    row = load_results(engine, "late-error").iloc[0]
    if recorded == "failed":  # the objective's own reason stays
        assert (row["status"], row["error"]) == ("failed", "its own reason")
    else:
        assert row["status"] == "failed"
        assert row["error"] == "failed after its outcome was recorded: RuntimeError: the storage went away after the row was written"
    engine.dispose()
    storage.engine.dispose()


def _closed_connection_through_optuna() -> Exception:
    # What Optuna raises when a commit meets a connection the server closed: the driver's
    # InterfaceError (no OperationalError, not marked invalidated) wrapped in its own error.
    try:
        try:
            raise InterfaceError("COMMIT", {}, Exception("the connection is closed"))
        except InterfaceError as error:
            raise optuna.exceptions.StorageInternalError("An exception is raised during the commit.") from error
    except optuna.exceptions.StorageInternalError as wrapped:
        return wrapped


@pytest.mark.parametrize(
    "outage",
    [
        lambda: OperationalError("UPDATE trials", {}, Exception("server closed the connection unexpectedly")),
        _closed_connection_through_optuna,
    ],
    ids=["operational-error", "optuna-wrapped-interface-error"],
)
def test_a_trial_the_database_failed_after_its_outcome_is_queued_again(backend_url: str, outage) -> None:
    engine, storage, study, guard = _guarded_study(backend_url, "outage")
    calls = []

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        x = trial.suggest_float("x", 0, 1)
        record_trial(engine, TrialRecord("outage", trial.number, "infeasible", "lora", {"method": "lora", "x": x}, 10, 100,
                                         error="over the budget", finished_at=datetime.now(UTC)))  # fmt: skip
        calls.append(trial.number)
        if len(calls) == 1:  # the connection stayed down through every retry
            raise outage()
        return 0.0, 10.0

    study.optimize(guard.wrap(objective), n_trials=2, catch=(Exception,))
    assert [t.state for t in study.get_trials()] == [TrialState.FAIL, TrialState.COMPLETE]
    assert study.get_trials()[1].params == study.get_trials()[0].params, "the same configuration, retried"
    rows = load_results(engine, "outage").set_index("trial_number")
    assert rows.loc[0, "status"] == "failed" and rows.loc[1, "status"] == "infeasible"
    assert "the study database failed on worker" in rows.loc[0, "error"] and "queued again as trial 1" in rows.loc[0, "error"]
    engine.dispose()
    storage.engine.dispose()


def _worker_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "search.worker", *args], capture_output=True, text=True, timeout=300)


def test_worker_waits_for_the_study_without_creating_the_database(tmp_path: Path) -> None:
    url = default_storage_url(tmp_path / "later")
    started = time.monotonic()
    result = _worker_cli("--study", "later", "--storage", url, "--wait", "2")
    assert result.returncode == 2 and time.monotonic() - started >= 2
    assert "--study 'later' does not exist: no database at" in result.stderr
    assert "start it with python -m search.launch (waited 2 s)" in result.stderr
    assert not (tmp_path / "later").exists(), "waiting only reads"


@pytest.mark.parametrize(
    ("flag", "message"),
    [("--wait", "--wait must be >= 0 seconds, got -1.0"), ("--threads", "--threads must be >= 0 (0: torch's choice), got -1")],
)
def test_worker_rejects_negative_settings(tmp_path: Path, flag: str, message: str) -> None:
    result = _worker_cli("--study", "s", "--storage", default_storage_url(tmp_path), flag, "-1")
    assert result.returncode == 2 and message in result.stderr


# ---------------------------------------------------------------- real workers


def make_study(url: str, name: str, target: int, enqueue: list[dict[str, Any]], liveness: Liveness) -> None:
    """A study as `search.launch` would store it, with 1-step trials and `enqueue` run first."""
    make_worker_study(
        url, name, target=target, steps=1, space_yaml=SPACE_YAML, space_source="test space", liveness=liveness, enqueue=enqueue
    )


class Processes:
    """Child processes with their output in files; all killed at the end of the test."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.started: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = open(self.folder / f"{name}.log", "w")  # noqa: SIM115 (closed with the process)
        process = subprocess.Popen([sys.executable, *argv], stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        log.close()
        self.started.append((name, process))
        return process

    def worker(self, name: str, url: str, study: str, data_dir: Path, *extra: str) -> subprocess.Popen:
        return self.start(name, ["-m", "search.worker", "--study", study, "--storage", url, "--data-dir", str(data_dir), *extra])

    def logs(self) -> str:
        return "\n".join(
            f"--- {name} (pid {p.pid}, exit {p.poll()}) ---\n{(self.folder / f'{name}.log').read_text()[-2500:]}"
            for name, p in self.started
        )

    def wait(self, process: subprocess.Popen, timeout: float) -> int:
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"a process did not finish within {timeout} s\n{self.logs()}") from None

    def until(self, found: Callable[[], Any], timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = found()
            if value is not None:
                return value
            if all(p.poll() is not None for _, p in self.started):
                break
            time.sleep(0.3)
        raise AssertionError(f"timed out waiting for {what}\n{self.logs()}")

    def close(self) -> None:
        for _, process in self.started:
            if process.poll() is None:
                process.kill()
                process.wait()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    started = Processes(tmp_path)
    try:
        yield started
    finally:
        started.close()


def running_row(url: str, study: str, *pids: int) -> Callable[[], pd.Series | None]:
    """Finds a trial that one of these processes is training."""
    engine = make_engine(url)
    workers = {f"{HOST}:{pid}" for pid in pids}

    def find() -> pd.Series | None:
        rows = load_results(engine, study)
        mine = rows[(rows["status"] == "running") & rows["worker"].isin(workers)]
        return None if mine.empty else mine.iloc[0]

    return find


def assert_consistent(url: str, study_name: str) -> tuple[optuna.Study, pd.DataFrame]:
    """Every finished trial is in both tables exactly once, with the same outcome."""
    study = optuna.load_study(study_name=study_name, storage=url)
    engine = make_engine(url)
    rows = load_results(engine, study_name)
    engine.dispose()
    assert not rows["trial_number"].duplicated().any(), rows
    assert "running" not in set(rows["status"]), rows[["trial_number", "status", "worker"]]
    states = {t.number: t.state for t in study.trials}
    assert set(rows["trial_number"]) <= set(states)
    for _, row in rows.iterrows():
        expected = {
            TrialState.COMPLETE: {"complete", "infeasible"},
            TrialState.FAIL: {"failed"},
            TrialState.PRUNED: {"pruned"},
        }[states[row["trial_number"]]]
        assert row["status"] in expected, (row["trial_number"], row["status"], states[row["trial_number"]])
    complete = [n for n, s in states.items() if s == TrialState.COMPLETE]
    assert sorted(rows[rows["status"].isin(["complete", "infeasible"])]["trial_number"]) == sorted(complete)
    trained = rows[rows["status"] == "complete"]
    configs = [repr(sorted(c.items())) for c in trained["config"]]
    assert len(configs) == len(set(configs)), "a configuration was trained twice"
    for _, row in trained.iterrows():  # version-2 fields of a real trial
        assert row["peak_memory_mb"] >= 0 and row["timings"]["train_and_evaluate_s"] > 0
        assert row["environment"]["packages"]["optuna"] == optuna.__version__
        assert row["param_breakdown"]["petl"]["trainable"] >= 0 and "loss" in row["learning_curve"]
    return study, rows


@pytest.mark.slow
def test_sigterm_releases_the_running_trial_and_keeps_finished_ones(data_dir: Path, env, tmp_path: Path, processes: Processes) -> None:
    url = default_storage_url(tmp_path / "db")
    make_study(url, "term", target=2, liveness=Liveness(), enqueue=[point("lora", rank=128), point("lora", rank=4)])
    worker = processes.worker("worker", url, "term", data_dir)
    processes.until(running_row(url, "term", worker.pid), 180, "the worker's second trial to start training")
    worker.send_signal(signal.SIGTERM)
    assert processes.wait(worker, 60) == 128 + signal.SIGTERM, processes.logs()
    assert "stopped by SIGTERM; trial 1 failed and queued again as trial 2" in processes.logs()

    study, rows = assert_consistent(url, "term")
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.WAITING]
    assert study.trials[2].params == study.trials[1].params
    assert rows["status"].tolist() == ["infeasible", "failed"]  # the finished trial is kept as it was
    assert rows.iloc[1]["error"] == (
        f"worker {HOST}:{worker.pid} was stopped by SIGTERM before the trial finished; queued again as trial 2"
    )


@pytest.mark.slow
def test_ctrl_c_releases_the_running_trial_and_relaunching_resumes_the_study(
    data_dir: Path, env, tmp_path: Path, processes: Processes
) -> None:
    url = default_storage_url(tmp_path / "db")
    argv = [
        "-m",
        "search.launch",
        "--workers",
        "1",
        "--confirm-seeds",
        "1",
        "--budget",
        "5%",
        "--tasks",
        "vqa",
        "--trials",
        "2",
        "--steps",
        "40",
        "--rungs",
        "0",
        "--no-warm-start",
        "--study",
        "ctrl-c",
        "--storage",
        url,
        "--data-dir",
        str(data_dir),
    ]
    launch = processes.start("launch", argv)
    engine = make_engine(url)

    def second_trial_training():  # the full fine-tuning reference (trial 0) has completed by then
        if not sqlalchemy.inspect(engine).has_table("trial_results"):
            return None  # the launcher is still preparing
        rows = load_results(engine, "ctrl-c")
        running = rows[(rows["status"] == "running") & (rows["trial_number"] >= 1)]
        return None if running.empty else running.iloc[0]

    interrupted = int(processes.until(second_trial_training, 300, "the launcher's second trial to start training")["trial_number"])
    launch.send_signal(signal.SIGINT)
    assert processes.wait(launch, 60) == 128 + signal.SIGINT, processes.logs()
    stopped = re.search(r"stopped by SIGINT; trial (\d+) failed and queued again as trial (\d+)", processes.logs())
    assert stopped and int(stopped.group(1)) == interrupted, processes.logs()
    assert "run the same command again to resume study 'ctrl-c'" in processes.logs()
    retry = int(stopped.group(2))

    relaunch = processes.start("relaunch", argv)  # the same command
    assert processes.wait(relaunch, 300) == 0, processes.logs()
    study, rows = assert_consistent(url, "ctrl-c")
    assert study.trials[0].state == TrialState.COMPLETE, "the reference, completed before Ctrl-C, is kept"
    assert study.trials[interrupted].state == TrialState.FAIL and study.trials[retry].state == TrialState.COMPLETE
    assert study.trials[retry].params == study.trials[interrupted].params, "the interrupted trial is the one resumed"
    assert rows.set_index("trial_number").loc[interrupted, "status"] == "failed"


# Run before search.launch (_stopped_launch): sends a stop signal at the moment a trial's transformers weight loader
# starts a pool thread: the main thread is then inside Thread.start, the one place a stop leaves
# an unregistered thread behind (search.liveness._free_interrupted_frames says why).
STOP_WHILE_LOADING = """
import os, runpy, signal, sys, threading, time

start_thread = threading.Thread._bootstrap_inner
sent = []


def in_a_trial():
    frame = sys._current_frames().get(threading.main_thread().ident)
    while frame is not None:
        if frame.f_code.co_name == "run" and frame.f_code.co_filename.endswith(os.path.join("search", "liveness.py")):
            return True
        frame = frame.f_back
    return False


def bootstrap(thread):
    if not sent and thread.name.startswith("ThreadPoolExecutor") and in_a_trial():
        sent.append(thread.name)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)  # the main thread takes the signal while it waits for this thread to start
    start_thread(thread)


threading.Thread._bootstrap_inner = bootstrap
"""


def _stopped_launch(injection: str, steps: int, data_dir: Path, tmp_path: Path, processes: Processes) -> str:
    """Run a one-trial `search.launch` after `injection` (code that sends the stop), wait for it to
    exit 130 (SIGINT), and return all it printed."""
    script = tmp_path / "launch_with_a_stop.py"
    script.write_text(
        injection + 'sys.argv = ["search.launch", *sys.argv[1:]]\nrunpy.run_module("search.launch", run_name="__main__", alter_sys=True)\n'
    )
    url = default_storage_url(tmp_path / "db")
    argv = [
        str(script), "--workers", "1", "--confirm-seeds", "1", "--budget", "5%", "--tasks", "vqa", "--trials", "1",
        "--steps", str(steps), "--rungs", "0", "--no-warm-start", "--no-reference", "--study", "stopped", "--storage", url,
        "--data-dir", str(data_dir),
    ]  # fmt: skip
    launch = processes.start("launch", argv)
    assert processes.wait(launch, 120) == 128 + signal.SIGINT, processes.logs()
    return (processes.folder / "launch.log").read_text()


@pytest.mark.slow
def test_a_stop_while_the_weights_load_still_ends_the_launcher(data_dir: Path, env, tmp_path: Path, processes: Processes) -> None:
    # CI, 2026-12-07: the launcher printed its stop, then waited forever for the loader's thread.
    printed = _stopped_launch(STOP_WHILE_LOADING, 40, data_dir, tmp_path, processes)
    assert "spawn_materialize" in printed, "the stop must land in the weight loader"
    assert "stopped by SIGINT; trial 0 failed and queued again as trial 1" in printed


# Run before search.launch (_stopped_launch): has a stop signal handled inside a weakref callback, as a trial builds its
# model: Python prints and drops an exception raised there, so the first stop is lost.
STOP_IN_A_CALLBACK = """
import os, runpy, signal, sys, time, weakref

import training.trial

build = training.trial.build_vl_model
sent = []


def lost_stop(_):
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.2)  # the handler runs here, inside the callback


def build_after_a_lost_stop(*args, **kwargs):
    if not sent and not kwargs.get("meta"):  # the trial's own model, not a parameter count
        sent.append(True)

        class Gone:
            pass

        gone = Gone()
        ref = weakref.ref(gone, lost_stop)
        del gone
    return build(*args, **kwargs)


training.trial.build_vl_model = build_after_a_lost_stop
"""


@pytest.mark.slow
def test_a_stop_lost_in_a_callback_is_raised_again(data_dir: Path, env, tmp_path: Path, processes: Processes) -> None:
    # CI, 2026-12-07: "Exception ignored in: WeakKeyDictionary...remove", then the trial trained to its end.
    printed = _stopped_launch(STOP_IN_A_CALLBACK, 400, data_dir, tmp_path, processes)
    assert "Exception ignored" in printed, "the first stop must be the lost one"
    assert "trial 0 still runs 5 s after the stop: stopping it again" in printed
    assert "stopped by SIGINT; trial 0 failed and queued again as trial 1" in printed


@pytest.mark.slow
def test_sigterm_to_the_launcher_stops_its_local_workers_and_releases_their_trials(
    data_dir: Path, env, tmp_path: Path, processes: Processes
) -> None:
    # A scheduler or `kill` signals the launcher alone; its local workers used to train on.
    url = default_storage_url(tmp_path / "db")
    argv = [
        "-m", "search.launch", "--confirm-seeds", "1", "--budget", "5%", "--tasks", "vqa", "--trials", "6", "--steps", "300",
        "--rungs", "0", "--no-warm-start", "--no-reference", "--workers", "2", "--study", "stop-all", "--storage", url,
        "--data-dir", str(data_dir),
    ]  # fmt: skip
    launch = processes.start("launch", argv)
    engine = make_engine(url)

    def local_worker_training():
        if not sqlalchemy.inspect(engine).has_table("trial_results"):
            return None
        rows = load_results(engine, "stop-all")
        running = rows[(rows["status"] == "running") & rows["worker"].notna() & (rows["worker"] != f"{HOST}:{launch.pid}")]
        return None if running.empty else running.iloc[0]

    row = processes.until(local_worker_training, 300, "a local worker to train")
    launch.send_signal(signal.SIGTERM)
    assert processes.wait(launch, 120) == 128 + signal.SIGTERM, processes.logs()
    worker_pid = int(str(row["worker"]).rsplit(":", 1)[1])
    with pytest.raises(ProcessLookupError):
        os.kill(worker_pid, 0)  # gone with the launcher, not training on
    rows = load_results(engine, "stop-all").set_index("trial_number")
    engine.dispose()
    released = rows.loc[int(row["trial_number"])]
    assert released["status"] == "failed" and "stopped by SIGTERM" in released["error"], released["error"]
    assert "queued again as trial" in released["error"]
    assert "running" not in set(rows["status"]), rows[["status", "worker"]]


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.skipif(not os.environ.get(POSTGRES_ENV), reason=f"set {POSTGRES_ENV} to run the 3-worker kill test on PostgreSQL")
def test_three_workers_one_killed_the_study_completes_with_its_trial_retried(
    postgres_url: str, data_dir: Path, env, processes: Processes
) -> None:
    enqueue = [point("lora", rank=4), point("vl_only", learning_rate_scale=1.0), point("vl_ln", learning_rate_scale=1.0)]
    # A goal of 6 one-step trials keeps the survivors training well past the 5 s grace period,
    # so one of them starts a trial after the dead one is noticed and runs its retry; with a
    # goal of 3 they could reach it first and leave the retry queued (seen once in CI).
    make_study(postgres_url, "kill", target=6, enqueue=enqueue, liveness=Liveness(heartbeat_interval=1, grace_period=5))
    workers = [processes.worker(f"worker{i}", postgres_url, "kill", data_dir, "--seed", str(i)) for i in range(3)]
    # The first worker to start training is killed in the middle of its trial.
    killed = processes.until(running_row(postgres_url, "kill", *(w.pid for w in workers)), 180, "a worker to train")
    victim = next(w for w in workers if killed["worker"] == f"{HOST}:{w.pid}")
    victim.send_signal(signal.SIGKILL)
    assert processes.wait(victim, 30) == -signal.SIGKILL
    for survivor in workers:
        if survivor is not victim:
            assert processes.wait(survivor, 300) == 0, processes.logs()

    study, rows = assert_consistent(postgres_url, "kill")
    number = int(killed["trial_number"])
    dead = study.trials[number]
    assert dead.state == TrialState.FAIL
    retries = [t for t in study.trials if t.system_attrs.get("failed_trial") == number]
    assert len(retries) == 1, "retried exactly once"
    retry = retries[0]
    assert retry.state == TrialState.COMPLETE and retry.params == dead.params
    by_number = rows.set_index("trial_number")
    assert by_number.loc[number, "status"] == "failed"
    assert "stopped sending heartbeats for over 5 s" in by_number.loc[number, "error"]
    assert f"queued again as trial {retry.number}" in by_number.loc[number, "error"]
    assert by_number.loc[retry.number, "status"] == "complete"
    assert by_number.loc[retry.number, "config"] == by_number.loc[number, "config"]
    assert by_number.loc[retry.number, "worker"] != f"{HOST}:{victim.pid}"
    assert sum(rows["status"] == "complete") >= 3


# ---------------------------------------------------------------- docker compose


COMPOSE = REPO / "docker-compose.yml"


def _compose_client() -> list[str] | None:
    for command in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(command[0]) is None:
            continue
        try:
            probe = subprocess.run([*command, "version"], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0:
            return command
    return None


def _interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's ${NAME:-default} and ${NAME}, enough for our file."""

    def one(match: re.Match) -> str:
        name, default = match.group(1), match.group(3) or ""
        return variables.get(name) or default

    return re.sub(r"\$\{([A-Z_][A-Z0-9_]*)(:-([^}]*))?\}", one, value)


def compose_command(service: str, variables: dict[str, str], storage: str, data_dir: Path) -> list[str]:
    """A service's command from docker-compose.yml, for this machine's database and data folder."""
    command = [_interpolate(str(part), variables) for part in yaml.safe_load(COMPOSE.read_text())["services"][service]["command"]]
    assert command[:2] == ["python", "-m"], command
    command = command[1:]
    for flag, value in (("--storage", storage), ("--data-dir", str(data_dir))):
        if flag in command:
            command[command.index(flag) + 1] = value
    return command


def test_compose_file_defines_the_topology() -> None:
    config = yaml.safe_load(COMPOSE.read_text())
    services = config["services"]
    assert set(services) == {"postgres", "launch", "worker", "dashboard"}
    postgres = services["postgres"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert any(v.startswith("pgdata:") for v in postgres["volumes"]) and "pgdata" in config["volumes"]
    for name in ("launch", "worker", "dashboard"):
        service = services[name]
        assert service["build"]["context"] == "." and service["image"] == "vlpetl-search:latest", name
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy", name
        assert "PGPASSWORD" in service["environment"], name
        assert not any("vlpetl:" in part and "@" in part for part in service["command"]), "no password in a URL"
    worker = services["worker"]
    assert "container_name" not in worker and "ports" not in worker, "--scale worker=N needs neither"
    assert "--wait" in worker["command"]
    launch = services["launch"]["command"]
    assert launch[launch.index("--workers") + 1] == "${LAUNCH_WORKERS:-1}"
    gpu = yaml.safe_load((REPO / "docker-compose.gpu.yml").read_text())["services"]
    assert set(gpu) == {"launch"}, "the GPU file only adds the launcher's reservation"
    (device,) = gpu["launch"]["deploy"]["resources"]["reservations"]["devices"]
    assert device == {"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}, "every GPU, one local worker each"
    dockerfile = (REPO / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", dockerfile, re.M)
    assert "-c constraints.txt" in dockerfile


def test_docker_compose_accepts_the_file() -> None:
    client = _compose_client()
    if client is None:
        pytest.skip("no docker compose client (docker compose or docker-compose) on this machine")
    result = subprocess.run(
        [*client, "-f", str(COMPOSE), "config"], capture_output=True, text=True, timeout=60,
        env={**os.environ, "STUDY": "s1", "POSTGRES_PASSWORD": "secret"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)
    assert set(resolved["services"]) == {"postgres", "launch", "worker", "dashboard"}
    assert resolved["services"]["worker"]["command"][4] == "s1"
    assert resolved["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"] == "secret"


@pytest.mark.slow
def test_compose_services_run_as_local_processes_on_one_storage(
    data_dir: Path, env, tmp_path: Path, processes: Processes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docker-compose.yml's commands without docker: the database, launch, 2 workers, the dashboard.

    PostgreSQL as in compose when ``VLPETL_TEST_POSTGRES_URL`` is set, else a SQLite file.
    """
    with postgres_schema() if os.environ.get(POSTGRES_ENV) else nullcontext(default_storage_url(tmp_path / "db")) as url:
        # Enough work that the workers, which prepare after the study exists, join before the launch
        # alone could finish it (trials on one CPU thread take a few seconds here).
        variables = {"STUDY": "compose", "TRIALS": "6", "STEPS": "20", "BUDGET": "5%", "TASKS": "vqa"}
        # Workers first: they wait for the study that launch creates once its data is ready.
        workers = [processes.start(f"worker{i}", compose_command("worker", variables, url, data_dir)) for i in range(2)]
        launch = processes.start("launch", compose_command("launch", variables, url, data_dir))
        assert processes.wait(launch, 400) == 0, processes.logs()
        for worker in workers:
            assert processes.wait(worker, 300) == 0, processes.logs()
        assert "waiting up to 3600 s" in processes.logs(), "the workers started before the study existed"
        study, rows = assert_consistent(url, "compose")
        workers_seen = set(rows["worker"].dropna())
        assert len(workers_seen) >= 2, f"trials from several processes: {workers_seen}"
        assert sum(rows["status"] == "complete") >= 2

        # The dashboard service: its command line, and the app on the same storage.
        from dashboard import __main__ as dashboard_main
        from dashboard.settings import STORAGE_ENV

        served: dict[str, Any] = {}
        monkeypatch.setattr(dashboard_main, "_run", lambda command, env: served.update(command=command, env=env) or 0)
        assert dashboard_main.main(compose_command("dashboard", variables, url, data_dir)[2:]) == 0
        assert served["command"][served["command"].index("--server.address") + 1] == "0.0.0.0"
        assert served["env"][STORAGE_ENV] == url
        from streamlit.testing.v1 import AppTest

        monkeypatch.setenv(STORAGE_ENV, url)
        app = AppTest.from_file(str(dashboard_main.APP_PATH), default_timeout=120)
        app.run()
        assert not app.exception, [e.value for e in app.exception]
        assert app.selectbox(key="study").value == "compose"
        shown = {m.label: m.value for m in app.metric}
        assert shown["Trials"] == str(len(rows)), shown
        assert shown["Complete"] == str(sum(rows["status"] == "complete")) and shown["Running"] == "0", shown
