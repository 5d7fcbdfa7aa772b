"""Our tables, which live beside Optuna's RDB tables in the same database.

``trial_results`` holds one row per Optuna trial with what the dashboard
needs, so nothing downstream has to read Optuna's internal tables; its columns
are the result contract, :data:`core.results.RESULT_SCHEMA` (``TrialStatus``
and ``WORKER_LENGTH`` are re-exported from there). ``schema_meta`` records
the layout version; ``storage.migrations`` upgrades older databases to :data:`SCHEMA_VERSION`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator, TypeEngine

from core.results import RESULT_SCHEMA, WORKER_LENGTH, Kind, ResultColumn, TrialStatus

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
SCHEMA_VERSION = 4


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
            raise ValueError(f"Timestamps must be timezone-aware, but got the naive {value!r}; use datetime.now(datetime.UTC).")
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


_STATUSES = ", ".join(f"'{s.value}'" for s in TrialStatus)


def _sql_type(column: ResultColumn) -> TypeEngine[Any]:
    if column.kind is Kind.TEXT:
        return String(column.max_length) if column.max_length else Text()
    types: dict[Kind, TypeEngine[Any]] = {
        Kind.INT: Integer(),
        Kind.COUNT: BigInteger(),  # T5-large-sized totals approach the 32-bit limit
        Kind.FLOAT: Float(),
        # none_as_null: a missing task_scores is SQL NULL, not the JSON text 'null'.
        Kind.JSON: JSON(none_as_null=True),
        Kind.TIME: UTCDateTime(),
    }
    return types[column.kind]


def _column(column: ResultColumn) -> Column[Any]:
    default = _utcnow if column.name == "created_at" else None
    return Column(column.name, _sql_type(column), nullable=column.nullable, default=default)


class TrialResult(Base):
    """One trial's outcome; unique per (study_name, trial_number).

    Its columns are :data:`core.results.RESULT_SCHEMA`'s, in that order, after the id.
    """

    __tablename__ = "trial_results"
    __table__ = Table(
        __tablename__,
        Base.metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        *(_column(c) for c in RESULT_SCHEMA),
        # The unique index leads with study_name, so it also serves the
        # per-study filter; a separate study_name index would be redundant.
        UniqueConstraint("study_name", "trial_number", name="uq_trial_results_study_trial"),
        CheckConstraint(f"status IN ({_STATUSES})", name="ck_trial_results_status"),
    )
    if TYPE_CHECKING:  # the mapped attributes the queries use, for type checkers
        id: Mapped[int]
        study_name: Mapped[str]
        trial_number: Mapped[int]
        status: Mapped[str]
        worker: Mapped[str | None]
        config: Mapped[dict[str, Any]]
        created_at: Mapped[datetime]
        finished_at: Mapped[datetime | None]


class SchemaMeta(Base):
    """Single row (id 1) holding the version of our table layout."""

    __tablename__ = "schema_meta"
    __table_args__ = (CheckConstraint("id = 1", name="ck_schema_meta_single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(Integer)
