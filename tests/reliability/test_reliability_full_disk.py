"""A study database on a full disk or a read-only file system: one line saying so, exit 1, no retry loop.

The database lives on a small tmpfs mounted for the test (root can mount here; elsewhere the
test is skipped and says why). The study is launched with room to spare; then the disk is
filled, or remounted read-only, and the same command is run again with a higher goal.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode}): the full-disk test needs root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def _launch(url: str, data_dir: Path, trials: int) -> subprocess.CompletedProcess:
    command = [
        sys.executable, "-m", "search.launch", "--workers", "1", "--budget", "5%", "--trials", str(trials), "--steps", "1", "--rungs", "0",
        "--no-reference", "--no-warm-start", "--confirm-seeds", "1", "--tasks", "vqa", "--study", "disk",
        "--storage", url, "--data-dir", str(data_dir),
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=900)


@pytest.mark.parametrize("fault", ["full", "read-only"])
def test_a_database_that_refuses_writes_ends_the_run_in_one_line(fault: str, small_disk: Path, data_dir, env) -> None:
    url = f"sqlite:///{small_disk / 'studies.db'}"
    first = _launch(url, data_dir, 1)
    assert first.returncode == 0, first.stderr[-3000:]
    if fault == "full":
        with open(small_disk / "filler", "wb") as filler:  # every free block taken
            try:
                while True:
                    filler.write(b"\0" * 65536)
                    filler.flush()
            except OSError:
                pass
    else:
        subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    started = time.monotonic()
    again = _launch(url, data_dir, 2)
    elapsed = time.monotonic() - started
    assert again.returncode == 1, again.stderr[-3000:]
    last = again.stderr.strip().splitlines()[-1]
    cause = "its disk is full" if fault == "full" else "it is read-only"
    assert last.startswith(f"search.launch: error: the study database {url} refuses writes: {cause}"), again.stderr[-3000:]
    assert "run the same command again" in last and "Traceback" not in again.stderr
    # Said at once: a refused write is not a dropped connection, so no 0.5+1+2+4+8 s of retries.
    assert "trying again" not in again.stderr and elapsed < 120
