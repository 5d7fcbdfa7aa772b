"""Same seed and configuration, same result: a stored row alone reruns its trial exactly.

A real trial of a real study (the objective, one worker, this machine) is recorded; the rerun
uses nothing but the row: its config rebuilds the trial, its environment names the code,
packages, device and input files it ran with.
"""

from __future__ import annotations

from pathlib import Path

import optuna
import torch
import yaml

from models.config import TrainingConfig, TrialConfig
from models.features import file_digest
from core.budget import parse_budget
from search.objective import Objective
from search.space import SpaceDefaults
from search.space_file import parse_space
from search.study_runner import run_until_target
from core.software import PACKAGES
from storage import default_storage_url, init_schema, load_results, make_engine
from training.trial import run_trial

SPACE = parse_space(
    yaml.safe_load("methods:\n  lora:\n    rank: [4]\n    learning_rate_scale: {low: 0.5, high: 2.0}\noptimizer: [adamw]\n"), "test"
)


def test_a_stored_row_reruns_to_the_same_result(env, tmp_path: Path) -> None:
    url = default_storage_url(tmp_path)
    engine = make_engine(url)
    init_schema(engine)
    training = TrainingConfig(steps=3, seed=7)
    defaults = SpaceDefaults(backbone=env.location.preset.name, tasks=("vqa",), training=training, space=SPACE)
    study = optuna.create_study(study_name="again", storage=url, directions=["maximize", "minimize"])
    run_until_target(study, Objective(env, defaults, parse_budget("5%"), engine, "again"), target=1, time_limit=None)
    row = load_results(engine, "again").iloc[0]
    engine.dispose()
    assert row["status"] == "complete"

    config = TrialConfig.from_dict(row["config"])  # the row alone: no Optuna, no search space
    assert config.training.seed == 7 and config.training.steps == 3 and config.method == "lora"
    rerun = run_trial(config, env, show_progress=False)
    assert rerun.score == row["score"] and rerun.task_scores == row["task_scores"]
    assert [round(v, 6) for v in row["learning_curve"]["loss"].values()] == [round(v, 6) for v in rerun.losses]

    environment = row["environment"]
    assert set(PACKAGES) <= set(environment["packages"]) and environment["packages"]["torch"]
    assert {"python", "platform", "device", "torch_threads", "cpu_kernels", "git_revision"} <= set(environment)
    assert environment["cpu_kernels"] == torch.backends.cpu.get_cpu_capability()  # "AVX512", "AVX2", ...
    inputs = environment["inputs"]
    assert inputs["backbone"] == env.location.preset.name
    assert inputs["clip_weights_sha256"] == file_digest(env.location.clip_checkpoint)
    assert inputs["language_model_weights_sha256"] == file_digest(Path(env.location.language_model) / "model.safetensors")
    assert inputs["benchmark"].startswith("mini-vl-") and len(inputs["benchmark_manifest_sha256"]) == 64
