"""Read-only access to the study database beyond ``storage.load_results``.

Two things live here: a cheap fingerprint of a study's rows (so the pages reload the
results only when a worker wrote something) and Optuna's own view of the study, opened
through a connection the database refuses to write with, for parameter importances and
the user attributes Optuna keeps per trial.
"""

from __future__ import annotations

import logging
import sqlite3
import warnings
from collections.abc import Collection
from urllib.parse import quote

import optuna
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy import Engine, case, func, inspect, select
from sqlalchemy.engine import make_url

from dashboard.importance import MIN_TRIALS_FOR_IMPORTANCE
from dashboard.study import StudyAttrs, study_attrs
from storage.engine import SQLITE_TIMEOUT_S
from storage.schema import TrialResult, TrialStatus
from storage.urls import is_sqlite, sqlite_path, validate_storage_url

__all__ = [
    "OPTUNA_TABLES",
    "ImportanceUnavailable",
    "OptunaStudy",
    "fingerprint",
    "open_optuna_study",
    "read_study_attrs",
    "readonly_optuna_storage",
    "score_importances",
]

# Optuna writes these when a storage is first opened read-write; a database without
# them was never an Optuna storage, and opening one read-only would fail on that write.
OPTUNA_TABLES = ("studies", "trials", "version_info", "alembic_version")


def fingerprint(engine: Engine, study_name: str | None = None) -> tuple[object, ...]:
    """A value that changes whenever a worker records or updates a trial.

    Args:
        engine: Any engine, read-only included.
        study_name: Only this study's rows; all studies when None.

    Returns:
        (row count, running count, latest created_at, latest finished_at); all
        zero/None when there is no ``trial_results`` table.
    """
    if not inspect(engine).has_table(TrialResult.__tablename__):
        return (0, 0, None, None)
    query = select(
        func.count(TrialResult.id),
        func.sum(case((TrialResult.status == TrialStatus.RUNNING.value, 1), else_=0)),
        func.max(TrialResult.created_at),
        func.max(TrialResult.finished_at),
    )
    if study_name is not None:
        query = query.where(TrialResult.study_name == study_name)
    with engine.connect() as connection:
        count, running, created, finished = connection.execute(query).one()
    return (int(count), int(running or 0), created, finished)


def readonly_optuna_storage(url: str) -> RDBStorage | None:
    """Open Optuna's tables at ``url`` so that any write fails in the database.

    Args:
        url: The study database (SQLite file or PostgreSQL).

    Returns:
        The storage, or None when the database holds no Optuna tables.

    Raises:
        StorageURLError: If ``url`` is not a supported storage URL.
        FileNotFoundError: If the SQLite file does not exist.
        sqlalchemy.exc.SQLAlchemyError: If the database cannot be read.
    """
    from storage.engine import make_readonly_engine

    url = validate_storage_url(url)
    probe = make_readonly_engine(url)
    try:
        tables = set(inspect(probe).get_table_names())
    finally:
        probe.dispose()
    if not set(OPTUNA_TABLES) <= tables:
        return None
    if is_sqlite(url):
        uri = f"file:{quote(sqlite_path(url).as_posix())}?mode=ro"  # type: ignore[union-attr]

        def connect() -> sqlite3.Connection:
            return sqlite3.connect(uri, uri=True, timeout=SQLITE_TIMEOUT_S, check_same_thread=False)

        engine_kwargs: dict[str, object] = {"creator": connect}
    else:
        url, engine_kwargs = _readonly_postgres(url)
    optuna.logging.set_verbosity(logging.WARNING)
    return RDBStorage(url, engine_kwargs=engine_kwargs, skip_table_creation=True)


