"""The search space: an Optuna trial -> a `TrialConfig`.

Parameter names are prefixed by their method (`adapter.reduction_factor`) so that
conditional parameters never collide; each method samples its own parameters through its
registry entry's `suggest()`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import optuna

from models.config import SharingMode, TrainingConfig, TrialConfig
from models.backbones.presets import get_preset
from models.petl import get_method

# Full fine-tuning is the study's reference trial, searched only when the budget allows it.
SEARCHED_METHODS = ("adapter", "vl_ln", "vl_only")

# Learning rates for the embedded tiny backbone, per method. The paper's (PAPER.md §4) are
# tuned for 20 epochs on base-size models; a few hundred CPU steps on a tiny model need more.
TINY_LEARNING_RATES = {"full_ft": 1e-3, "adapter": 5e-3, "vl_only": 5e-3, "vl_ln": 5e-3}


@dataclass(frozen=True)
class SpaceDefaults:
    """What every trial of a study shares."""

    backbone: str
    tasks: tuple[str, ...]
    training: TrainingConfig
    methods: tuple[str, ...] = SEARCHED_METHODS


def config_from_trial(trial: optuna.trial.BaseTrial, defaults: SpaceDefaults) -> TrialConfig:
    """Sample one configuration: method first, then that method's own parameters."""
    method = trial.suggest_categorical("method", list(defaults.methods))
    return method_config(method, get_method(method).suggest(trial), defaults)


def reference_config(defaults: SpaceDefaults) -> TrialConfig:
    """Full fine-tuning: the point of reference every study trains once, outside the budget."""
    return method_config("full_ft", {}, defaults)


def method_config(method: str, params: dict, defaults: SpaceDefaults) -> TrialConfig:
    spec = get_method(method)
    embedded = get_preset(defaults.backbone).embedded
    learning_rate = TINY_LEARNING_RATES.get(method, spec.learning_rate) if embedded else spec.learning_rate
    return TrialConfig(
        backbone=defaults.backbone,
        tasks=defaults.tasks,
        method=method,
        method_params=params,
        sharing=SharingMode.SINGLE,
        freeze=spec.freeze,
        training=dataclasses.replace(defaults.training, learning_rate=learning_rate),
    )


WARM_START_PARAMS = (
    {"method": "adapter", "adapter.reduction_factor": 8},  # the paper's single adapter
    {"method": "adapter", "adapter.reduction_factor": 32},  # a smaller one for tight budgets
)


def fixed_config(params: dict, defaults: SpaceDefaults) -> TrialConfig:
    """The configuration that a set of fixed Optuna params stands for."""
    return config_from_trial(optuna.trial.FixedTrial(params), defaults)

