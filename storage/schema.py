"""Our tables, which live beside Optuna's RDB tables in the same database.

``trial_results`` holds one row per Optuna trial with what the dashboard
needs (score, parameter counts, the full config, and since version 2 peak
memory, the parameter breakdown, timings, learning curve, the run's
environment and the worker that ran it), so nothing downstream has to read
Optuna's internal tables. ``schema_meta`` records the layout version;
``storage.migrations`` upgrades older databases to :data:`SCHEMA_VERSION`.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

__all__ = [
    "SCHEMA_VERSION",
    "WORKER_LENGTH",
    "Base",
    "SchemaMeta",
    "TrialResult",
    "TrialStatus",
    "UTCDateTime",
]

# Bump together with a new step in storage.migrations.MIGRATIONS.
SCHEMA_VERSION = 2

# A host name (at most 253 characters) and a process id fit.
WORKER_LENGTH = 300


class TrialStatus(enum.StrEnum):
    """Lifecycle of one trial as recorded in ``trial_results``."""

    RUNNING = "running"
    COMPLETE = "complete"
    INFEASIBLE = "infeasible"  # over the parameter budget or an invalid config
    FAILED = "failed"  # raised while building, training or evaluating
    PRUNED = "pruned"


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and always read back timezone-aware.

    SQLite has no timezone type and would hand back naive datetimes, so
    values are normalised to UTC on the way in and tagged UTC on the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(
                f"Timestamps must be timezone-aware, but got the naive {value!r}; "
                f"use datetime.now(datetime.UTC)."
            )
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base for our tables only; Optuna's have their own metadata."""

    type_annotation_map = {  # noqa: RUF012 (SQLAlchemy reads this plain class dict)
        # none_as_null: a missing task_scores is SQL NULL, not the JSON text 'null'.
        dict[str, Any]: JSON(none_as_null=True),
        datetime: UTCDateTime(),
    }


_STATUSES = ", ".join(f"'{s.value}'" for s in TrialStatus)


class TrialResult(Base):
    """One trial's outcome; unique per (study_name, trial_number)."""

    __tablename__ = "trial_results"
    __table_args__ = (
        # The unique index leads with study_name, so it also serves the
        # per-study filter; a separate study_name index would be redundant.
        UniqueConstraint("study_name", "trial_number", name="uq_trial_results_study_trial"),
        CheckConstraint(f"status IN ({_STATUSES})", name="ck_trial_results_status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # 512 matches Optuna's own study_name column, so any Optuna name fits.
    study_name: Mapped[str] = mapped_column(String(512))
    trial_number: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    method: Mapped[str] = mapped_column(String(64))
    config: Mapped[dict[str, Any]]
    score: Mapped[float | None] = mapped_column(Float)
    task_scores: Mapped[dict[str, Any] | None]
    # BigInteger: T5-large-sized totals approach the 32-bit limit.
    trainable_params: Mapped[int] = mapped_column(BigInteger)
    total_params: Mapped[int] = mapped_column(BigInteger)
    trainable_pct: Mapped[float] = mapped_column(Float)
    train_seconds: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=_utcnow)
    finished_at: Mapped[datetime | None]
    # Version 2 (storage.migrations adds these to a version-1 table; all nullable,
    # so rows written before the upgrade simply lack them).
    peak_memory_mb: Mapped[float | None] = mapped_column(Float)
    param_breakdown: Mapped[dict[str, Any] | None]  # component -> {trainable, total}
    timings: Mapped[dict[str, Any] | None]  # phase -> seconds
    learning_curve: Mapped[dict[str, Any] | None]  # series -> {step: value}
    environment: Mapped[dict[str, Any] | None]  # packages, python, device, git revision
    worker: Mapped[str | None] = mapped_column(String(WORKER_LENGTH))  # "host:pid"
    weights_path: Mapped[str | None] = mapped_column(Text)


class SchemaMeta(Base):
    """Single row (id 1) holding the version of our table layout."""

    __tablename__ = "schema_meta"
    __table_args__ = (CheckConstraint("id = 1", name="ck_schema_meta_single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(Integer)
