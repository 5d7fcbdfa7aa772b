"""Trainable-parameter accounting by the paper's definition (PAPER.md §3), and with CLIP.

Paper's definition (the default): total = the VL language model including the 200 added
token rows, the V->L projection and every inserted PETL parameter, excluding CLIP; shared
tensors count once. The second definition adds the CLIP image tower's grid path (the
parameters that compute the grid features), trainable as `FreezeConfig.visual_encoder` says.

Components of the breakdown:
    language_model       the plain LM, before the visual-order rows were added
    visual_order_tokens  the word-embedding (and untied LM-head) rows of the visual-order tokens
    vl_projection        the V->L projection
    petl                 every inserted PETL parameter
    clip_visual          the CLIP image tower's grid path (not in the paper's total)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from torch import nn

from core.counts import ParameterCount

if TYPE_CHECKING:
    from transformers import PreTrainedModel

    from models.vl_model import VLSeq2Seq

CLIP_PREFIX = "visual_encoder."  # a trainable CLIP inside a VLSeq2Seq
COMPONENTS = ("language_model", "visual_order_tokens", "vl_projection", "petl", "clip_visual")
PAPER_DEFINITION = "paper (PAPER.md §3): LM incl. the 200 visual-order rows + V->L + PETL; CLIP excluded; shared tensors once"


def count_parameters(model: nn.Module) -> ParameterCount:
    """Count a VL model's parameters by the paper's definition (CLIP excluded).

    `named_parameters()` already yields each shared tensor once. A trainable CLIP encoder inside
    the model is left out, as the paper leaves CLIP out; `parameter_report` adds it separately.
    """
    trainable = total = 0
    for name, parameter in model.named_parameters():
        if name.startswith(CLIP_PREFIX):
            continue
        total += parameter.numel()
        if parameter.requires_grad:
            trainable += parameter.numel()
    return ParameterCount(trainable=trainable, total=total)


def breakdown(model: VLSeq2Seq) -> dict[str, ParameterCount]:
    """A `VLSeq2Seq`'s parameters by component (all but clip_visual); each tensor counted once.

    Raises:
        ValueError: a parameter outside lm / visual_embedding / petl (accounting would be unsound).
    """
    parts = {name: ParameterCount(0, 0) for name in COMPONENTS}
    order_rows = model.visual_embedding.order_token_rows
    first_order_row = min(order_rows) if order_rows else None
    row_tensors = _vocabulary_rows(model.lm)
    for name, parameter in model.named_parameters():
        n, trains = parameter.numel(), parameter.requires_grad
        if name.startswith("lm."):
            order = 0
            if id(parameter) in row_tensors and first_order_row is not None:
                order = (parameter.shape[0] - first_order_row) * parameter.shape[1]
            parts["visual_order_tokens"] += ParameterCount(order * trains, order)
            parts["language_model"] += ParameterCount((n - order) * trains, n - order)
        elif name.startswith("visual_embedding."):
            parts["vl_projection"] += ParameterCount(n * trains, n)
        elif name.startswith("petl."):
            parts["petl"] += ParameterCount(n * trains, n)
        elif name.startswith(CLIP_PREFIX):
            continue  # counted from its config by clip_visual_count, trained or not
        else:
            raise ValueError(f"parameter {name!r} belongs to no accounted component; PETL modules belong under `petl`")
    return parts


def _vocabulary_rows(lm: PreTrainedModel) -> set[int]:
    # The word embedding and an untied LM head both grew by the visual-order rows.
    tensors = {id(lm.get_input_embeddings().weight)}
    head = lm.get_output_embeddings()
    if head is not None:
        tensors.add(id(head.weight))
    return tensors


def clip_visual_count(clip_model: str | None, policy: str) -> ParameterCount:
    """The CLIP image tower's grid path, counted on the meta device.

    Args:
        clip_model: open_clip model name; None (precomputed features) counts nothing.
        policy: `FreezeConfig.visual_encoder`.
    """
    if clip_model is None:
        return ParameterCount(0, 0)
    from models.backbones.clip_encoder import grid_path_parameters, meta_visual_tower

    counted = grid_path_parameters(meta_visual_tower(clip_model), policy).values()
    return ParameterCount(sum(n for n, trains in counted if trains), sum(n for n, _ in counted))


@dataclass(frozen=True)
class ParameterReport:
    """Counts of one configuration by both definitions, with the breakdown.

    Attributes:
        paper: by the paper's definition (CLIP excluded).
        with_clip: CLIP's grid path added, trainable per the visual-encoder policy.
        components: per component, clip_visual included.
    """

    paper: ParameterCount
    with_clip: ParameterCount
    components: dict[str, ParameterCount]

    def to_dict(self) -> dict[str, Any]:
        return {
            "trainable": self.paper.trainable,
            "total": self.paper.total,
            "trainable_pct": self.paper.trainable_pct,
            "trainable_with_clip": self.with_clip.trainable,
            "total_with_clip": self.with_clip.total,
            "trainable_pct_with_clip": self.with_clip.trainable_pct,
            "definition": PAPER_DEFINITION,
            "breakdown": {k: {"trainable": v.trainable, "total": v.total} for k, v in self.components.items()},
        }


def parameter_report(config, location) -> ParameterReport:
    """Exact counts of a `TrialConfig` on a backbone, built on the meta device (nothing allocated).

    Raises:
        ConfigError: the configuration is invalid.
    """
    from models.build import build_vl_model

    model, _ = build_vl_model(config, location, meta=True)
    components = breakdown(model)
    components["clip_visual"] = clip_visual_count(location.clip_model, config.freeze.visual_encoder)
    paper = count_parameters(model)
    return ParameterReport(paper, paper + components["clip_visual"], components)
