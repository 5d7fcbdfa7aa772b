"""Cross-field checks of a trial against its backbone, all collected before anything is built.

Checks that need the language model's weights' shapes (a method's `backbone_problems`, e.g.
PiSSA's rank) run once the LM is loaded, in `models.build.assemble_vl_model`, before any PETL
module is inserted; on the meta device too, so parameter counting refuses them first.
"""

from __future__ import annotations

from models.config import VIDEO_TASK_NAMES, VISUAL_ENCODER_POLICIES, ConfigError, TrialConfig
from models.location import BackboneLocation
from models.petl.registry import get_method


def trains_clip(config: TrialConfig) -> bool:
    """The trial trains (part of) the CLIP image tower instead of reading cached features."""
    return config.freeze.visual_encoder in VISUAL_ENCODER_POLICIES and config.freeze.visual_encoder != "frozen"


def trial_problems(config: TrialConfig, location: BackboneLocation) -> list[str]:
    """Every problem of the method, its parameters, its sharing mode, the freezing and the
    training settings, and of the freezing against the backbone and the tasks; [] when none."""
    spec = get_method(config.method)
    problems = list(config.freeze.problems())
    try:
        spec.make_config(config.method_params, config.sharing)
    except ConfigError as error:
        problems = error.problems + problems
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
