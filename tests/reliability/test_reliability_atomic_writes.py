"""Export and checkpoint writes are atomic: a crash mid-write leaves the old file or none.

The crash is real: the CLI runs under a file-size limit (RLIMIT_FSIZE) smaller than what it
writes, so the kernel stops the write half-way and kills the process with SIGXFSZ (no Python
cleanup runs), or fails the write with EFBIG, as a full disk does. Python ignores SIGXFSZ from
start-up, so the killing variant runs the CLI module after restoring the kernel's default.
"""

from __future__ import annotations

import resource
import signal
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import yaml

from models.config import TrialConfig
from models.petl import get_method
from storage import TrialRecord, default_storage_url, init_schema, make_engine, record_trial

OLD = "the recipe exported yesterday\n"


def _run(module: str, *args: str, max_bytes: int, killed: bool) -> subprocess.CompletedProcess:
    """``python -m module args`` with files limited to ``max_bytes``; ``killed``: SIGXFSZ kills it."""

    def limit() -> None:  # in the child, before Python starts
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))

    argv = [sys.executable, "-m", module, *args]
    if killed:
        start = "import runpy, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_DFL); sys.argv = sys.argv[1:]; "
        argv = [sys.executable, "-c", start + f"runpy.run_module({module!r}, run_name='__main__', alter_sys=True)", module, *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=600, preexec_fn=limit)


def _study(tmp_path: Path, backbone: str) -> str:
    url = default_storage_url(tmp_path / "db")
    engine = make_engine(url)
    init_schema(engine)
    config = TrialConfig(backbone=backbone, tasks=("vqa",), method="vl_only", freeze=get_method("vl_only").freeze)
    record_trial(engine, TrialRecord(
        study_name="s", trial_number=0, status="complete", method="vl_only", config=config.to_dict(),
        trainable_params=1_000, total_params=100_000, score=50.0, finished_at=datetime.now(UTC),
    ))  # fmt: skip
    engine.dispose()
    # A rollback journal instead of WAL: the read-only export then needs no shared-memory file,
    # whose creation would hit the size limit before the recipe does.
    with sqlite3.connect(tmp_path / "db" / "studies.db") as connection:
        connection.execute("PRAGMA journal_mode=DELETE")
    return url


def test_an_export_killed_or_refused_mid_write_keeps_the_old_recipe(env, tmp_path: Path) -> None:
    url = _study(tmp_path, env.location.preset.name)
    export = ("--study", "s", "--storage", url, "--budget", "5%")
    probe = tmp_path / "probe.yaml"
    assert _run("search.export", *export, "--out", str(probe), max_bytes=1 << 30, killed=False).returncode == 0
    size = probe.stat().st_size
    out = tmp_path / "out" / "best.yaml"
    out.parent.mkdir()
    out.write_text(OLD)

    crashed = _run("search.export", *export, "--out", str(out), max_bytes=size // 2, killed=True)
    assert crashed.returncode == -signal.SIGXFSZ, crashed.stderr[-2000:]
    assert out.read_text() == OLD, "a crash mid-write must leave the old recipe"
    partial = [p for p in out.parent.iterdir() if p != out]
    assert [p.stat().st_size for p in partial] == [size // 2], "the crash did hit the write, in a temporary file"

    refused = _run("search.export", *export, "--out", str(out), max_bytes=size // 2, killed=False)
    assert refused.returncode == 1
    assert "--out" in refused.stderr and "could not be written (File too large); nothing was changed" in refused.stderr
    assert out.read_text() == OLD
    assert [p for p in out.parent.iterdir() if p != out] == partial, "a refused write cleans up after itself"


def test_training_killed_while_saving_its_weights_leaves_no_partial_run(env, tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.yaml"
    config = TrialConfig(backbone=env.location.preset.name, tasks=("vqa",), method="vl_only", freeze=get_method("vl_only").freeze)
    recipe.write_text(yaml.safe_dump({"config": config.to_dict()}))
    out = tmp_path / "run"
    # 4 KiB: the trainable weights (tens of kB) cannot be written whole.
    args = ("--recipe", str(recipe), "--steps", "1", "--data-dir", str(env.data_dir), "--out", str(out))
    result = _run("search.train", *args, max_bytes=4096, killed=True)
    assert result.returncode == -signal.SIGXFSZ, result.stderr[-2000:]
    names = sorted(p.name for p in out.iterdir())
    # Neither weights nor metrics under their names. The killed write's temporary files stay
    # (no cleanup runs after SIGXFSZ; safetensors may stage in one of its own): proof that the
    # crash came while the weights were being written.
    assert [name for name in names if not name.startswith(".")] == [], names
    assert any(name.startswith(".trainable-") for name in names), f"the crash did not hit the weights write: {names}"
