"""A PETL method that lives outside the project, as a user would add one: this one file, and
its import path in $VLPETL_EXTRA_METHODS (the registry line).

Output scaling, in the spirit of (IA)^3 (Liu et al., "Few-Shot Parameter-Efficient
Fine-Tuning is Better and Cheaper than In-Context Learning", NeurIPS 2022): a learned vector
per feed-forward sublayer multiplies its output, initialised to ones (an identity at init).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from models.backbones.sites import sublayer_sites
from models.config import FreezeConfig, SharingMode
from models.petl.hooks import wrap_output
from models.petl.registry import MethodSpec, RunPreset, register


@dataclass(frozen=True)
class OutputScalingConfig:
    """Attributes:
    kinds: the sublayer kinds whose output is scaled (see models.backbones.sites).
    """

    kinds: tuple[str, ...] = ("encoder.ffn", "decoder.ffn")

    def problems(self) -> list[str]:
        return [] if self.kinds else ["output_scaling.kinds must name at least one sublayer kind"]


def apply(model, config: OutputScalingConfig, sharing: SharingMode) -> None:
    d_model = model.lm.config.d_model
    scales = nn.ParameterDict()
    for site in sublayer_sites(model.lm):
        if site.kind in config.kinds:
            scale = nn.Parameter(torch.ones(d_model))
            scales[site.name.replace(".", "_")] = scale
            wrap_output(site.module, lambda hidden, scale=scale: hidden * scale.to(hidden.dtype))
    model.petl = scales


SPEC = register(
    MethodSpec(
        name="output_scaling",
        paper="Liu et al., (IA)^3, NeurIPS 2022 (output scaling of feed-forward sublayers)",
        config_cls=OutputScalingConfig,
        apply=apply,
        freeze=FreezeConfig(train_language_model=False, train_layernorm=False, train_vl_projection=True),
        sharing_modes=(SharingMode.SINGLE,),
        learning_rate=3e-3,
        identity_at_init=True,
        search={"learning_rate_scale": [1.0, 2.0]},
        tiny_learning_rate=1e-2,
        # Rank 0: the first warm start of a study, so the test's one trial trains it.
        presets=(
            RunPreset(
                "output-scaling",
                "a learned scale on every feed-forward output",
                "output_scaling",
                freeze=FreezeConfig(train_layernorm=False),
                warm_start_rank=0,
            ),
        ),
    )
)
