"""Search-space files: the default space, validation of user files, warm starts, every sampler."""

from __future__ import annotations

import subprocess
import sys

import optuna
import pytest
import yaml

from models.config import TrainingConfig
from models.petl import method_names
from search.launch import SAMPLERS, make_sampler
from search.space import SpaceDefaults, config_from_trial, fixed_config
import search.space_file
from search.space_file import SpaceError, load_space, parse_space
from search.warm_start import warm_start_params


def defaults(space=None) -> SpaceDefaults:
    return SpaceDefaults("tiny-clip+tiny-t5", ("vqa", "gqa"), TrainingConfig(), space or load_space())


def test_default_space_covers_every_method_sharing_mode_and_sam():
    space = load_space()
    assert set(space.methods) == set(method_names())
    sharing = {v for m in space.methods.values() for v in getattr(m.params.get("sharing"), "values", ())}
    assert sharing == {"single", "multiple", "half-shared"}
    assert set(space.optimizer.values) == {"adamw", "sam"}


def test_conditional_parameters_are_asked_only_for_the_chosen_method():
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(40):
        trial = study.ask()
        config = config_from_trial(trial, defaults())
        method = trial.params["method"]
        assert config.method == method
        assert all(name.split(".")[0] in (method, "method", "optimizer", "sam_rho") for name in trial.params)
        assert ("sam_rho" in trial.params) == (trial.params.get("optimizer") == "sam")
        study.tell(trial, [0.0, 1.0])


def test_every_problem_of_a_bad_space_file_is_reported_at_once(tmp_path):
    bad = {
        "methods": {
            "adapterz": {},
            "adapter": {"reduction_factor": [], "width": [3], "learning_rate": [1e-3], "learning_rate_scale": [1.0]},
            "prompt": {"sharing": ["half-shared"], "length": {"low": 40, "high": 10}},
            "compacter": {"k": [0], "freeze": {"visual_encoder": ["melted"]}},
        },
        "optimizer": ["adamw"],
        "sam_rho": {"low": 0.01, "high": 0.1},
        "colour": "blue",
    }
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(SpaceError) as caught:
        load_space(path)
    message = str(caught.value)
    for needle in (
        "colour",
        "adapterz",
        "reduction_factor: empty list",
        "width",
        "contradict",
        "has no sharing mode ['half-shared']",
        "inverted range low=40 > high=10",
        "compacter.k: value 0",
        "melted",
        "optimizer never picks sam",
    ):
        assert needle in message, needle
    assert len(caught.value.problems) >= 10


def test_launch_rejects_a_bad_space_file_before_writing_anything(tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text("methods:\n  lora:\n    rank: {low: 64, high: 8}\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "search.launch",
            "--workers",
            "1",
            "--budget",
            "5%",
            "--data-dir",
            str(tmp_path / "data"),
            "--space",
            str(space),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    assert str(space) in result.stderr and "inverted range" in result.stderr and "swap" in result.stderr
    assert not (tmp_path / "data").exists()


def test_warm_starts_are_the_papers_configurations_the_space_can_reach():
    names = dict(warm_start_params(load_space()))
    assert {
        "single-adapter",
        "multiple-adapters",
        "half-shared-adapters",
        "hyperformer",
        "single-compacter",
        "single-lora",
        "multiple-lora",
        "single-prompt",
        "vl-ln",
        "vl-only",
    } == set(names)
    config = fixed_config(names["half-shared-adapters"], defaults())
    assert (config.method, config.sharing.value, config.method_params["reduction_factor"]) == ("adapter", "half-shared", 8)
    narrower = parse_space({"methods": {"lora": {"rank": [4, 8]}, "adapter": {}}})
    assert {name for name, _ in warm_start_params(narrower)} == {"single-adapter", "multiple-adapters", "half-shared-adapters"}


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_every_sampler_drives_the_conditional_space_with_constraints(sampler):
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=make_sampler(sampler, 0))
    space = defaults()

    def objective(trial):
        config = config_from_trial(trial, space)
        size = config.method_params.get("reduction_factor", 8)
        trial.set_constraint("budget", float(config.method == "full_ft"))
        return 50.0 - size / 10 + (config.method == "adapter"), 10.0 / size

    study.optimize(objective, n_trials=14)
    assert len([t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]) == 14


def test_the_space_format_is_documented_and_the_default_space_prints_as_a_template(tmp_path, capsys):
    text = search.space_file.__doc__
    for needle in ("sharing", "freeze.<flag>", "learning_rate_scale", "sam_rho", "log: true"):
        assert needle in text
    from search.params import main as params_main

    assert params_main(["--space"]) == 0
    template = tmp_path / "space.yaml"
    template.write_text(capsys.readouterr().out)
    default, printed = load_space(), load_space(template)
    assert (printed.methods, printed.optimizer, printed.sam_rho) == (default.methods, default.optimizer, default.sam_rho)
