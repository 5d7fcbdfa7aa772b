"""Cross-field checks of a trial against its backbone, all collected before anything is built.

Checks that need the language model's weights' shapes (a method's `lm_problems`, e.g.
PiSSA's rank) run once the LM is loaded, in `models.build.assemble_vl_model`, before any PETL
module is inserted; on the meta device too, so parameter counting refuses them first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from models.config import VIDEO_TASK_NAMES, VISUAL_ENCODER_POLICIES, ConfigError, TrialConfig
from models.location import BackboneLocation
from models.petl.registry import get_method


def trains_clip(config: TrialConfig) -> bool:
    """The trial trains (part of) the CLIP image tower instead of reading cached features."""
    return config.freeze.visual_encoder in VISUAL_ENCODER_POLICIES and config.freeze.visual_encoder != "frozen"


def trial_problems(config: TrialConfig, location: BackboneLocation) -> list[str]:
    """Every problem of the method, its parameters, its sharing mode, the freezing and the
    training settings, of the method's parameters against the LM (`MethodSpec.backbone_problems`,
    even when some of them are invalid), and of the freezing against the backbone and the tasks; [] when none."""
    spec = get_method(config.method)
    problems: list[str] = []
    try:
        spec.make_config(config.method_params, config.sharing)
    except ConfigError as error:
        problems.extend(error.problems)
    if spec.backbone_problems is not None:
        # Listed with the others even when some parameters are invalid (the checks skip those).
        problems.extend(spec.backbone_problems(spec.unchecked_config(config.method_params), lm_config(location), config.freeze))
    problems.extend(config.freeze.problems())
    problems.extend(config.training.problems())
    if trains_clip(config) and location.clip_model is None:
        problems.append(
            f"freeze.visual_encoder={config.freeze.visual_encoder!r}: backbone {location.preset.name!r} reads "
            "precomputed features and has no CLIP image tower to train; use 'frozen'"
        )
    if trains_clip(config) and set(config.tasks) & set(VIDEO_TASK_NAMES):
        problems.append(
            f"freeze.visual_encoder={config.freeze.visual_encoder!r} with video tasks "
            f"{sorted(set(config.tasks) & set(VIDEO_TASK_NAMES))}: video tasks read cached per-frame features; "
            "train CLIP on image tasks only, or use 'frozen'"
        )
    return problems


def lm_config(location: BackboneLocation) -> Any | None:
    """The language model's transformers config, read without building it; None when neither
    the preset declares it nor its folder is on disk (the build then reports the missing weights)."""
    from transformers import AutoConfig

    if location.preset.lm_config is not None:
        values = dict(location.preset.lm_config)
        return AutoConfig.for_model(values.pop("model_type"), **values)
    if (Path(location.language_model) / "config.json").is_file():
        return AutoConfig.from_pretrained(location.language_model)
    return None
