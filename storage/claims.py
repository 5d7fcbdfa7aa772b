"""Claim a configuration before training it, so that no two workers train the same one.

Trials are deterministic (the seed is part of the configuration), so a configuration trained
twice only spends a second trial's time to repeat the first. Workers sharing a study sample
independently and can draw the same configuration at the same moment; a check that reads
the table and then writes the trial's "running" row leaves a gap in which both pass. The
claim closes it: the check and the write happen in one transaction that holds a per-study
lock, a PostgreSQL advisory lock or SQLite's single writer lock.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from dataclasses import fields
from typing import NamedTuple

from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from storage.engine import retry_on_disconnect, session_scope
from storage.results import TrialRecord, upsert_row
from storage.schema import TrialResult, TrialStatus

__all__ = ["Holder", "claim_trial"]

# Rows that hold a configuration: trained, or being trained.
_HOLDING = (TrialStatus.COMPLETE.value, TrialStatus.RUNNING.value)


class Holder(NamedTuple):
    """The trial that already holds a configuration."""

    trial_number: int
    status: str  # "complete" or "running"
    worker: str | None


def claim_trial(engine: Engine, record: TrialRecord, ignore: Collection[int] = ()) -> Holder | None:
    """Record ``record`` as running, unless another trial of its study holds the same configuration.

    Args:
        engine: A read-write engine whose schema was created by ``init_schema``.
        record: The trial's "running" row.
        ignore: Trials whose rows do not count (the earlier attempts of a retried trial:
            a dead worker's row may still read "running" when its retry starts).

    Returns:
        None when the claim was recorded; otherwise the holder, and nothing was written.

    Raises:
        ValueError: If ``record`` is not a "running" row.
        sqlalchemy.exc.SQLAlchemyError: If the database rejects the write.
    """
    if record.status != TrialStatus.RUNNING.value:
        raise ValueError(f"claim_trial records a 'running' row, but got status {record.status!r}; use record_trial")
    values = {f.name: getattr(record, f.name) for f in fields(record)}
    ignored = {*ignore, record.trial_number}
    wanted = json.loads(json.dumps(record.config))  # as stored: tuples read back as lists

    def claim() -> Holder | None:
        with session_scope(engine) as session:
            _lock_study(session, record.study_name)
            holders = session.execute(
                select(TrialResult.trial_number, TrialResult.status, TrialResult.worker, TrialResult.config).where(
                    TrialResult.study_name == record.study_name, TrialResult.status.in_(_HOLDING)
                )
            )
            for number, status, worker, config in holders:
                if number not in ignored and config == wanted:
                    return Holder(number, status, worker)
            upsert_row(session, record, values)
            return None

    # A repeat after a commit whose answer was lost finds the trial's own row, which it ignores.
    return retry_on_disconnect(claim, f"claim trial {record.trial_number} of study {record.study_name!r}")


def _lock_study(session: Session, study_name: str) -> None:
    """Hold the study's claim lock until the transaction ends."""
    if session.get_bind().dialect.name == "postgresql":
        key = int.from_bytes(hashlib.blake2b(f"vlpetl-claim:{study_name}".encode(), digest_size=8).digest(), "big", signed=True)
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
    else:
        # SQLite has one writer at a time: a first statement that writes (nothing, here) takes
        # the write lock at once, so the read below sees every earlier claim and no later one
        # can start before this one commits.
        session.execute(text("UPDATE trial_results SET id = id WHERE 0 = 1"))
