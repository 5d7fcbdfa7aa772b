"""A database connection dropped mid-study is retried with backoff (PostgreSQL).

The drop is real: ``pg_terminate_backend`` from a second connection ends the server side of the
study's connections, as a database restart or failover does.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from reliability_helpers import drop_connections, postgres_schema
from sqlalchemy import create_engine, text

from search.liveness import study_storage
from search.study_runner import run_until_target
from storage import TrialRecord, init_schema, load_results, make_engine, record_trial

pytestmark = pytest.mark.postgres


def _record(status: str, **fields) -> TrialRecord:
    return TrialRecord(
        study_name="drop", trial_number=0, status=status, method="lora", config={"method": "lora"},
        trainable_params=10, total_params=1000, **fields,
    )  # fmt: skip


def test_a_result_write_cut_mid_transaction_is_retried(caplog: pytest.LogCaptureFixture) -> None:
    app = f"rel-write-{uuid.uuid4().hex[:8]}"
    with postgres_schema(app) as url:
        engine = make_engine(url)
        init_schema(engine)
        record_trial(engine, _record("running"))
        # Another session holds the row, so the write waits inside its transaction, where the
        # test can cut it; the blocker's own name keeps it out of the cut.
        blocker = create_engine(url.replace(app, f"{app}-blocker")).connect()
        blocker.begin()
        blocker.execute(text("SELECT 1 FROM trial_results WHERE trial_number = 0 FOR UPDATE"))
        failure: list[BaseException] = []

        def write() -> None:
            try:
                record_trial(engine, _record("complete", score=71.5))
            except BaseException as error:  # noqa: BLE001 (handed to the test thread)
                failure.append(error)

        writer = threading.Thread(target=write)
        with caplog.at_level(logging.WARNING, logger="storage.engine"):
            writer.start()
            deadline = time.monotonic() + 30
            while not drop_connections(app, waiting_on_lock=True):
                assert time.monotonic() < deadline, "the write never waited on the row lock"
                time.sleep(0.1)
            blocker.rollback()
            blocker.close()
            writer.join(timeout=60)
        assert not writer.is_alive() and failure == []
        row = load_results(engine, "drop").iloc[0]
        assert (row["status"], row["score"]) == ("complete", 71.5)
        assert "record trial 0 of study 'drop': the database connection failed" in caplog.text
        assert "trying again in 0.5 s" in caplog.text
        engine.dispose()


def _cut_while_waiting_on(app: str, url: str, lock_sql: str, work) -> list[BaseException]:
    """Run ``work`` in a thread while another session holds ``lock_sql``'s rows; cut its connection."""
    blocker = create_engine(url.replace(app, f"{app}-blocker")).connect()
    blocker.begin()
    blocker.execute(text(lock_sql))
    failure: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as error:  # noqa: BLE001 (handed to the test thread)
            failure.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 30
    while not drop_connections(app, waiting_on_lock=True):
        assert time.monotonic() < deadline and thread.is_alive(), f"the call never waited on the lock: {failure}"
        time.sleep(0.1)
    blocker.rollback()
    blocker.close()
    thread.join(timeout=60)
    assert not thread.is_alive()
    return failure


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_an_optuna_call_cut_mid_transaction_is_retried() -> None:
    app = f"rel-tell-{uuid.uuid4().hex[:8]}"
    with postgres_schema(app) as url:
        engine = make_engine(url)
        init_schema(engine)
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        study = optuna.create_study(study_name="tell", storage=study_storage(url, engine, "tell"), directions=["maximize"])
        trial = study.ask()
        # Telling a result locks the trial's row (SELECT ... FOR UPDATE): cut it while it waits.
        failure = _cut_while_waiting_on(app, url, "SELECT 1 FROM trials WHERE number = 0 FOR UPDATE", lambda: study.tell(trial, 0.5))
        assert failure == []
        (told,) = optuna.load_study(study_name="tell", storage=url.replace(app, f"{app}-check")).trials
        assert (told.state, told.value) == (TrialState.COMPLETE, 0.5)
        engine.dispose()


def test_a_study_goes_on_after_every_connection_is_cut(tmp_path: Path) -> None:
    app = f"rel-study-{uuid.uuid4().hex[:8]}"
    with postgres_schema(app) as url:
        engine = make_engine(url)
        init_schema(engine)
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        study = optuna.create_study(study_name="cut", storage=study_storage(url, engine, "cut"), directions=["maximize", "minimize"])
        cut: list[int] = []

        def objective(trial: optuna.Trial) -> tuple[float, float]:
            x = trial.suggest_float("x", 0.0, 1.0)
            if trial.number in (1, 3):  # the server drops every pooled connection mid-study
                cut.append(drop_connections(app))
            return x, 1.0 - x

        assert run_until_target(study, objective, target=5, time_limit=None) == 5
        assert all(n > 0 for n in cut) and len(cut) == 2, cut
        states = [t.state for t in optuna.load_study(study_name="cut", storage=url).trials]
        assert states == [TrialState.COMPLETE] * 5
        engine.dispose()


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_a_suggestion_cut_mid_transaction_is_retried() -> None:
    # trial.suggest_* writes through Optuna's cache (_CachedStorage._set_trial_param), not the
    # public set_trial_param: a cut there once failed a soak trial before it had recorded a row.
    app = f"rel-suggest-{uuid.uuid4().hex[:8]}"
    with postgres_schema(app) as url:
        engine = make_engine(url)
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        study = optuna.create_study(study_name="suggest", storage=study_storage(url, engine, "suggest"), directions=["maximize"])
        trial = study.ask()
        distribution = optuna.distributions.distribution_to_json(optuna.distributions.FloatDistribution(0.0, 1.0))
        # The blocker inserts the same parameter uncommitted: the suggestion's insert waits on
        # the unique index, where the test cuts it; the blocker then rolls back.
        lock_sql = (
            "INSERT INTO trial_params (trial_id, param_name, param_value, distribution_json) "
            f"VALUES ({trial._trial_id}, 'x', 0.25, '{distribution}')"
        )
        values: list[float] = []
        failure = _cut_while_waiting_on(app, url, lock_sql, lambda: values.append(trial.suggest_float("x", 0.0, 1.0)))
        assert failure == []
        (stored,) = optuna.load_study(study_name="suggest", storage=url.replace(app, f"{app}-check")).trials
        assert stored.params == {"x": values[0]}
        engine.dispose()


def test_every_storage_call_optuna_repeats_safely_is_retried() -> None:
    # Optuna's _CachedStorage decides which backend methods a Study calls; a new one in a later
    # Optuna would bypass the retries unless it is classified here.
    import inspect
    import re

    from optuna.storages import _cached_storage

    from search.liveness import ReconnectingRDBStorage

    called = set(re.findall(r"self\._backend\.(\w+)\(", inspect.getsource(_cached_storage)))
    not_repeatable = {"create_new_study", "_create_new_trial", "delete_study"}  # a repeat would add or remove twice
    not_database = {"get_heartbeat_interval", "get_heartbeat_stale_trial_callback"}
    retried = {name for name in called if getattr(ReconnectingRDBStorage, name) is not getattr(optuna.storages.RDBStorage, name)}
    assert called - not_repeatable - not_database == retried
