"""Fixtures shared across the suite: one prepared benchmark + embedded backbone per session."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from filelock import FileLock

from run_commands import cli

# A quicker embedded-backbone pretraining for the suite (subprocesses inherit it); the full
# recipe runs in `make demo` and `python -m models.pretrain`.
os.environ.setdefault("VLPETL_PRETRAIN_STEPS", "40")
# Likewise a short VL pretraining, for the search's default backbone (tiny-clip+tiny-t5-vlp).
os.environ.setdefault("VLPETL_VLP_STEPS", "20")

from models.backbones.presets import DEFAULT_BACKBONE


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory holding the generated benchmark, the embedded backbone and features."""
    return tmp_path_factory.mktemp("vlpetl-data")


@pytest.fixture(scope="session")
def env(data_dir: Path):
    from training.environment import prepare_environment

    return prepare_environment(data_dir, DEFAULT_BACKBONE, ("vqa",))


@dataclass(frozen=True)
class SharedRun:
    """A real 2-trial study, its best configuration within 5% exported and trained (`shared_run`).

    Attributes:
        url: the study's SQLite URL; tests that write to a study copy its file first.
        study: the study's name.
        tasks: the tasks it trained together.
        launch: the `search.launch` process that ran the study (its printed front).
        recipe: the exported recipe file of the best trial within 5%.
        run_dir: the run folder `search.train` trained from that recipe.
    """

    url: str
    study: str
    tasks: tuple[str, ...]
    launch: subprocess.CompletedProcess
    recipe: Path
    run_dir: Path


SHARED_STUDY = "runs-e2e"
SHARED_TASKS = ("vqa", "nlvr2")


def shared_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder every test process of this run sees: under pytest-xdist each worker has its own
    base folder, `popen-gwN`, inside the run's; alone, the run's own."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def shared_run(data_dir: Path, env, tmp_path_factory: pytest.TempPathFactory) -> SharedRun:
    """One 2-trial study on VQA and NLVR2 (the reference, then the first warm start), exported
    and trained, once per run: the search end-to-end tests and the inference tests only read
    it, and each used to run its own (about a minute of the suite apiece). The first test
    process that needs it builds it under a file lock and the others read it (each xdist worker
    used to build its own). It is built on that first process's data folder, and the others
    use it with theirs: the embedded backbone builds byte-identical everywhere (#21), so their
    backbone digests are the run's."""
    work = shared_folder(tmp_path_factory) / "runs-e2e"
    url = f"sqlite:///{work / 'study.db'}"
    recipe = work / "best.yaml"
    built = work / "launch.json"  # written last: its presence says every step succeeded
    with FileLock(f"{work}.lock"):
        if not built.is_file():
            if work.exists():  # a process that failed half-way through the build
                shutil.rmtree(work)
            work.mkdir()
            data = ("--data-dir", str(data_dir))
            tasks = ",".join(SHARED_TASKS)
            launch = cli(
                "search.launch",
                "--workers",
                "1",
                *f"--budget 5% --trials 2 --steps 30 --tasks {tasks}".split(),
                "--study",
                SHARED_STUDY,
                "--storage",
                url,
                *data,
            )
            cli("search.export", "--study", SHARED_STUDY, "--storage", url, "--budget", "5%", "--out", str(recipe))
            cli("search.train", "--recipe", str(recipe), "--out", str(work / "run"), *data)
            built.write_text(
                json.dumps({"args": launch.args, "returncode": launch.returncode, "stdout": launch.stdout, "stderr": launch.stderr})
            )
        launch = subprocess.CompletedProcess(**json.loads(built.read_text()))
    return SharedRun(url, SHARED_STUDY, SHARED_TASKS, launch, recipe, work / "run")
