"""search.train killed mid-run and resumed ends with the uninterrupted run's weights; its production
flags (keep-best) and their bad values (one line, exit 2, nothing written)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from run_commands import in_process
from safetensors.torch import load_file

import search.train

from models.backbones.presets import DEFAULT_BACKBONE
from models.config import TrainingConfig, TrialConfig
from models.petl import get_method
from models.weights import WEIGHTS_FILE
from training.checkpoints import CheckpointError, read_state, write_checkpoint

STEPS = 40


def _recipe(folder: Path, steps: int = STEPS) -> Path:
    config = TrialConfig(
        backbone=DEFAULT_BACKBONE,
        tasks=("vqa",),
        method="adapter",
        freeze=get_method("adapter").freeze,
        training=TrainingConfig(steps=steps, batch_size=4),
    )
    path = folder / f"recipe-{steps}.yaml"
    path.write_text(yaml.safe_dump({"config": config.to_dict()}))
    return path


def _command(recipe: Path, data_dir: Path, out: Path, *flags: str) -> list[str]:
    return [sys.executable, "-m", "search.train", "--recipe", str(recipe), "--data-dir", str(data_dir), "--out", str(out), *flags]


def _run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def _weights(out: Path) -> dict[str, torch.Tensor]:
    return load_file(str(out / WEIGHTS_FILE))


def _checkpoint_step(path: Path) -> int:
    try:
        return read_state(path)["step"]
    except CheckpointError:  # not written yet
        return 0


def test_a_killed_run_resumes_to_the_uninterrupted_weights(data_dir, env, tmp_path):
    recipe = _recipe(tmp_path)
    whole = tmp_path / "whole"
    done = _run(*_command(recipe, data_dir, whole))
    assert done.returncode == 0, done.stderr

    out = tmp_path / "killed"
    latest = out / "checkpoints" / "latest.safetensors"
    with open(tmp_path / "killed.log", "w") as log:
        process = subprocess.Popen(_command(recipe, data_dir, out, "--checkpoint-every", "5"), stdout=log, stderr=log)
        deadline = time.monotonic() + 240
        try:
            while process.poll() is None and _checkpoint_step(latest) < 10 and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            process.kill()  # SIGKILL: no cleanup, no last write
            process.wait()
    step = _checkpoint_step(latest)
    assert process.returncode == -9 and 10 <= step < STEPS, (
        f"killed at checkpoint step {step}: {(tmp_path / 'killed.log').read_text()[-2000:]}"
    )
    assert not (out / WEIGHTS_FILE).exists()

    resumed = _run(*_command(recipe, data_dir, out, "--checkpoint-every", "5", "--resume"))
    assert resumed.returncode == 0, resumed.stderr
    expected, got = _weights(whole), _weights(out)
    assert got.keys() == expected.keys()
    assert all(torch.equal(got[name], expected[name]) for name in expected), "the resumed run must end bit-exactly where the whole run did"
    assert yaml.safe_load((out / "metrics.json").read_text())["losses"] == yaml.safe_load((whole / "metrics.json").read_text())["losses"]
    assert read_state(latest)["step"] == STEPS


def test_keep_best_ends_with_the_best_evaluations_weights(data_dir, env, tmp_path):
    out = tmp_path / "best"
    done = _run(*_command(_recipe(tmp_path, steps=6), data_dir, out, "--eval-every", "2", "--keep-best", "--lr-schedule", "cosine"))
    assert done.returncode == 0, done.stderr
    best = out / "checkpoints" / "best.safetensors"
    state = read_state(best)
    saved = {name.removeprefix("weights/"): t for name, t in load_file(str(best)).items()}
    final = _weights(out)
    assert final.keys() == saved.keys() and all(torch.equal(final[name], saved[name]) for name in final)
    assert state["step"] in (2, 4, 6) and state["score"] == sum(state["scores"].values()) / len(state["scores"])
    assert yaml.safe_load((out / "recipe.json").read_text())["config"]["training"]["lr_schedule"] == "cosine"


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["--checkpoint-every", "0"], "--checkpoint-every must be >= 1"),
        (["--grad-accumulation", "0"], "--grad-accumulation must be >= 1"),
        (["--lr-schedule", "step"], "--lr-schedule must be one of linear, cosine, constant, got 'step'"),
        (["--keep-best"], "--keep-best needs scheduled evaluations"),
        (["--resume"], "no checkpoint to continue from"),
    ],
)
def test_bad_production_flags_exit_with_one_line_and_write_nothing(data_dir, tmp_path, flags, needle):
    out = tmp_path / "out"
    result = in_process(
        search.train.main, *_command(_recipe(tmp_path), data_dir, out, *flags)[3:]
    )  # the arguments after `python -m search.train`
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], result.stderr
    assert not out.exists()


def test_a_resume_of_another_recipe_and_a_fresh_run_over_checkpoints_are_refused(data_dir, tmp_path):
    out = tmp_path / "out"
    other = TrialConfig.from_dict(yaml.safe_load(_recipe(tmp_path, steps=7).read_text())["config"])
    write_checkpoint(out / "checkpoints" / "latest.safetensors", {"weights/x": torch.zeros(1)}, {"config": other.to_dict(), "step": 5})
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    for flags, needle in ((["--resume"], "training.steps: checkpoint 7, now 40"), ([], "pass --resume to continue it")):
        result = _run(*_command(_recipe(tmp_path), data_dir, out, *flags))
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and needle in lines[0], result.stderr
        assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
