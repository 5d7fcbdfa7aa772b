"""The paper's baselines as configurations of the same machinery (PAPER.md §2).

They insert no modules; what trains is set entirely by their freezing policy:
full fine-tuning trains the LM and the V->L projection, "V->L only" trains the projection,
"V->L + LayerNorm" adds the LM's LayerNorms.
"""

from __future__ import annotations

from dataclasses import dataclass

from models.config import FreezeConfig, SharingMode
from models.petl.registry import MethodSpec, RunPreset, register


@dataclass(frozen=True)
class NoParams:
    """A method without hyperparameters of its own."""

    def problems(self) -> list[str]:
        return []


def _insert_nothing(model, config: NoParams, sharing: SharingMode) -> None:
    return None


def _baseline(
    name: str, freeze: FreezeConfig, learning_rate: float, search: dict, tiny_learning_rate: float, preset: RunPreset
) -> MethodSpec:
    return register(
        MethodSpec(
            name=name,
            paper="Sung et al., VL-Adapter, CVPR 2022 (baselines)",
            config_cls=NoParams,
            apply=_insert_nothing,
            freeze=freeze,
            sharing_modes=(SharingMode.SINGLE,),
            learning_rate=learning_rate,
            search=search,
            tiny_learning_rate=tiny_learning_rate,
            presets=(preset,),
            # The freezing is the baseline (V->L + LayerNorm differs from V->L only by one flag),
            # so the default space searches none of it; CLIP's policy is not part of it.
            searched_freeze=("visual_encoder",),
        )
    )


# In the default space's order: the two V->L baselines, then full fine-tuning (searched only
# where the budget allows it; every study also trains it once as its reference point).
VL_LAYERNORM = _baseline(
    "vl_ln",
    FreezeConfig(train_language_model=False, train_layernorm=True),
    1e-3,
    {"learning_rate_scale": [0.5, 1.0, 2.0]},
    5e-3,
    RunPreset(
        "vl-ln",
        "V->L projection + LayerNorms",
        "vl_ln",
        freeze=FreezeConfig(train_layernorm=True),
        paper_trainable_pct=1.18,
        warm_start_rank=9,
    ),
)
VL_ONLY = _baseline(
    "vl_only",
    FreezeConfig(train_language_model=False, train_layernorm=False),
    1e-3,
    {"learning_rate_scale": [0.5, 1.0, 2.0]},
    5e-3,
    RunPreset(
        "vl-only",
        "V->L projection only",
        "vl_only",
        freeze=FreezeConfig(train_layernorm=False),
        paper_trainable_pct=1.14,
        warm_start_rank=10,
    ),
)
FULL_FINE_TUNING = _baseline(
    "full_ft",
    FreezeConfig(train_language_model=True, train_layernorm=True),
    1e-4,
    {"learning_rate_scale": [0.5, 1.0]},
    1e-3,
    RunPreset("full-ft", "full fine-tuning (LM + V->L)", "full_ft", freeze=FreezeConfig(train_language_model=True), learning_rate=1e-4),
)
