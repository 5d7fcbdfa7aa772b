"""Search-space files: the default space, validation of user files, warm starts, every sampler."""

from __future__ import annotations

import dataclasses

import optuna
import pytest
import yaml
from run_commands import in_process

from core.budget import parse_budget
from core.counts import ParameterCount
from models.config import TrainingConfig
from models.petl import method_names
import search.launch
from search.launch import SAMPLERS, make_sampler
from search.space import SpaceDefaults, config_from_trial, fixed_config
import search.space_file
from search.space_file import SpaceError, load_space, parse_space
from search.study_runner import fitting_freeze_choices
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
    result = in_process(search.launch.main, "--workers", "1", "--budget", "5%", "--data-dir", str(tmp_path / "data"), "--space", str(space))
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


FREEZE_FLAGS = {"train_layernorm", "train_bias", "train_vl_projection", "train_embeddings"}


def _measure(config) -> ParameterCount:
    """Counts of a backbone without biases (as T5) whose word embedding alone is 6% of the model."""
    freeze = config.freeze
    return ParameterCount(300 + 20 * freeze.train_layernorm + 100 * freeze.train_vl_projection + 600 * freeze.train_embeddings, 10_000)


def _freeze_params(space, method: str) -> set[str]:
    return {name.removeprefix("freeze.") for name in space.methods[method].params if name.startswith("freeze.")}


def test_the_default_space_searches_freezing_and_clip_only_when_clip_is_counted(capsys):
    paper, counted = load_space(), load_space(search_clip=True)
    for method in ("adapter", "hyperformer", "compacter", "lora", "prompt"):
        assert _freeze_params(paper, method) == FREEZE_FLAGS
        assert _freeze_params(counted, method) == FREEZE_FLAGS | {"visual_encoder"}
        assert counted.methods[method].params["freeze.visual_encoder"].values == ("frozen", "last_block")
    for baseline in ("vl_ln", "vl_only", "full_ft"):  # their freezing is what they are
        assert _freeze_params(paper, baseline) == set()
        assert _freeze_params(counted, baseline) == {"visual_encoder"}
    from search.params import main as params_main

    assert params_main(["--space"]) == 0
    printed = capsys.readouterr().out
    assert "freeze.train_layernorm: [true, false]" in printed and "visual_encoder" not in printed
    assert params_main(["--space", "--count-clip"]) == 0
    assert "freeze.visual_encoder: [frozen, last_block]" in capsys.readouterr().out


def test_warm_starts_and_the_reference_keep_the_papers_freezing():
    from models.petl.presets import RUN_PRESETS
    from search.space import reference_config

    space = defaults()
    for name, params in warm_start_params(space.space):
        assert fixed_config(params, space).freeze == RUN_PRESETS[name].freeze, name
    assert reference_config(space).freeze == RUN_PRESETS["full-ft"].freeze


def test_a_default_study_samples_freezing_choices_in_its_first_24_trials():
    """The launch's queue (reference, then the paper's configurations) and the TPE sampler's own
    draws, asked as a study asks them, without training: at least two freezing choices that are
    not a method's default are drawn among the first 24 trials, and at least one of the methods
    that came after VL-Adapter (DoRA, VL-PET, LST)."""
    from models.petl import get_method
    from search.objective import REFERENCE_ATTR

    # As study_defaults narrows it under 5% on a T5 backbone: no biases, no word embedding.
    space = fitting_freeze_choices(defaults(), _measure, parse_budget("5%"))
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=make_sampler("tpe", 0))
    study.enqueue_trial({}, user_attrs={REFERENCE_ATTR: True})
    for _, params in warm_start_params(space.space):
        study.enqueue_trial(params)
    drawn, methods = set(), set()
    for _ in range(24):
        trial = study.ask()
        if not trial.user_attrs.get(REFERENCE_ATTR):
            config = config_from_trial(trial, space)
            methods.add(config.method)
            if config.freeze != get_method(config.method).freeze:
                drawn.add((config.method, config.freeze))
        study.tell(trial, [50.0, 1.0])
    assert len({freeze for _, freeze in drawn}) >= 2, drawn
    assert methods & {"dora", "vl_pet", "lst"}, methods


def test_choices_that_train_nothing_more_or_cannot_fit_are_not_searched():
    narrowed = fitting_freeze_choices(defaults(), _measure, parse_budget("5%")).space.methods["adapter"].params
    assert narrowed["freeze.train_layernorm"].values == (True, False)
    assert narrowed["freeze.train_vl_projection"].values == (True, False)
    assert narrowed["freeze.train_bias"].values == (False,)  # trains nothing more
    assert narrowed["freeze.train_embeddings"].values == (False,)  # over 5%
    wide = fitting_freeze_choices(defaults(), _measure, parse_budget("20%")).space.methods["adapter"].params
    assert wide["freeze.train_embeddings"].values == (False, True)


def test_a_space_that_trains_clip_on_cached_features_is_refused_line_by_line():
    from search.space_file import clip_trainable, study_problems

    space = load_space(search_clip=True)
    assert study_problems(space, "tiny-clip-vit", ("vqa",)) == []
    lines = study_problems(space, None, ("tvqa", "vqa"))
    # One line per method that searches CLIP's policy (LST's backbone never trains) and reason, all
    # at once: no CLIP tower (precomputed features), video tasks.
    searching = [name for name, method in space.methods.items() if "freeze.visual_encoder" in method.params]
    assert "lst" not in searching and "adapter" in searching
    assert len(lines) == 2 * len(searching)
    assert "methods.adapter.freeze.visual_encoder ['last_block']: this backbone reads precomputed (cached) features" in lines[0]
    assert "video tasks ['tvqa'] read cached per-frame features" in lines[1] and "[frozen]" in lines[1]
    assert study_problems(load_space(), None, ("tvqa",)) == []  # the paper's counting never trains CLIP
    # The default space of a --count-clip study searches CLIP only where it can train.
    assert clip_trainable("tiny-clip-vit", ("vqa", "gqa"))
    assert not clip_trainable("tiny-clip-vit", ("vqa", "tvqa")) and not clip_trainable(None, ("vqa",))


def test_launch_refuses_a_space_that_trains_clip_with_video_tasks_before_writing_anything(tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text(
        "methods:\n  adapter:\n    freeze: {visual_encoder: [frozen, last_block]}\n  lora:\n    freeze.visual_encoder: [trainable]\n"
    )
    result = in_process(
        search.launch.main, "--budget", "5%", "--tasks", "tvqa,vqa", "--data-dir", str(tmp_path / "data"), "--space", str(space)
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2, lines  # one per method, both at once
    assert "methods.adapter.freeze.visual_encoder ['last_block']: video tasks ['tvqa'] read cached per-frame features" in lines[0]
    assert "methods.lora.freeze.visual_encoder ['trainable']" in lines[1] and "[frozen]" in lines[1]
    assert not (tmp_path / "data").exists()


def test_the_trial_line_names_a_freezing_choice_that_is_not_the_methods_own():
    from models.config import FreezeConfig, TrialConfig
    from search.objective import _params_text

    lora = TrialConfig("tiny-clip+tiny-t5", ("vqa",), "lora", {"rank": 4}, freeze=FreezeConfig(train_layernorm=True, train_bias=True))
    assert _params_text(lora) == "rank=4 freeze.train_layernorm=True"  # LoRA's own freezing trains biases, not LayerNorms
    assert _params_text(dataclasses.replace(lora, freeze=FreezeConfig(train_layernorm=False, train_bias=True))) == "rank=4"
