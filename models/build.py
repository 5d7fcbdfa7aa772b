"""TrialConfig -> model: the assembly of backbone, V->L projection, PETL modules and freezing.

One job per module around it: where the weights live (models.location), the trial's cross-field
checks (models.validation), the language model and its tokenizer (models.lm_loading), the CLIP
grid encoder (models.visual_encoder), what trains (models.freezing).

A VL-pretrained preset's folder also holds the trained V->L projection
(`vl_projection.safetensors`), loaded strictly into `model.visual_embedding` (not on meta).
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Mapping

import torch
from safetensors.torch import load_file
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from models.backbones.language_model import word_embedding
from models.backbones.sites import is_layernorm
from models.config import ConfigError, TrialConfig
from models.freezing import apply_freezing, attach_trainable_clip
from models.lm_loading import language_model
from models.location import BackboneLocation
from models.petl.registry import get_method
from models.validation import trains_clip, trial_problems
from models.visual_encoder import build_visual_encoder, visual_feature_dim
from models.vl_model import VisualEmbedding, VLSeq2Seq

log = logging.getLogger(__name__)


def build_vl_model(config: TrialConfig, location: BackboneLocation, meta: bool = False) -> tuple[VLSeq2Seq, PreTrainedTokenizerBase | None]:
    """Build the VL model of a trial with its PETL modules inserted and its freezing applied.

    Args:
        config: the trial.
        location: where the backbone's weights live.
        meta: build on the meta device (no memory, no weight loading) for parameter counting.

    Returns:
        The model and its tokenizer; the tokenizer is None on the config-only route.

    Raises:
        ConfigError: the method, its parameters, its sharing mode or the freezing are invalid
            (every problem listed).
    """
    problems = trial_problems(config, location)
    if problems:
        raise ConfigError(problems)
    device_scope = torch.device("meta") if meta else contextlib.nullcontext()
    # Counting needs the architecture only: a trained projection has the fresh one's shapes.
    visual_state = None if meta else _trained_projection(location)
    torch.manual_seed(config.training.seed)  # new modules (V->L, PETL) start the same on every rebuild
    with device_scope:
        lm, tokenizer, order_ids = language_model(location, meta)
        model = assemble_vl_model(config, lm, visual_feature_dim(location), order_ids, visual_state)
    if trains_clip(config) and not meta:  # counting needs no tower: clip_visual_count counts it from its config
        encoder, _ = build_visual_encoder(location)
        attach_trainable_clip(model, encoder, config.freeze.visual_encoder)
    return model, tokenizer


def assemble_vl_model(
    config: TrialConfig,
    lm: PreTrainedModel,
    feat_dim: int,
    order_token_ids: list[int],
    visual_state: Mapping[str, torch.Tensor] | None = None,
) -> VLSeq2Seq:
    """Wrap a language model into the VL layout, insert the trial's PETL modules, apply freezing.

    Args:
        config: the trial (method, parameters, sharing, freezing, tasks).
        lm: a T5 or BART model whose word embedding already holds the visual-order rows.
        feat_dim: dimension of one visual feature.
        order_token_ids: the rows of the visual-order tokens in the word embedding.
        visual_state: a trained V->L projection's state dict (VL pretraining), loaded strictly
            before PETL modules are inserted; None keeps the fresh projection.

    Raises:
        ConfigError: invalid method parameters or sharing mode, or parameters that do not fit
            this language model's weights (`MethodSpec.lm_problems`).
        RuntimeError: `visual_state` does not fit the projection (missing, extra or
            mis-shaped tensors).
    """
    spec = get_method(config.method)
    method_config = spec.make_config(config.method_params, config.sharing)
    # Before anything is inserted: every misfit of the parameters to this LM, listed at once.
    misfits = spec.lm_problems(method_config, lm) if spec.lm_problems is not None else []
    if misfits:
        raise ConfigError(misfits)
    layernorm = _layernorm_factory(lm)
    visual = VisualEmbedding(feat_dim, lm.config.d_model, layernorm, word_embedding(lm), order_token_ids)
    if visual_state is not None:
        visual.load_state_dict(visual_state, strict=True)
    model = VLSeq2Seq(lm, visual, config.tasks)
    spec.apply(model, method_config, config.sharing)
    apply_freezing(model, config)
    return model


def _trained_projection(location: BackboneLocation) -> dict[str, torch.Tensor] | None:
    if location.vl_projection is None:
        return None
    if not Path(location.vl_projection).is_file():
        base = location.preset.vl_pretrained_from or location.preset.name
        raise FileNotFoundError(
            f"backbone {location.preset.name!r} has no trained V->L projection at {location.vl_projection}; "
            f"build it with python -m training.vl_pretrain --backbone {base}"
        )
    return load_file(location.vl_projection)


def _layernorm_factory(lm):
    # The V->L projection uses the LM family's own LayerNorm, as VL-T5/VL-BART do.
    for module in lm.modules():
        if is_layernorm(module) and not isinstance(module, nn.LayerNorm):
            norm_cls = type(module)
            return lambda d: norm_cls(d, eps=lm.config.layer_norm_epsilon)
    return nn.LayerNorm
