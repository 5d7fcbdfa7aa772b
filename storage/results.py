"""Write one trial's outcome and read a study's outcomes back as a DataFrame."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, cast

import pandas as pd
from sqlalchemy import CursorResult, Engine, inspect, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.results import JSON_COLUMNS, RESULT_COLUMNS, RESULT_DTYPES, WORKER_LENGTH, LearningCurve, TrialStatus, check_names
from storage.engine import retry_on_disconnect, session_scope
from storage.schema import TrialResult

__all__ = [
    "RESULT_COLUMNS",
    "TrialRecord",
    "list_studies",
    "load_results",
    "mark_trial_failed",
    "record_trial",
]


@dataclass(frozen=True)
class TrialRecord:
    """One trial's outcome, as written to ``trial_results``.

    Its fields are the columns of the result contract (:data:`core.results.RESULT_SCHEMA`,
    which says what each holds), less ``created_at``, which the database sets;
    an import-time check keeps the two in step. ``trainable_pct`` is derived from the
    two counts, so it cannot disagree with them. All fields are checked at once and
    every problem reported.

    Raises:
        ValueError: If any field breaks its rule (listed in the message).
    """

    study_name: str
    trial_number: int
    status: str
    method: str
    config: dict[str, Any]
    trainable_params: int
    total_params: int
    score: float | None = None
    task_scores: dict[str, float] | None = None
    train_seconds: float | None = None
    error: str | None = None
    finished_at: datetime | None = None
    peak_memory_mb: float | None = None
    param_breakdown: dict[str, Any] | None = None
    timings: dict[str, float] | None = None
    learning_curve: LearningCurve | None = None
    environment: dict[str, Any] | None = None
    worker: str | None = None
    weights_path: str | None = None
    replicate_of: int | None = None
    steps_run: int | None = None
    trainable_pct: float = field(init=False)

    def __post_init__(self) -> None:
        problems = _check(self)
        if problems:
            raise ValueError("Invalid TrialRecord:\n  - " + "\n  - ".join(problems))
        object.__setattr__(self, "status", TrialStatus(self.status).value)
        object.__setattr__(self, "trainable_pct", self.trainable_params / self.total_params * 100.0)


# The record writes every column of the contract but the one the database fills in.
check_names([f.name for f in fields(TrialRecord)] + ["created_at"], "storage.TrialRecord")


def _finite(value: float | None) -> bool:
    return value is None or (isinstance(value, int | float) and math.isfinite(value))


def _check(r: TrialRecord) -> list[str]:
    problems: list[str] = []
    if not r.study_name:
        problems.append(f"study_name must be non-empty, but got {r.study_name!r}")
    if r.trial_number < 0:
        problems.append(f"trial_number must be >= 0, but got {r.trial_number}")
    if r.status not in set(TrialStatus):
        allowed = ", ".join(s.value for s in TrialStatus)
        problems.append(f"status must be one of {allowed}, but got {r.status!r}")
    if not r.method:
        problems.append(f"method must be non-empty, but got {r.method!r}")
    if r.total_params <= 0:
        problems.append(f"total_params must be > 0, but got {r.total_params}")
    if not 0 <= r.trainable_params <= max(r.total_params, 0):
        problems.append(f"0 <= trainable_params <= total_params must hold, but got ({r.trainable_params=}, {r.total_params=})")
    if not _finite(r.score):
        problems.append(f"score must be a finite number or None, but got {r.score!r}")
    if r.status == TrialStatus.COMPLETE and r.score is None:
        problems.append("a 'complete' trial needs a score; record it as 'failed' otherwise")
    if not _finite(r.train_seconds):
        problems.append(f"train_seconds must be finite or None, but got {r.train_seconds!r}")
    if r.task_scores is not None and not all(_finite(v) for v in r.task_scores.values()):
        problems.append(f"task_scores values must be finite numbers, but got {r.task_scores!r}")
    if r.finished_at is not None and r.finished_at.tzinfo is None:
        problems.append(f"finished_at must be timezone-aware, but got {r.finished_at!r}; use datetime.now(datetime.UTC)")
    if not _finite(r.peak_memory_mb) or (r.peak_memory_mb is not None and r.peak_memory_mb < 0):
        problems.append(f"peak_memory_mb must be a finite number >= 0 or None, but got {r.peak_memory_mb!r}")
    if r.timings is not None and not all(v is not None and _finite(v) and v >= 0 for v in r.timings.values()):
        problems.append(f"timings values must be finite seconds >= 0, but got {r.timings!r}")
    if r.steps_run is not None and (isinstance(r.steps_run, bool) or not isinstance(r.steps_run, int) or r.steps_run < 0):
        problems.append(f"steps_run must be a count of training steps (an integer >= 0), but got {r.steps_run!r}")
    if r.replicate_of is not None and not 0 <= r.replicate_of != r.trial_number:
        problems.append(f"replicate_of must be another trial's number (>= 0), but got {r.replicate_of!r} for trial {r.trial_number}")
    if r.worker is not None and not 0 < len(r.worker) <= WORKER_LENGTH:
        problems.append(f"worker must be 1-{WORKER_LENGTH} characters ('host:pid'), but got {r.worker!r}")
    for name in JSON_COLUMNS:
        value = getattr(r, name)
        if name != "config" and value is not None and not isinstance(value, dict):
            problems.append(f"{name} must be a dict or None, but got {type(value).__name__}")
            continue
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            problems.append(f"{name} must be JSON-serialisable ({exc}); store plain values")
    return problems


def record_trial(engine: Engine, record: TrialRecord) -> None:
    """Insert or update the row for ``(record.study_name, record.trial_number)``.

    Select-then-write in one transaction, so it behaves the same on SQLite
    and PostgreSQL; a "running" row is later overwritten by the outcome. A
    dropped connection is retried with backoff (the write is idempotent).

    Args:
        engine: A read-write engine whose schema was created by ``init_schema``.
        record: The trial's outcome.

    Raises:
        sqlalchemy.exc.SQLAlchemyError: If the database rejects the write.
    """
    values = {f.name: getattr(record, f.name) for f in fields(record)}

    def write() -> None:
        try:
            _upsert(engine, record, values)
        except IntegrityError:
            # Another writer inserted the same trial between our select and
            # insert; retrying turns our insert into an update.
            _upsert(engine, record, values)

    retry_on_disconnect(write, f"record trial {record.trial_number} of study {record.study_name!r}")


def _upsert(engine: Engine, record: TrialRecord, values: dict[str, Any]) -> None:
    with session_scope(engine) as session:
        upsert_row(session, record, values)


def upsert_row(session: Session, record: TrialRecord, values: dict[str, Any]) -> None:
    """Insert the trial's row, or overwrite it with ``values``, inside ``session``'s transaction."""
    row = session.scalar(
        select(TrialResult)
        .where(
            TrialResult.study_name == record.study_name,
            TrialResult.trial_number == record.trial_number,
        )
        .with_for_update()
    )
    if row is None:
        session.add(TrialResult(**values))
        return
    for name, value in values.items():
        setattr(row, name, value)


def _has_results(engine: Engine) -> bool:
    # A database made only by Optuna has no trial_results yet; reading it
    # is not an error, just an empty result.
    return inspect(engine).has_table(TrialResult.__tablename__)


def _stored_columns(engine: Engine) -> list[str]:
    """The result columns the table has: all of them, or fewer in an older layout.

    The dashboard reads read-only and cannot upgrade a database; a version-1 table
    (no peak memory, timings, ...) is read as it is and the missing columns are
    left empty, until a search command opens the database and upgrades it.
    """
    present = {c["name"] for c in inspect(engine).get_columns(TrialResult.__tablename__)}
    return [c for c in RESULT_COLUMNS if c in present]


def load_results(engine: Engine, study_name: str | None = None) -> pd.DataFrame:
    """Load trials as a DataFrame with :data:`RESULT_COLUMNS`, one row per trial.

    Args:
        engine: Any engine, read-only included.
        study_name: Only this study's trials; all studies when None.

    Returns:
        Rows sorted by study and trial number; ``config`` and
        ``task_scores`` hold dicts. Empty, with the same columns, when
        there are no trials or no ``trial_results`` table.
    """
    rows = retry_on_disconnect(lambda: _read_rows(engine, study_name), "load results")
    # Column by column, so None stays None in object columns (pandas would
    # otherwise infer a string dtype and turn None into NaN).
    return pd.DataFrame({c: pd.Series([row[c] for row in rows], dtype=RESULT_DTYPES[c]) for c in RESULT_COLUMNS})


def _read_rows(engine: Engine, study_name: str | None) -> list[dict[str, Any]]:
    if not _has_results(engine):
        return []
    stored = _stored_columns(engine)
    table = TrialResult.__table__
    query = select(*(table.c[c] for c in stored)).order_by(table.c.study_name, table.c.trial_number)
    if study_name is not None:
        query = query.where(table.c.study_name == study_name)
    with engine.connect() as connection:
        return [{c: row.get(c) for c in RESULT_COLUMNS} for row in (r._mapping for r in connection.execute(query))]


def mark_trial_failed(engine: Engine, study_name: str, trial_number: int, reason: str, keep_failed: bool = False) -> bool:
    """Record that a trial failed outside its own code (its worker died or was stopped).

    The row keeps what was recorded (config, counts, worker, ...); status becomes
    ``failed``, ``error`` the reason, ``finished_at`` now. A row recorded
    ``complete`` whose worker died before Optuna heard of it is marked failed too:
    Optuna's state decides, so both tables agree and the trial's retry is not
    mistaken for a duplicate of it.

    Args:
        engine: A read-write engine.
        study_name: The study.
        trial_number: The trial.
        reason: What happened and what follows (a retry, or why none).
        keep_failed: Leave a row already ``failed`` as it is: its own reason is the better one.

    Returns:
        Whether a row was updated (False when the trial had recorded nothing yet, or with
        ``keep_failed`` when it was failed already).

    Raises:
        ValueError: If ``reason`` is empty.
    """
    if not reason:
        raise ValueError(f"mark_trial_failed needs a reason, but got {reason!r}; say what stopped the trial")
    statement = (
        update(TrialResult)
        .where(TrialResult.study_name == study_name, TrialResult.trial_number == trial_number)
        .values(status=TrialStatus.FAILED.value, error=reason, finished_at=datetime.now(UTC))
    )
    if keep_failed:
        statement = statement.where(TrialResult.status != TrialStatus.FAILED.value)

    def write() -> bool:
        with session_scope(engine) as session:
            # An UPDATE's result is a CursorResult (Session.execute is typed for any statement).
            return cast(CursorResult[Any], session.execute(statement)).rowcount > 0

    # Idempotent: a repeat after a dropped connection sets the same values.
    return retry_on_disconnect(write, f"mark trial {trial_number} of study {study_name!r} failed")


def list_studies(engine: Engine) -> list[str]:
    """Return the names of studies with at least one recorded trial, sorted.

    Args:
        engine: Any engine, read-only included.

    Returns:
        Study names; empty when there are none or no ``trial_results`` table.
    """
    if not _has_results(engine):
        return []
    with session_scope(engine) as session:
        query = select(TrialResult.study_name).distinct().order_by(TrialResult.study_name)
        return list(session.scalars(query))
