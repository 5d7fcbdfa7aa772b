"""DoRA: LoRA with the weight split into magnitude and direction (Liu et al., ICML 2024).

`W' = m * (W + s B A) / ||W + s B A||_c`, with `||.||_c` the norm of each output row (the
paper's column norm of W^T), the magnitude `m` (d_out) trained and initialised to `||W||_c`, and
the norm detached from the gradient (paper §4.3), so the adapted model starts as the backbone.
Semantics are peft 0.21.2's DoRA for `nn.Linear` (peft/tuners/lora/dora.py, `DoraLinearLayer`,
and variants.py, `DoraLinearVariant`): the output is

    y = W x + b + (m / n - 1) * W dropout(x) + (m / n) * s * B A dropout(x),   n = ||W + s (B A).detach()||_c

where the bias is not rescaled and `W dropout(x)` is the hooked linear's own output less its
bias when dropout is off (eval, or dropout 0), else recomputed on the dropped-out input, as
peft does. Like LoRA (models.petl.lora), DoRA runs in a forward hook on the frozen linear: the
hook sees the input and the output and reads the linear's weight, which is all this formula
needs, so the LM's modules and state-dict names stay untouched.

VL-BART run (NVlabs/DoRA, image_video_text_understanding/VL-T5/scripts/image/dora.sh and
src/trainer_base.py `unfreeze_parameters`, `DoraLinear`): q and v of all 18 attention modules of
BART-base, rank 128, scaling 1 (`lora_s=1.0`: alpha = rank here), no dropout, with every LM bias
and LayerNorm trained (`--unfreeze_bias --unfreeze_layer_norms`), single, lr 1e-3: 5.96%
published (`single-dora`). The video run (scripts/video/dora.sh) leaves the LayerNorms frozen,
lr 2.4e-4: 5.19% on the video tasks (`single-dora-video`). Both reproduce to two decimals with
`python -m search.params`, the magnitudes (18 x 2 x 768) counted as PETL parameters. Their script runs `DoraLinear`, whose norm is not detached (`--dora_simple` detaches
it); this module follows peft and the paper's §4.3 and detaches, which changes gradients, not
counts.

Sharing across tasks: as LoRA's A/B; the magnitude goes with B (both live on the output side):
one for all tasks (single), one per task (multiple), and in half-shared shared when B is
("up"), per task when A is shared ("down").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel

from models.backbones.sites import projections
from models.config import FreezeConfig, SharingMode
from models.petl.hooks import rewrite_output
from models.petl.lora import LORA_SEARCH, LoraBranch, LoraConfig, insert_branches, lora_problems
from models.petl.pissa import rank_problems
from models.petl.registry import MethodSpec, RunPreset, register


@dataclass(frozen=True)
class DoraConfig(LoraConfig):
    """Hyperparameters of DoRA: LoRA's (rank, alpha, dropout, targets, shared_projection, init)."""

    def problems(self) -> list[str]:
        return lora_problems("dora", self)


