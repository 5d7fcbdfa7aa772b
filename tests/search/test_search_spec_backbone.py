"""A 2-trial search on a backbone named by its parts (#22): a user's RN50 checkpoint and a tiny
T5 v1.1 folder, through `python -m search.launch --backbone clip=RN50:FILE,lm=DIR`; the study
stores the spec's canonical text and the digests of its files, and each trial's recipe names it.

RN50 is open_clip's cheapest tower with a grid (no architecture takes images under 224 px): on
the generated benchmark's 1,500 vqa images its feature extraction alone took most of 12 minutes
on 2 busy CPU cores, so the search reads a user's small JSONL task instead (32 questions on 16
images for training, cut from a small generated benchmark), resized to 224 px by CLIP's transform.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna
from user_backbones import save_clip, save_t5_v1_1
from user_data_layouts import small_benchmark

from search.study_settings import BACKBONE_ATTR
from tasks.export_jsonl import export_jsonl
from storage import load_results, make_engine


def test_a_two_trial_search_runs_on_a_spec_backbone(tmp_path: Path) -> None:
    weights = tmp_path / "weights"
    save_clip("RN50", weights / "rn50.safetensors")
    save_t5_v1_1(weights / "t5-v1_1-tiny", d_model=64, layers=2)
    bench = small_benchmark(tmp_path / "bench", train=16)
    export_jsonl(bench, "vqa", weights / "data" / "shapes_qa")
    data_dir, url = tmp_path / "data", f"sqlite:///{tmp_path / 'studies.db'}"
    # As a user types it: relative paths, from the folder that holds the weights and the data.
    spec = "clip=RN50:rn50.safetensors,lm=t5-v1_1-tiny"
    argv = ["--workers", "1", "--budget", "50%", "--backbone", spec, "--trials", "2", "--steps", "2", "--rungs", "0", "--no-warm-start"]
    argv += [
        "--confirm-seeds",
        "1",
        "--data",
        "data/shapes_qa/train.jsonl",
        "--study",
        "spec",
        "--storage",
        url,
        "--data-dir",
        str(data_dir),
    ]
    result = subprocess.run([sys.executable, "-m", "search.launch", *argv], capture_output=True, text=True, timeout=1200, cwd=weights)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Pareto front" in result.stdout

    canonical = f"clip=RN50:{weights / 'rn50.safetensors'},lm={weights / 't5-v1_1-tiny'}"
    study = optuna.load_study(study_name="spec", storage=url)
    completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(completed) == 2
    pin = study.user_attrs[BACKBONE_ATTR]
    assert pin["backbone"] == canonical and not pin["embedded"]
    assert {"clip/rn50.safetensors", "lm/model.safetensors", "lm/tokenizer.json"} <= set(pin["files"])
    rows = load_results(make_engine(url), "spec")
    assert len(rows) == 2
    assert all(config["backbone"] == canonical for config in rows["config"])
