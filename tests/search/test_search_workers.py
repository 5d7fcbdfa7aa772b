"""Several workers on one study: local processes through --workers, and search.worker joining."""

from __future__ import annotations

import subprocess
import sys

import optuna

from search.study_settings import SETTINGS_ATTR, StudySettings
from storage import load_results, make_engine


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=1200)


def test_two_local_workers_share_one_study_without_duplicates(data_dir, env):
    url = f"sqlite:///{data_dir / 'workers.db'}"
    result = run(
        "search.launch",
        "--confirm-seeds",
        "1",
        "--budget",
        "5%",
        "--trials",
        "3",
        "--steps",
        "8",
        "--workers",
        "2",
        "--tasks",
        "vqa",
        "--study",
        "two-workers",
        "--storage",
        url,
        "--data-dir",
        str(data_dir),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "started local worker 1" in result.stderr
    study = optuna.load_study(study_name="two-workers", storage=url)
    settings = StudySettings.from_attr(study.user_attrs[SETTINGS_ATTR])
    assert settings.tasks == ("vqa",) and settings.target_trials == 3 and "methods:" in settings.space_yaml
    complete = [t.number for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) >= 3
    rows = load_results(make_engine(url), "two-workers")
    done = rows[rows["status"].isin(["complete", "infeasible"])]
    assert sorted(done["trial_number"]) == sorted(complete), "every finished trial recorded once in both tables"
    assert not rows["trial_number"].duplicated().any()
    assert (rows["status"] == "complete").sum() == 3, "a running trial counts towards the goal: no worker starts a fourth"

    # A worker started later finds the goal reached and trains nothing.
    joined = run("search.worker", "--study", "two-workers", "--storage", url, "--data-dir", str(data_dir))
    assert joined.returncode == 0, joined.stderr[-3000:]
    assert "trained 0 trials of study 'two-workers'" in joined.stdout


def test_without_workers_the_launch_runs_one_per_core_and_says_so(data_dir, env):
    """The default `--workers auto` on this machine: as many local workers as training.worker_count
    allows (one per core on a CPU, within memory), named in the log and the summary; the study
    still trains exactly its goal, and the confirmation seeds are trained by them together."""
    from models.location import BackboneLocation
    from search.launch import _worker_count

    expected = _worker_count(None, (), BackboneLocation.resolve("tiny-clip+tiny-t5-vlp", data_dir))
    url = f"sqlite:///{data_dir / 'auto-workers.db'}"
    result = run(
        "search.launch", "--budget", "5%", "--trials", "2", "--steps", "6", "--rungs", "0", "--tasks", "vqa",
        "--device", "cpu", "--study", "auto-workers", "--storage", url, "--data-dir", str(data_dir),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"{expected.describe()}; training on" in result.stderr
    assert f"Trained by: {expected.describe()}" in result.stdout
    assert expected.reason.startswith("auto: ")
    started = result.stderr.count("started local worker")
    # N - 1 workers for the search, then up to N - 1 again for the 2 confirmation seeds
    assert started == (expected.count - 1) + min(expected.count, 2) - 1, result.stderr[-3000:]
    for said_once in ("benchmark: ", "freezing choices not searched"):  # by the launcher, not again by each worker
        assert result.stderr.count(said_once) == 1, result.stderr[-3000:]
    rows = load_results(make_engine(url), "auto-workers")
    searched = rows[(rows["status"] == "complete") & rows["replicate_of"].isna()]
    assert len(searched) == 2, "the goal, not one trial more per extra worker"
    assert (rows["replicate_of"].notna() & (rows["status"] == "complete")).sum() == 2


def test_worker_on_a_missing_study_fails_clearly(tmp_path):
    url = f"sqlite:///{tmp_path / 'none.db'}"
    result = run("search.worker", "--study", "nope", "--storage", url, "--data-dir", str(tmp_path / "data"))
    assert result.returncode == 2
    assert "'nope' does not exist" in result.stderr and "search.launch" in result.stderr
    assert not (tmp_path / "data").exists()


def test_local_workers_get_the_storage_url_from_the_environment_not_the_command_line(tmp_path):
    # Every user of the machine can read a process's command line (ps); a PostgreSQL URL holds a password.
    import torch

    from search.launch import _start_workers
    from training.devices import WorkerDevice

    url = "postgresql+psycopg://vlpetl:s3cret-pw@127.0.0.1:1/none"
    (worker,) = _start_workers([WorkerDevice(torch.device("cpu"))], "private", url, tmp_path / "data")
    assert worker.wait(timeout=120) == 2
    assert "s3cret-pw" not in " ".join(map(str, worker.args))
    assert worker.args[-2:] == ["--device", "cpu"], "each local worker is told its device"


def test_a_worker_without_storage_names_both_ways_to_give_it(tmp_path, monkeypatch):
    monkeypatch.delenv("VLPETL_STORAGE", raising=False)
    result = run("search.worker", "--study", "s", "--data-dir", str(tmp_path / "data"))
    assert result.returncode == 2
    assert "no storage given: pass --storage URL or set $VLPETL_STORAGE" in result.stderr