def _readonly_postgres(url: str) -> tuple[str, dict[str, object]]:
    # libpq's `options` applies to every session of the pool. connect_args would replace
    # an `options` the URL already carries (a search_path, say), so the two are merged.
    parsed = make_url(url)
    given = parsed.query.get("options", "")
    given = " ".join(given) if isinstance(given, tuple) else given
    options = f"{given} -c default_transaction_read_only=on".strip()
    bare = parsed.difference_update_query(["options"]).render_as_string(hide_password=False)
    return bare, {"connect_args": {"options": options}, "pool_pre_ping": True}


class OptunaStudy:
    """The trials and objective directions Optuna recorded for one study (picklable)."""

    def __init__(self, trials: list[FrozenTrial], directions: list[optuna.study.StudyDirection]) -> None:
        self.trials = trials
        self.directions = directions

    def trial(self, number: int) -> FrozenTrial | None:
        """The trial with this number, or None."""
        return next((t for t in self.trials if t.number == number), None)


def _study_id(storage: RDBStorage | None, study_name: str) -> int | None:
    """The study's id in Optuna's tables, or None without a storage or such a study."""
    if storage is None:
        return None
    try:
        return storage.get_study_id_from_name(study_name)
    except KeyError:
        return None


def open_optuna_study(storage: RDBStorage | None, study_name: str) -> OptunaStudy | None:
    """Read one study's trials, or None when the storage has no such study."""
    study_id = _study_id(storage, study_name)
    if storage is None or study_id is None:
        return None
    return OptunaStudy(storage.get_all_trials(study_id, deepcopy=False), storage.get_study_directions(study_id))


def read_study_attrs(storage: RDBStorage | None, study_name: str) -> StudyAttrs | None:
    """The settings and data digests ``search.launch`` stored with the study, or None without a record.

    Read through the same read-only storage as the trials; only a summary of the data
    files' digests is kept (see :func:`dashboard.study.study_attrs`).
    """
    study_id = _study_id(storage, study_name)
    if storage is None or study_id is None:
        return None
    return study_attrs(storage.get_study_user_attrs(study_id))


class ImportanceUnavailable(Exception):
    """Importances cannot be computed yet; the message says why, for the page."""


def score_importances(study: OptunaStudy, feasible: Collection[int]) -> dict[str, float]:
    """Parameter importances for the score objective (``values[0]``), by PED-ANOVA.

    Only trials that are complete in ``trial_results`` count: an over-budget trial is
    "complete" to Optuna with a placeholder score of 0, which says nothing about the
    parameters' effect on the score. Those trials are copied into an in-memory study,
    so nothing is written anywhere.

    Args:
        study: The Optuna study.
        feasible: Numbers of the trials whose results row is complete.

    Returns:
        ``parameter -> importance``, summing to 1.

    Raises:
        ImportanceUnavailable: Too few trials, no parameter that varies, or Optuna refused.
    """
    kept = [t for t in study.trials if t.state == TrialState.COMPLETE and t.number in feasible]
    if len(kept) < MIN_TRIALS_FOR_IMPORTANCE:
        raise ImportanceUnavailable(
            f"Importances need at least {MIN_TRIALS_FOR_IMPORTANCE} completed, within-budget trials; this study has {len(kept)} so far."
        )
    copy = optuna.create_study(directions=study.directions)
    copy.add_trials(kept)
    # Optuna 5's default evaluator, PED-ANOVA, ranks parameters by how they lead to *low*
    # target values; the score is maximised, hence the minus. (fANOVA would not care
    # about the sign, but needs scikit-learn, which this project does not install.)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            importances = optuna.importance.get_param_importances(copy, target=lambda t: -t.values[0])
        except (ValueError, RuntimeError, ZeroDivisionError) as exc:
            raise ImportanceUnavailable(f"Optuna could not compute importances yet: {exc}") from None
    equal = [str(w.message) for w in caught if "will be equal" in str(w.message)]
    if equal:
        raise ImportanceUnavailable(f"Too few trials to rank parameters yet (Optuna: {equal[0]})")
    if not importances:
        raise ImportanceUnavailable("No parameter is shared by all completed trials, so none can be ranked.")
    return importances
