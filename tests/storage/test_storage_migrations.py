"""Upgrading a version-1 database in place, on every backend.

The version-1 layout is spelled out below as it shipped (storage/schema.py before
per-trial memory, timings, curves and environment), so these tests keep meaning
what they say whatever later versions change.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

import optuna
import pandas as pd
import pytest
from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    inspect,
    insert,
    select,
)
from sqlalchemy.engine import Connection

from storage import (
    RESULT_COLUMNS,
    SCHEMA_VERSION,
    SchemaVersionError,
    TrialRecord,
    init_schema,
    load_results,
    make_engine,
    make_readonly_engine,
    record_trial,
    upgrade,
)
from storage.migrations import MIGRATIONS, Migration
from storage.schema import SchemaMeta, UTCDateTime

NEW_IN_V2 = ("peak_memory_mb", "param_breakdown", "timings", "learning_curve", "environment", "worker", "weights_path")
NEW_IN_V3 = ("replicate_of",)
NEW_IN_V4 = ("steps_run",)
V1_ROW = {
    "study_name": "old-study",
    "trial_number": 4,
    "status": "complete",
    "method": "lora",
    "config": {"method": "lora", "method_params": {"rank": 8}, "tasks": ["vqa"]},
    "score": 61.25,
    "task_scores": {"vqa": 61.25},
    "trainable_params": 5_930,
    "total_params": 100_000,
    "trainable_pct": 5.93,
    "train_seconds": 12.5,
    "error": None,
    "created_at": datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC),
    "finished_at": datetime(2024, 5, 6, 7, 9, 0, tzinfo=UTC),
}


def _v1_metadata() -> MetaData:
    metadata = MetaData()
    statuses = "'running', 'complete', 'infeasible', 'failed', 'pruned'"
    Table(
        "trial_results",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("study_name", String(512), nullable=False),
        Column("trial_number", Integer, nullable=False),
        Column("status", String(16), nullable=False),
        Column("method", String(64), nullable=False),
        Column("config", JSON(none_as_null=True), nullable=False),
        Column("score", Float),
        Column("task_scores", JSON(none_as_null=True)),
        Column("trainable_params", BigInteger, nullable=False),
        Column("total_params", BigInteger, nullable=False),
        Column("trainable_pct", Float, nullable=False),
        Column("train_seconds", Float),
        Column("error", Text),
        Column("created_at", UTCDateTime(), nullable=False),
        Column("finished_at", UTCDateTime()),
        UniqueConstraint("study_name", "trial_number", name="uq_trial_results_study_trial"),
        CheckConstraint(f"status IN ({statuses})", name="ck_trial_results_status"),
    )
    Table(
        "schema_meta",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("version", Integer, nullable=False),
        CheckConstraint("id = 1", name="ck_schema_meta_single_row"),
    )
    return metadata


def _make_v1_database(url: str) -> None:
    """A database as version 1 left it: an Optuna study, our two tables, one row."""
    engine = make_engine(url)  # first: it creates a SQLite file's folder
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(url)
    study = optuna.create_study(storage=storage, study_name="old-study", directions=["maximize", "minimize"])
    study.optimize(lambda t: (t.suggest_float("x", 0, 1), 1.0), n_trials=1)
    storage.engine.dispose()
    try:
        metadata = _v1_metadata()
        metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(insert(metadata.tables["schema_meta"]).values(id=1, version=1))
            conn.execute(insert(metadata.tables["trial_results"]).values(**V1_ROW))
    finally:
        engine.dispose()


def _version(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(SchemaMeta.version)).scalar_one()


def _columns(engine: Engine) -> set[str]:
    return {c["name"] for c in inspect(engine).get_columns("trial_results")}


def test_version_1_database_is_upgraded_and_keeps_its_rows(storage_url: str) -> None:
    _make_v1_database(storage_url)
    engine = make_engine(storage_url)
    try:
        assert _version(engine) == 1 and not set(NEW_IN_V2) & _columns(engine)

        init_schema(engine)

        assert SCHEMA_VERSION == 4 and _version(engine) == 4
        assert set(NEW_IN_V2 + NEW_IN_V3 + NEW_IN_V4) <= _columns(engine)
        row = load_results(engine, "old-study").iloc[0]
        for name, value in V1_ROW.items():
            expected = pd.Timestamp(value) if isinstance(value, datetime) else value
            assert row[name] == expected or (value is None and row[name] is None), name
        assert pd.isna(row["peak_memory_mb"])
        assert all(row[name] is None for name in NEW_IN_V2 + NEW_IN_V3 + NEW_IN_V4 if name != "peak_memory_mb")

        # The upgraded table takes version-4 rows beside the old one.
        record_trial(
            engine,
            TrialRecord(
                "old-study", 5, "complete", "lora", {"method": "lora"}, 10, 100, score=50.0,
                peak_memory_mb=12.5, timings={"train_and_evaluate_s": 3.0}, worker="host:1",
                learning_curve={"loss": {"20": 2.5}}, environment={"packages": {"torch": "2"}},
                param_breakdown={"petl": {"trainable": 10, "total": 10}}, weights_path="/w",
                finished_at=datetime.now(UTC), replicate_of=4, steps_run=225,
            ),
        )  # fmt: skip
        frame = load_results(engine, "old-study")
        assert frame["trial_number"].tolist() == [4, 5]
        assert frame.iloc[1]["peak_memory_mb"] == 12.5 and frame.iloc[1]["worker"] == "host:1"
        assert frame["replicate_of"].tolist() == [None, 4] and frame["steps_run"].tolist() == [None, 225]

        # Optuna's tables are untouched by our migration.
        assert len(optuna.load_study(study_name="old-study", storage=storage_url).trials) == 1
        init_schema(engine)  # already current: nothing to do
        assert upgrade(engine) == [] and _version(engine) == 4
    finally:
        engine.dispose()


def test_readonly_dashboard_reads_a_version_1_database_before_it_is_upgraded(storage_url: str) -> None:
    _make_v1_database(storage_url)
    readonly = make_readonly_engine(storage_url)
    try:
        frame = load_results(readonly, "old-study")
        assert list(frame.columns) == list(RESULT_COLUMNS)
        assert frame["score"].tolist() == [61.25]
        assert frame["worker"].tolist() == [None] and frame["peak_memory_mb"].isna().all()
        assert frame["replicate_of"].tolist() == [None]
    finally:
        readonly.dispose()


def test_a_failing_step_changes_nothing(storage_url: str) -> None:
    _make_v1_database(storage_url)

    def half_done(conn: Connection) -> None:
        MIGRATIONS[0].apply(conn)  # the real step's ALTER TABLEs, then a failure
        raise RuntimeError("disk full")

    engine = make_engine(storage_url)
    try:
        with pytest.raises(RuntimeError, match="disk full"):
            upgrade(engine, [Migration(1, "breaks halfway", half_done), *MIGRATIONS[1:]])
        assert _version(engine) == 1
        assert not set(NEW_IN_V2) & _columns(engine), "the ALTER TABLEs were rolled back with the step"
        assert load_results(engine)["trial_number"].tolist() == [4]
    finally:
        engine.dispose()


def test_a_missing_step_is_named(storage_url: str) -> None:
    _make_v1_database(storage_url)
    engine = make_engine(storage_url)
    try:
        with pytest.raises(SchemaVersionError, match="No migration from schema version 1"):
            upgrade(engine, [])
        assert _version(engine) == 1
    finally:
        engine.dispose()


def test_workers_upgrading_at_once_upgrade_once(storage_url: str) -> None:
    _make_v1_database(storage_url)
    errors: list[BaseException] = []
    barrier = threading.Barrier(3)

    def worker() -> None:
        engine = make_engine(storage_url)
        try:
            barrier.wait()
            init_schema(engine)
        except BaseException as error:  # reported below, with the others
            errors.append(error)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    engine = make_engine(storage_url)
    try:
        assert _version(engine) == 4 and set(NEW_IN_V2 + NEW_IN_V3 + NEW_IN_V4) <= _columns(engine)
        assert load_results(engine)["trial_number"].tolist() == [4]
    finally:
        engine.dispose()


def test_newer_database_is_refused_with_the_fix(engine: Engine, make_record: Callable[..., TrialRecord]) -> None:
    with engine.begin() as conn:
        conn.execute(SchemaMeta.__table__.update().values(version=SCHEMA_VERSION + 1))
    with pytest.raises(SchemaVersionError, match="cannot downgrade; use a release that knows version"):
        upgrade(engine)
    with pytest.raises(SchemaVersionError, match=f"schema version {SCHEMA_VERSION + 1}"):
        init_schema(engine)
