"""Upgrade an older database's tables to :data:`storage.schema.SCHEMA_VERSION`.

``init_schema`` calls :func:`upgrade`, so every search command brings the
database it opens up to date; nothing is needed by hand. The dashboard only
reads, and reads older layouts as they are (``load_results`` fills the
columns they lack).

Why an ordered list of functions and not Alembic: Optuna already keeps its own
Alembic history in the same database (its ``alembic_version`` table), so ours
would need a second version table, an ``env.py`` and a script folder shipped as
package data, and autogenerate would see Optuna's tables as strays to drop
unless filtered out. Our tables change rarely and additively; ``schema_meta``
already records the version, and a few plain functions run in one transaction
keyed on it are easier to read and to test against both backends.

Every step runs in one transaction with the version update: on PostgreSQL DDL
is transactional, and on SQLite the transaction is opened with ``BEGIN
IMMEDIATE`` (the driver would otherwise commit each ``ALTER TABLE`` on its
own). A failed step leaves the database exactly as it was. Concurrent workers
are serialised on the ``schema_meta`` row (``FOR UPDATE`` on PostgreSQL, the
write lock on SQLite), so the second one finds the work done.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import JSON, Column, Engine, Float, Integer, String, Text, inspect, select, update
from sqlalchemy.engine import Connection

from storage.schema import SCHEMA_VERSION, SchemaMeta, TrialResult
from storage.urls import redact

__all__ = ["MIGRATIONS", "Migration", "SchemaVersionError", "upgrade"]


class SchemaVersionError(RuntimeError):
    """The database holds a ``trial_results`` layout this code cannot use."""


@dataclass(frozen=True)
class Migration:
    """One step: upgrades a database from ``from_version`` to ``from_version + 1``."""

    from_version: int
    summary: str
    apply: Callable[[Connection], None]


def _add_columns(conn: Connection, table: str, columns: Sequence[Column]) -> None:
    # Columns are spelled out here, not read from the current model, so this step
    # stays what it was when later versions change the model again. A column that
    # is already there (added by hand, say) is left alone.
    present = {c["name"] for c in inspect(conn).get_columns(table)}
    quote = conn.dialect.identifier_preparer.quote
    for column in columns:
        if column.name in present:
            continue
        kind = column.type.compile(dialect=conn.dialect)
        conn.exec_driver_sql(f"ALTER TABLE {quote(table)} ADD COLUMN {quote(column.name)} {kind}")


def _v1_to_v2(conn: Connection) -> None:
    _add_columns(
        conn,
        "trial_results",
        [
            Column("peak_memory_mb", Float),
            Column("param_breakdown", JSON),
            Column("timings", JSON),
            Column("learning_curve", JSON),
            Column("environment", JSON),
            Column("worker", String(300)),
            Column("weights_path", Text),
        ],
    )


def _v2_to_v3(conn: Connection) -> None:
    _add_columns(conn, "trial_results", [Column("replicate_of", Integer)])


def _v3_to_v4(conn: Connection) -> None:
    _add_columns(conn, "trial_results", [Column("steps_run", Integer)])


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "trial_results gains peak_memory_mb, param_breakdown, timings, learning_curve, environment, worker and weights_path",
        _v1_to_v2,
    ),
    Migration(2, "trial_results gains replicate_of (confirmation seeds: the trial whose configuration a row re-trains)", _v2_to_v3),
    Migration(
        3,
        "trial_results gains steps_run (the training steps a trial ran: its compute, multi-fidelity's stopped trials included)",
        _v3_to_v4,
    ),
)


def _pending(version: int, migrations: Sequence[Migration]) -> list[Migration]:
    steps = {m.from_version: m for m in migrations}
    missing = [v for v in range(version, SCHEMA_VERSION) if v not in steps]
    if missing:
        raise SchemaVersionError(
            f"No migration from schema version {missing[0]} (the database is at {version}, this code "
            f"needs {SCHEMA_VERSION}); upgrade with the release that introduced version {missing[0] + 1}."
        )
    return [steps[v] for v in range(version, SCHEMA_VERSION)]


def upgrade(engine: Engine, migrations: Sequence[Migration] | None = None) -> list[Migration]:
    """Bring the database to :data:`SCHEMA_VERSION`, all steps in one transaction.

    Args:
        engine: A read-write engine on a database whose ``schema_meta`` row exists
            (``init_schema`` creates it).
        migrations: The steps to use; :data:`MIGRATIONS` when None (tests pass others).

    Returns:
        The steps applied, oldest first; empty when the database was up to date.

    Raises:
        SchemaVersionError: If the database records a newer version than this code
            knows, records none, or a step is missing.
        sqlalchemy.exc.SQLAlchemyError: If a step fails; nothing is changed then.
    """
    shown = redact(engine.url)
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            version = conn.execute(select(SchemaMeta.version).where(SchemaMeta.id == 1).with_for_update()).scalar_one_or_none()
            if version is None:
                raise SchemaVersionError(
                    f"The database at {shown!r} has {TrialResult.__tablename__} but no schema version "
                    f"in schema_meta; it was not made by this project: use a new database."
                )
            if version > SCHEMA_VERSION:
                raise SchemaVersionError(
                    f"The database at {shown!r} has schema version {version}, but this code needs "
                    f"{SCHEMA_VERSION} and cannot downgrade; use a release that knows version {version}."
                )
            steps = _pending(version, MIGRATIONS if migrations is None else migrations)
            for step in steps:
                step.apply(conn)
            if steps:
                conn.execute(update(SchemaMeta).where(SchemaMeta.id == 1).values(version=SCHEMA_VERSION))
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
    return steps
