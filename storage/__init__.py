"""Trial results storage: schema, engines, migrations, claims and the results API.

Our tables live in the same database as Optuna's RDB storage, named by one
SQLAlchemy URL (SQLite or PostgreSQL). Typical use by a search worker::

    engine = make_engine(url)
    init_schema(engine)          # creates, or upgrades an older layout in place
    record_trial(engine, TrialRecord(...))

and by the dashboard::

    frame = load_results(make_readonly_engine(url), study_name)
    front = core.pareto.pareto_front(frame)  # the analysis is torch- and database-free
"""

from storage.claims import Holder, claim_trial
from storage.engine import (
    SchemaVersionError,
    init_schema,
    make_engine,
    make_readonly_engine,
    session_scope,
)
from storage.migrations import upgrade
from storage.results import (
    RESULT_COLUMNS,
    TrialRecord,
    list_studies,
    load_results,
    mark_trial_failed,
    record_trial,
)
from storage.schema import SCHEMA_VERSION, TrialStatus
from storage.urls import StorageURLError, default_storage_url, redact, validate_storage_url

__all__ = [
    "RESULT_COLUMNS",
    "SCHEMA_VERSION",
    "Holder",
    "SchemaVersionError",
    "StorageURLError",
    "TrialRecord",
    "TrialStatus",
    "claim_trial",
    "default_storage_url",
    "init_schema",
    "list_studies",
    "load_results",
    "make_engine",
    "make_readonly_engine",
    "mark_trial_failed",
    "record_trial",
    "redact",
    "session_scope",
    "upgrade",
    "validate_storage_url",
]
