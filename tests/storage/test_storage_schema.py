"""Schema creation: idempotent, versioned, and beside Optuna's tables."""

from __future__ import annotations

import optuna
import pytest
from sqlalchemy import Engine, inspect, select, update

from storage import SCHEMA_VERSION, SchemaVersionError, init_schema, make_engine
from storage.engine import session_scope
from storage.schema import SchemaMeta

OUR_TABLES = {"trial_results", "schema_meta"}


def _version(engine: Engine) -> list[int]:
    with session_scope(engine) as session:
        return list(session.scalars(select(SchemaMeta.version)))


def test_init_schema_is_idempotent(engine: Engine) -> None:
    init_schema(engine)
    init_schema(engine)
    assert OUR_TABLES <= set(inspect(engine).get_table_names())
    assert _version(engine) == [SCHEMA_VERSION]


def test_schema_version_mismatch_is_refused(engine: Engine) -> None:
    with session_scope(engine) as session:
        session.execute(update(SchemaMeta).values(version=SCHEMA_VERSION + 1))
    with pytest.raises(SchemaVersionError, match=f"schema version {SCHEMA_VERSION + 1}"):
        init_schema(engine)


@pytest.mark.parametrize("optuna_first", [True, False], ids=["optuna-first", "ours-first"])
def test_coexists_with_optuna_study(storage_url: str, optuna_first: bool) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    ours = make_engine(storage_url)
    rdb: optuna.storages.RDBStorage | None = None
    try:
        if not optuna_first:
            init_schema(ours)
        rdb = optuna.storages.RDBStorage(storage_url)
        study = optuna.create_study(storage=rdb, study_name="s", directions=["maximize", "minimize"])
        study.optimize(lambda t: (t.suggest_float("x", 0, 1), 1.0), n_trials=2)
        init_schema(ours)
        init_schema(ours)

        tables = set(inspect(ours).get_table_names())
        assert OUR_TABLES <= tables
        assert {"studies", "trials"} <= tables  # Optuna's own, untouched
        reloaded = optuna.load_study(study_name="s", storage=rdb)
        assert len(reloaded.trials) == 2
    finally:
        if rdb is not None:
            rdb.engine.dispose()
        ours.dispose()


def test_the_table_and_the_record_follow_the_result_contract() -> None:
    from dataclasses import fields

    from core.results import RESULT_SCHEMA
    from storage import TrialRecord
    from storage.schema import TrialResult

    table = TrialResult.__table__
    assert [c.name for c in table.columns] == ["id", *(c.name for c in RESULT_SCHEMA)]
    assert {c.name: c.nullable for c in RESULT_SCHEMA} == {c.name: table.c[c.name].nullable for c in RESULT_SCHEMA}
    assert {f.name for f in fields(TrialRecord)} | {"created_at"} == {c.name for c in RESULT_SCHEMA}
