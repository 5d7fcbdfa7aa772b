"""From an Optuna trial to a `TrialConfig`, through a search space (search/space_file.py).

The space says what is searched; this module adds what every trial of a study shares (the
backbone, the tasks, the training recipe) and each method's base learning rate.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

import optuna

from models.backbones.presets import get_preset
from models.config import SharingMode, TrainingConfig, TrialConfig
from models.petl import get_method
from search.space_file import SearchSpace, load_space


@dataclass(frozen=True)
class SpaceDefaults:
    """What every trial of a study shares, and the space it searches."""

    backbone: str
    tasks: tuple[str, ...]
    training: TrainingConfig
    space: SearchSpace = field(default_factory=load_space)


def base_learning_rate(method: str, backbone: str) -> float:
    """The method's learning rate before any searched scale: the paper's (PAPER.md §4, tuned for
    20 epochs at base size), or on the embedded tiny backbone the method's tiny rate (a few
    hundred CPU steps on a tiny model need more)."""
    spec = get_method(method)
    if get_preset(backbone).embedded and spec.tiny_learning_rate is not None:
        return spec.tiny_learning_rate
    return spec.learning_rate


def config_from_trial(trial: optuna.trial.BaseTrial, defaults: SpaceDefaults) -> TrialConfig:
    """Sample one configuration: method first, then that method's own parameters."""
    return config_from_point(defaults.space.sample(trial), defaults)


def config_from_point(point: Mapping[str, Any], defaults: SpaceDefaults) -> TrialConfig:
    """The `TrialConfig` of a sampled point (see `SearchSpace.sample`)."""
    method = point["method"]
    spec = get_method(method)
    learning_rate = point.get("learning_rate") or base_learning_rate(method, defaults.backbone) * point.get("learning_rate_scale", 1.0)
    training = dataclasses.replace(
        defaults.training,
        learning_rate=float(learning_rate),
        optimizer=point.get("optimizer", "adamw"),
        sam_rho=float(point.get("sam_rho", defaults.training.sam_rho)),
    )
    return TrialConfig(
        backbone=defaults.backbone,
        tasks=defaults.tasks,
        method=method,
        method_params=dict(point.get("params", {})),
        sharing=SharingMode(point.get("sharing", SharingMode.SINGLE.value)),
        freeze=dataclasses.replace(spec.freeze, **point.get("freeze", {})),
        training=training,
    )


def reference_config(defaults: SpaceDefaults) -> TrialConfig:
    """Full fine-tuning: the point of reference every study trains once, outside the budget."""
    return config_from_point({"method": "full_ft"}, defaults)


def fixed_config(params: Mapping[str, Any], defaults: SpaceDefaults) -> TrialConfig:
    """The configuration that a complete set of fixed Optuna params stands for."""
    return config_from_trial(optuna.trial.FixedTrial(dict(params)), defaults)
