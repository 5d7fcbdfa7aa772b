"""The result contract (core.results): one declaration that the table, the record and the frame follow."""

from __future__ import annotations

import pytest

from core.results import RESULT_COLUMNS, RESULT_DTYPES, RESULT_SCHEMA, STATUSES, TrialStatus, check_names


def test_dtypes_follow_the_kinds() -> None:
    assert RESULT_DTYPES["trial_number"] == RESULT_DTYPES["trainable_params"] == "int64"
    assert RESULT_DTYPES["score"] == RESULT_DTYPES["train_seconds"] == "float64"
    assert RESULT_DTYPES["created_at"] == RESULT_DTYPES["finished_at"] == "datetime64[us, UTC]"
    assert RESULT_DTYPES["config"] == RESULT_DTYPES["worker"] == "object"
    assert list(RESULT_DTYPES) == list(RESULT_COLUMNS) == [c.name for c in RESULT_SCHEMA]


def test_every_status_is_listed_once() -> None:
    assert sorted(STATUSES) == sorted(s.value for s in TrialStatus)


def test_a_writer_out_of_step_is_named() -> None:
    check_names(RESULT_COLUMNS, "ok")
    with pytest.raises(RuntimeError, match=r"missing \['weights_path'\], extra \['weights'\]"):
        check_names([c for c in RESULT_COLUMNS if c != "weights_path"] + ["weights"], "a writer")
