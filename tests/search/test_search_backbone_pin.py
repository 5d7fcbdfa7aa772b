"""A study is pinned to its backbone (#21): workers and relaunches on other backbone files refuse
before writing anything; a worker with an empty data directory rebuilds the study's exact one.

One study is launched on the session's data directory; the other data directories hold copies of
its backbone folders (one changed byte, one truncated file), except the empty one, whose worker
rebuilds the embedded backbone (the only rebuild here, with the suite's reduced steps).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from sqlalchemy import create_engine, text

from models.backbones.presets import DEFAULT_SEARCH_BACKBONE, get_preset
from search.progress import trained
from search.study_settings import BACKBONE_ATTR, SETTINGS_ATTR
from storage import load_results, make_engine

STUDY = "pinned"
LM_WEIGHTS = Path(DEFAULT_SEARCH_BACKBONE) / "language_model" / "model.safetensors"


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=900)


def worker(url: str, data_dir: Path) -> subprocess.CompletedProcess:
    return cli("search.worker", "--study", STUDY, "--storage", url, "--data-dir", str(data_dir))


def launch(url: str, data_dir: Path, study: str = STUDY) -> subprocess.CompletedProcess:
    return cli(
        "search.launch", "--workers", "1", "--budget", "5%", "--trials", "1", "--steps", "4", "--rungs", "0", "--no-warm-start", "--no-reference", "--confirm-seeds", "1",
        "--tasks", "vqa", "--study", study, "--storage", url, "--data-dir", str(data_dir),
    )  # fmt: skip


def copy_backbones(data_dir: Path, to: Path) -> Path:
    """Another machine's data directory: copies of the search backbone's folder and its base's
    (what a reused backbone needs) and of the benchmark (copied: quicker than generated)."""
    for name in (DEFAULT_SEARCH_BACKBONE, get_preset(DEFAULT_SEARCH_BACKBONE).vl_pretrained_from):
        assert name is not None
        shutil.copytree(data_dir / "backbones" / name, to / "backbones" / name)
    shutil.copytree(data_dir / "benchmark", to / "benchmark")
    return to


def written(url: str) -> tuple[int, int, int]:
    """(trials, trained trials, results rows) of the study: what a refused worker must leave as they were.

    Trained as the study counts them (search.progress.trained): an infeasible trial is complete
    in Optuna's eyes but never trained.
    """
    trials = optuna.load_study(study_name=STUDY, storage=url).trials
    complete = sum(trained(trial) for trial in trials)
    return len(trials), complete, len(load_results(make_engine(url), STUDY))


@pytest.fixture(scope="module")
def study(data_dir, env, tmp_path_factory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('backbone-pin') / 'studies.db'}"
    result = launch(url, data_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    return url


def stored_pin(url: str) -> dict:
    return optuna.load_study(study_name=STUDY, storage=url).user_attrs[BACKBONE_ATTR]


def test_launch_pins_every_backbone_file_the_trials_read(study, data_dir):
    from models.features import file_digest

    pin = stored_pin(study)
    assert pin["backbone"] == DEFAULT_SEARCH_BACKBONE and pin["embedded"] is True
    files = pin["files"]
    for key in ("clip/open_clip_model.safetensors", "lm/model.safetensors", "lm/tokenizer.json", "lm/config.json"):
        assert key in files
    assert "vl_projection/vl_projection.safetensors" in files
    assert files["lm/model.safetensors"] == file_digest(data_dir / "backbones" / LM_WEIGHTS)


def test_a_worker_with_one_changed_weight_byte_refuses_and_writes_nothing(study, data_dir, tmp_path):
    other = copy_backbones(data_dir, tmp_path / "other")
    weights = other / "backbones" / LM_WEIGHTS
    content = bytearray(weights.read_bytes())
    content[len(content) // 2] ^= 0x01  # inside a tensor: it would still load, as another model
    weights.write_bytes(bytes(content))
    before = written(study)
    refused = worker(study, other)
    assert refused.returncode == 2, refused.stderr[-3000:]
    assert f"{weights} differs from what the build wrote" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert written(study) == before
    assert not (other / "features").exists()


def test_a_worker_or_relaunch_whose_backbone_differs_from_the_studys_names_the_file_and_the_revision(study, data_dir):
    # The study as if launched on a backbone built by other code: this machine's files differ.
    optuna_study = optuna.load_study(study_name=STUDY, storage=study)
    pin = stored_pin(study)
    other = {**pin, "revision": "0123abc", "files": {**pin["files"], "lm/model.safetensors": "0" * 64}}
    optuna_study.set_user_attr(BACKBONE_ATTR, other)
    before = written(study)
    try:
        for refused in (worker(study, data_dir), launch(study, data_dir)):
            assert refused.returncode == 2, refused.stderr[-3000:]
            assert f"lm/model.safetensors ({data_dir / 'backbones' / LM_WEIGHTS}) differs from the study's" in refused.stderr
            assert "1 file(s) differ in all" in refused.stderr
            assert "built by this project's code at revision 0123abc (this checkout is at" in refused.stderr
            assert f"delete {data_dir / 'backbones'}" in refused.stderr
            assert "Traceback" not in refused.stderr
        assert written(study) == before
    finally:
        optuna_study.set_user_attr(BACKBONE_ATTR, pin)


def test_a_study_from_before_the_pin_is_pinned_by_its_first_worker(study, data_dir):
    pin = stored_pin(study)
    engine = create_engine(study)
    with engine.begin() as connection:  # a study launched before backbones were pinned
        connection.execute(text("DELETE FROM study_user_attributes WHERE key = :key"), {"key": BACKBONE_ATTR})
    engine.dispose()
    assert BACKBONE_ATTR not in optuna.load_study(study_name=STUDY, storage=study).user_attrs
    joined = worker(study, data_dir)
    assert joined.returncode == 0, joined.stderr[-3000:]
    assert f"study {STUDY!r} had no backbone digests: pinned it to the {len(pin['files'])} backbone files read here" in joined.stderr
    assert stored_pin(study)["files"] == pin["files"]


def test_a_truncated_weight_file_is_named_before_a_new_study_is_launched(data_dir, env, tmp_path):
    other = copy_backbones(data_dir, tmp_path / "other")
    projection = other / "backbones" / DEFAULT_SEARCH_BACKBONE / "vl_projection.safetensors"
    projection.write_bytes(projection.read_bytes()[:1000])
    url = f"sqlite:///{tmp_path / 'new.db'}"
    refused = launch(url, other, study="new")
    assert refused.returncode == 2, refused.stderr[-3000:]
    assert f"{projection} differs from what the build wrote (changed or truncated since)" in refused.stderr
    assert f"Delete {projection.parent} and run again to rebuild it" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not (other / "features").exists()


def test_a_worker_with_an_empty_data_directory_rebuilds_the_studys_backbone_and_trains(study, tmp_path):
    from models.backbone_pin import backbone_digests
    from models.location import BackboneLocation

    optuna_study = optuna.load_study(study_name=STUDY, storage=study)
    settings = optuna_study.user_attrs[SETTINGS_ATTR]
    optuna_study.set_user_attr(SETTINGS_ATTR, {**settings, "target_trials": settings["target_trials"] + 1})  # one more to train
    trials, complete, rows = written(study)
    empty = tmp_path / "empty"
    joined = worker(study, empty)
    assert joined.returncode == 0, joined.stderr[-3000:]
    assert f"trained 1 trials of study {STUDY!r}" in joined.stdout
    after = written(study)  # the sampler may propose over-budget (infeasible) trials on the way: rows of their own
    assert after[1] == complete + 1 and after[0] - trials == after[2] - rows >= 1
    assert backbone_digests(BackboneLocation.resolve(DEFAULT_SEARCH_BACKBONE, empty)) == stored_pin(study)["files"]


def test_training_a_recipe_on_a_changed_backbone_is_refused_in_one_line(shared_run, data_dir, tmp_path):
    other = copy_backbones(data_dir, tmp_path / "other")
    projection = other / "backbones" / DEFAULT_SEARCH_BACKBONE / "vl_projection.safetensors"
    projection.write_bytes(projection.read_bytes()[:1000])
    out = tmp_path / "run"
    refused = cli("search.train", "--recipe", str(shared_run.recipe), "--out", str(out), "--data-dir", str(other))
    assert refused.returncode == 2, refused.stderr[-3000:]
    assert f"search.train: error: backbone of '{shared_run.recipe}': " in refused.stderr
    assert f"{projection} differs from what the build wrote" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not out.exists() or not any(out.iterdir()), "nothing trained, nothing written"
