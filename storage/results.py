"""Write one trial's outcome and read a study's outcomes back as a DataFrame."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Engine, inspect, select
from sqlalchemy.exc import IntegrityError

from storage.engine import session_scope
from storage.schema import TrialResult, TrialStatus

__all__ = [
    "RESULT_COLUMNS",
    "TrialRecord",
    "list_studies",
    "load_results",
    "record_trial",
]

RESULT_COLUMNS: tuple[str, ...] = (
    "study_name",
    "trial_number",
    "status",
    "method",
    "config",
    "score",
    "task_scores",
    "trainable_params",
    "total_params",
    "trainable_pct",
    "train_seconds",
    "error",
    "created_at",
    "finished_at",
)
# Fixed dtypes so an empty frame and a full one have the same schema.
_DTYPES: dict[str, Any] = {
    "study_name": "object",
    "trial_number": "int64",
    "status": "object",
    "method": "object",
    "config": "object",
    "score": "float64",
    "task_scores": "object",
    "trainable_params": "int64",
    "total_params": "int64",
    "trainable_pct": "float64",
    "train_seconds": "float64",
    "error": "object",
    "created_at": "datetime64[us, UTC]",
    "finished_at": "datetime64[us, UTC]",
}


@dataclass(frozen=True)
class TrialRecord:
    """One trial's outcome, as written to ``trial_results``.

    ``trainable_pct`` is derived from the two counts, so it cannot disagree
    with them. All fields are checked at once and every problem reported.

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
    trainable_pct: float = field(init=False)

    def __post_init__(self) -> None:
        problems = _check(self)
        if problems:
            raise ValueError("Invalid TrialRecord:\n  - " + "\n  - ".join(problems))
        object.__setattr__(self, "status", TrialStatus(self.status).value)
        object.__setattr__(self, "trainable_pct", self.trainable_params / self.total_params * 100.0)


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
        problems.append(
            "0 <= trainable_params <= total_params must hold, but got "
            f"({r.trainable_params=}, {r.total_params=})"
        )
    if not _finite(r.score):
        problems.append(f"score must be a finite number or None, but got {r.score!r}")
    if r.status == TrialStatus.COMPLETE and r.score is None:
        problems.append("a 'complete' trial needs a score; record it as 'failed' otherwise")
    if not _finite(r.train_seconds):
        problems.append(f"train_seconds must be finite or None, but got {r.train_seconds!r}")
    if r.task_scores is not None and not all(_finite(v) for v in r.task_scores.values()):
        problems.append(f"task_scores values must be finite numbers, but got {r.task_scores!r}")
    if r.finished_at is not None and r.finished_at.tzinfo is None:
        problems.append(
            f"finished_at must be timezone-aware, but got {r.finished_at!r}; "
            "use datetime.now(datetime.UTC)"
        )
    for name in ("config", "task_scores"):
        try:
            json.dumps(getattr(r, name), allow_nan=False)
        except (TypeError, ValueError) as exc:
            problems.append(f"{name} must be JSON-serialisable ({exc}); store plain values")
    return problems


def record_trial(engine: Engine, record: TrialRecord) -> None:
    """Insert or update the row for ``(record.study_name, record.trial_number)``.

    Select-then-write in one transaction, so it behaves the same on SQLite
    and PostgreSQL; a "running" row is later overwritten by the outcome.

    Args:
        engine: A read-write engine whose schema was created by ``init_schema``.
        record: The trial's outcome.

    Raises:
        sqlalchemy.exc.SQLAlchemyError: If the database rejects the write.
    """
    values = {f.name: getattr(record, f.name) for f in fields(record)}
    try:
        _upsert(engine, record, values)
    except IntegrityError:
        # Another writer inserted the same trial between our select and
        # insert; retrying turns our insert into an update.
        _upsert(engine, record, values)


def _upsert(engine: Engine, record: TrialRecord, values: dict[str, Any]) -> None:
    with session_scope(engine) as session:
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
    rows: list[dict[str, Any]] = []
    if _has_results(engine):
        query = select(TrialResult).order_by(TrialResult.study_name, TrialResult.trial_number)
        if study_name is not None:
            query = query.where(TrialResult.study_name == study_name)
        with session_scope(engine) as session:
            rows = [{c: getattr(r, c) for c in RESULT_COLUMNS} for r in session.scalars(query)]
    # Column by column, so None stays None in object columns (pandas would
    # otherwise infer a string dtype and turn None into NaN).
    return pd.DataFrame(
        {c: pd.Series([row[c] for row in rows], dtype=_DTYPES[c]) for c in RESULT_COLUMNS}
    )


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
