"""The paper's baselines as configurations of the same machinery (PAPER.md §2).

They insert no modules; what trains is set entirely by their freezing policy:
full fine-tuning trains the LM and the V->L projection, "V->L only" trains the projection,
"V->L + LayerNorm" adds the LM's LayerNorms.
"""

from __future__ import annotations

from dataclasses import dataclass

from models.config import FreezeConfig, SharingMode
from models.petl.registry import MethodSpec, register


@dataclass(frozen=True)
class NoParams:
    """A method without hyperparameters of its own."""

    def problems(self) -> list[str]:
        return []


def _insert_nothing(model, config: NoParams, sharing: SharingMode) -> None:
    return None


def _no_params(trial) -> dict:
    return {}


def _baseline(name: str, freeze: FreezeConfig, learning_rate: float) -> MethodSpec:
    return register(
        MethodSpec(
            name=name,
            paper="Sung et al., VL-Adapter, CVPR 2022 (baselines)",
            config_cls=NoParams,
            apply=_insert_nothing,
            suggest=_no_params,
            freeze=freeze,
            sharing_modes=(SharingMode.SINGLE,),
            learning_rate=learning_rate,
        )
    )


FULL_FINE_TUNING = _baseline("full_ft", FreezeConfig(train_language_model=True, train_layernorm=True), 1e-4)
VL_ONLY = _baseline("vl_only", FreezeConfig(train_language_model=False, train_layernorm=False), 1e-3)
VL_LAYERNORM = _baseline("vl_ln", FreezeConfig(train_language_model=False, train_layernorm=True), 1e-3)
