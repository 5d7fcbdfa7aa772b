"""Benchmark scripts a user runs refuse bad flags in one line before any work (issue #26).

Each runs in-process through its `main`, in an empty folder holding only the fixtures, which
must be unchanged afterwards: a bad --data-dir or --out must not start a half-hour build first.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
A_FILE, A_DIR = "a-file", "a-dir"


@pytest.mark.parametrize(
    ("script", "argv", "needles"),
    [
        ("run_all", ["--data-dir", A_FILE], ["argument --data-dir", "'a-file' is a file", "pass a folder"]),
        ("run_all", ["--out", f"{A_FILE}/BENCHMARKS.md"], ["argument --out", "cannot be written", "is a file"]),
        ("run_all", ["--out", A_DIR], ["argument --out", "is a folder; name the file to write"]),
        ("run_all", ["--only", "nope"], ["--only names unknown benchmarks ['nope']", "known: step_time"]),
        ("step_time", ["--threads", "0"], ["argument --threads", "must be a whole number >= 1, got '0'"]),
        ("search_efficiency", ["--data-dir", f"{A_FILE}/data"], ["cannot be created", "a-file' is a file"]),
        ("promotion_rules", ["--seeds", "0"], ["argument --seeds", "must be a whole number >= 1, got '0'"]),
        ("promotion_rules", ["--measured", A_DIR], ["--measured a-dir: no such file", "rung_reliability.py"]),
        ("rung_reliability", ["--replay", A_DIR], ["--replay a-dir: no such file", "rung_reliability.py --out FILE"]),
        ("rung_reliability", ["--jobs", "0"], ["argument --jobs", "must be a whole number >= 1, got '0'"]),
        ("throughput", ["--trials", "0"], ["argument --trials", "must be a whole number >= 1"]),
        ("replication", ["--seeds", "0"], ["argument --seeds", "must be a whole number >= 1"]),
        ("replication", ["--tasks", "vqa,nope"], ["argument --tasks", "give tasks of the generated benchmark"]),
        ("replication", ["--out", A_DIR], ["argument --out", "is a folder"]),
        ("replication", ["--presets", "single-lst,nope"], ["argument --presets", "unknown run presets ['nope']", "single-dora"]),
        ("multitask", ["--steps", "-1"], ["argument --steps", "got '-1'"]),
        ("pretraining", ["--data-dir", A_FILE], ["argument --data-dir", "is a file"]),
        ("dashboard_render", ["--runs", "x"], ["argument --runs", "got 'x'"]),
        ("launch_time", ["--other", A_DIR, "--rounds", "0"], ["argument --rounds", "got '0'"]),
        ("overhead", ["--rounds", "0"], ["argument --rounds", "must be a whole number >= 1, got '0'"]),
    ],
)
def test_a_benchmark_script_refuses_bad_flags_before_any_work(script, argv, needles, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / A_FILE).write_text("")
    (tmp_path / A_DIR).mkdir()
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    module = importlib.import_module(script)
    monkeypatch.setattr(sys, "argv", [f"{script}.py", *argv])
    with pytest.raises(SystemExit) as exited:
        module.main()
    assert exited.value.code == 2
    message = capsys.readouterr().err
    for needle in needles:
        assert needle in message, (needle, message)
    assert "Traceback" not in message
    assert sorted(p.name for p in tmp_path.iterdir()) == [A_DIR, A_FILE] and not any((tmp_path / A_DIR).iterdir())