class DoraBranch(LoraBranch):
    """LoRA's A/B of one linear plus DoRA's magnitude vector(s), one per B."""

    def __init__(self, base: nn.Linear, path: str, config: LoraConfig, n_down: int, n_up: int, task_context):
        super().__init__(base, path, config, n_down, n_up, task_context)  # PiSSA, if asked, has set W and A/B
        with torch.no_grad():
            norm = self.weight_norm(base.weight, *self.pair(0))
        self.magnitude = nn.ParameterList([nn.Parameter(norm.clone()) for _ in range(n_up)])

    def weight_norm(self, weight: torch.Tensor, A: nn.Linear, B: nn.Linear) -> torch.Tensor:
        """`||W + s B A||_c` per output row, (d_out,), with no gradient into B A."""
        update = (B.weight @ A.weight).detach()  # (d_out, r) @ (r, d_in)
        return torch.linalg.norm(weight + self.scaling * update, dim=1).to(weight.dtype)

    def rewrite(self, layer: nn.Module, x: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
        # x: (B, T, d_in); output = W x + b: (B, T, d_out)
        task = self.active_task()
        A, B = self.pair(task)
        magnitude = self.magnitude[min(task, len(self.magnitude) - 1)]
        weight = cast(torch.Tensor, layer.weight).to(x.dtype)
        scale = (magnitude / self.weight_norm(weight, A, B).detach()).view(1, -1)  # (1, d_out)
        dropped = self.dropout(x)
        if isinstance(self.dropout, nn.Identity) or not self.training:
            bias = cast(torch.Tensor | None, getattr(layer, "bias", None))
            base = output - bias if bias is not None else output
        else:
            base = F.linear(dropped, weight)  # peft recomputes W x on the dropped-out input
        lora = B(A(dropped))
        return output + ((scale - 1) * base + scale * lora * self.scaling).to(output.dtype)


def apply(model, config: DoraConfig, sharing: SharingMode) -> None:
    """Add DoRA to the targeted linears of `model.lm` (a `VLSeq2Seq`)."""
    insert_branches(model, config, sharing, DoraBranch, lambda linear, branch: rewrite_output(linear, branch.rewrite))


def lm_problems(config: DoraConfig, lm: PreTrainedModel) -> list[str]:
    """DoRA's checks against the LM: each targeted module is a plain float `nn.Linear`, and a PiSSA rank fits.

    DoRA normalises the rows of the weight it reads (`layer.weight` as d_out x d_in): a linear
    subclass (a quantised one, say) stores something else there, so it is refused, one line per type.
    """
    unsupported: dict[str, list[str]] = {}
    for projection in projections(lm, config.targets):
        module = projection.module
        if type(module) is not nn.Linear or not module.weight.dtype.is_floating_point:
            kind = f"{type(module).__name__} (weight {module.weight.dtype})"
            unsupported.setdefault(kind, []).append(projection.path)
    found = [
        f"dora.targets {list(config.targets)} reach {paths[0]}{f' and {len(paths) - 1} more' if len(paths) > 1 else ''}, "
        f"a {kind}: DoRA rescales the rows of a plain float nn.Linear weight only; drop those roles from dora.targets "
        "or use method 'lora', which adds to any linear's output"
        for kind, paths in unsupported.items()
    ]
    return found + rank_problems("dora", config, lm)


# NVlabs/DoRA's VL-BART image run: scaling 1 (alpha = rank), no dropout (DoraLinear applies none).
_PAPER_RUN = {"rank": 128, "alpha": 128.0, "dropout": 0.0, "targets": ("q", "v")}
_PAPER_FREEZE = FreezeConfig(train_layernorm=True, train_bias=True)  # --unfreeze_layer_norms --unfreeze_bias


SPEC = register(
    MethodSpec(
        name="dora",
        paper="Liu et al., DoRA: Weight-Decomposed Low-Rank Adaptation, ICML 2024",
        config_cls=DoraConfig,
        apply=apply,
        lm_problems=lm_problems,
        freeze=_PAPER_FREEZE,
        sharing_modes=(SharingMode.SINGLE, SharingMode.MULTIPLE, SharingMode.HALF_SHARED),
        learning_rate=1e-3,
        identity_at_init=True,
        search=dict(LORA_SEARCH),
        tiny_learning_rate=5e-3,
        presets=(
            RunPreset(
                "single-dora",
                "one DoRA for all tasks (DoRA paper, VL-BART)",
                "dora",
                _PAPER_RUN,
                SharingMode.SINGLE,
                _PAPER_FREEZE,
                learning_rate=1e-3,
                paper_trainable_pct=5.96,
            ),
            RunPreset(
                "single-dora-video",
                "one DoRA for all tasks (DoRA paper, VL-BART video run: LayerNorms frozen; 5.19% on video)",
                "dora",
                _PAPER_RUN,
                SharingMode.SINGLE,
                FreezeConfig(train_layernorm=False, train_bias=True),  # scripts/video/dora.sh: no --unfreeze_layer_norms
                learning_rate=2.4e-4,
            ),
        ),
    )
)
