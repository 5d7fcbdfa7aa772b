"""The dashboard's engine can read but never write."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, text
from sqlalchemy.exc import DBAPIError

from storage import (
    StorageURLError,
    TrialRecord,
    default_storage_url,
    load_results,
    make_readonly_engine,
    record_trial,
)
from storage.engine import session_scope
from storage.schema import TrialResult


def test_readonly_engine_reads_and_refuses_writes(engine: Engine, storage_url: str, make_record: Callable[..., TrialRecord]) -> None:
    record_trial(engine, make_record(0))
    readonly = make_readonly_engine(storage_url)
    try:
        assert load_results(readonly)["trial_number"].tolist() == [0]
        with pytest.raises(DBAPIError):
            record_trial(readonly, make_record(1))
        with pytest.raises(DBAPIError), session_scope(readonly) as session:
            session.execute(delete(TrialResult))
        with pytest.raises(DBAPIError), readonly.begin() as conn:
            conn.execute(text("CREATE TABLE sneaky (x INTEGER)"))
    finally:
        readonly.dispose()
    assert load_results(engine)["trial_number"].tolist() == [0]


def test_missing_sqlite_file_is_reported(tmp_path: Path) -> None:
    url = default_storage_url(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match=r"No study database at .*studies\.db"):
        make_readonly_engine(url)
    assert not (tmp_path / "nowhere").exists()  # reading must not create it


def test_in_memory_sqlite_is_not_readonly_storage() -> None:
    with pytest.raises(StorageURLError, match="needs a SQLite file"):
        make_readonly_engine("sqlite://")
