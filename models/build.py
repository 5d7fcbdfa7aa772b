"""TrialConfig -> model: backbone, V->L projection, PETL modules and freezing policy.

A language model comes from one of three routes:

- pretrained: the embedded tiny backbone's directory, or a hub model already on disk;
- config-only: a base-size preset's explicit architecture (models.backbones.presets), built on
  the meta device for exact counting (always, so counts never depend on what is cached), or
  with random initialisation when the weights are absent. No tokenizer exists on this route:
  the 200 visual-order rows are appended to the word embedding, and the model is built with
  `tokenizer=None`.

A VL-pretrained preset's folder also holds the trained V->L projection
(`vl_projection.safetensors`), loaded strictly into `model.visual_embedding` (not on meta).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import open_clip
import torch
from safetensors.torch import load_file
from torch import nn
from transformers import AutoConfig, AutoModelForSeq2SeqLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from models.backbones.clip_encoder import GridEncoder, build_grid_encoder, grid_path_parameters
from models.backbones.language_model import (
    NUM_VISUAL_ORDER_TOKENS,
    add_visual_order_tokens,
    load_language_model,
    visual_order_tokens,
)
from models.backbones.presets import BackbonePreset, get_preset
from models.backbones.sites import is_layernorm, word_embedding_modules
from models.config import VIDEO_TASK_NAMES, VISUAL_ENCODER_POLICIES, ConfigError, TrialConfig
from models.embedded import embedded_dir
from models.petl.registry import get_method
from models.vl_model import VisualEmbedding, VLSeq2Seq

log = logging.getLogger(__name__)

VL_PROJECTION_FILE = "vl_projection.safetensors"


@dataclass(frozen=True)
class BackboneLocation:
    """Where a preset's weights live: open_clip name + checkpoint, LM hub name or directory.

    Attributes:
        weights_available: the LM's weights can be loaded without a download; when False the
            preset's explicit config gives a randomly initialised (or meta) model.
        vl_projection: a trained V->L projection (safetensors state dict of `visual_embedding`)
            to start from instead of a fresh one; None for a fresh one.
    """

    preset: BackbonePreset
    clip_model: str | None
    clip_checkpoint: str | None
    language_model: str
    weights_available: bool = True
    vl_projection: str | None = None

    @classmethod
    def resolve(cls, name: str, data_dir: Path) -> "BackboneLocation":
        preset = get_preset(name)
        if not preset.embedded:
            language_model = str(preset.language_model)
            available = weights_on_disk(language_model)
            return cls(preset, preset.clip_model, preset.clip_pretrained, language_model, available)
        root = embedded_dir(data_dir, preset)
        config_file = root / "clip" / f"{preset.clip_model}.json"
        if config_file.exists():
            open_clip.add_model_config(config_file)
        # A VL-pretrained preset must have its projection (a missing file fails the build loudly).
        projection = root / VL_PROJECTION_FILE
        vl_projection = str(projection) if preset.vl_pretrained_from is not None or projection.exists() else None
        return cls(
            preset, preset.clip_model, str(root / "clip" / "open_clip_model.safetensors"), str(root / "language_model"),
            vl_projection=vl_projection,
        )


def weights_on_disk(name: str) -> bool:
    # A local directory, or a hub model already in the cache; never a network call.
    if Path(name).is_dir():
        return True
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(name, "config.json"), str)


def build_visual_encoder(location: BackboneLocation) -> tuple[GridEncoder, object]:
    """The frozen CLIP grid encoder and its image transform."""
    if location.clip_model is None:
        raise ValueError(f"backbone {location.preset.name!r} reads precomputed features and has no image encoder")
    encoder, preprocess = build_grid_encoder(location.clip_model, location.clip_checkpoint, location.preset.grid)
    encoder.requires_grad_(False)
    return encoder, preprocess


def build_vl_model(
    config: TrialConfig, location: BackboneLocation, meta: bool = False
) -> tuple[VLSeq2Seq, PreTrainedTokenizerBase | None]:
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
    spec = get_method(config.method)
    problems = list(config.freeze.problems())
    try:
        method_config = spec.make_config(config.method_params, config.sharing)
    except ConfigError as error:
        problems = error.problems + problems
    problems.extend(config.training.problems())
    trains_clip = config.freeze.visual_encoder in VISUAL_ENCODER_POLICIES and config.freeze.visual_encoder != "frozen"
    if trains_clip and location.clip_model is None:
        problems.append(
            f"freeze.visual_encoder={config.freeze.visual_encoder!r}: backbone {location.preset.name!r} reads "
            "precomputed features and has no CLIP image tower to train; use 'frozen'"
        )
    if trains_clip and set(config.tasks) & set(VIDEO_TASK_NAMES):
        problems.append(
            f"freeze.visual_encoder={config.freeze.visual_encoder!r} with video tasks "
            f"{sorted(set(config.tasks) & set(VIDEO_TASK_NAMES))}: video tasks read cached per-frame features; "
            "train CLIP on image tasks only, or use 'frozen'"
        )
    if problems:
        raise ConfigError(problems)
    device_scope = torch.device("meta") if meta else contextlib.nullcontext()
    # Counting needs the architecture only: a trained projection has the fresh one's shapes.
    visual_state = None if meta else _trained_projection(location)
    torch.manual_seed(config.training.seed)  # new modules (V->L, PETL) start the same on every rebuild
    with device_scope:
        lm, tokenizer, order_ids = _language_model(location, meta)
        model = assemble_vl_model(config, lm, visual_feature_dim(location), order_ids, visual_state)
    if trains_clip and not meta:  # counting needs no tower: clip_visual_count counts it from its config
        encoder, _ = build_visual_encoder(location)
        attach_trainable_clip(model, encoder, config.freeze.visual_encoder)
    return model, tokenizer


def attach_trainable_clip(model: VLSeq2Seq, encoder: GridEncoder, policy: str) -> None:
    """Put the CLIP grid encoder inside the model, training what `policy` names (images then
    go through it at every step instead of coming from the feature cache)."""
    trains = grid_path_parameters(encoder.visual, policy)
    for name, parameter in encoder.visual.named_parameters():
        parameter.requires_grad_(trains.get(name, (0, False))[1])
    model.set_visual_encoder(encoder)


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
        ConfigError: invalid method parameters or sharing mode.
        RuntimeError: `visual_state` does not fit the projection (missing, extra or
            mis-shaped tensors).
    """
    spec = get_method(config.method)
    method_config = spec.make_config(config.method_params, config.sharing)
    layernorm = _layernorm_factory(lm)
    visual = VisualEmbedding(feat_dim, lm.config.d_model, layernorm, lm.get_input_embeddings(), order_token_ids)
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


def apply_freezing(model: VLSeq2Seq, config: TrialConfig) -> None:
    """Only PETL modules and what `config.freeze` names receive gradients."""
    freeze = config.freeze
    model.requires_grad_(False)
    lm = model.lm
    if freeze.train_language_model:
        lm.requires_grad_(True)
    if freeze.train_layernorm:
        for module in lm.modules():
            if is_layernorm(module):
                module.requires_grad_(True)
    if freeze.train_embeddings:
        for module in word_embedding_modules(lm):
            module.requires_grad_(True)
    if freeze.train_lm_head and lm.get_output_embeddings() is not None:
        lm.get_output_embeddings().requires_grad_(True)
    if freeze.train_bias:
        for name, parameter in lm.named_parameters():
            if name.endswith(".bias"):
                parameter.requires_grad_(True)
    if freeze.train_vl_projection:
        model.visual_embedding.requires_grad_(True)
    petl = getattr(model, "petl", None)
    if petl is not None:
        petl.requires_grad_(True)


def _language_model(location: BackboneLocation, meta: bool) -> tuple[PreTrainedModel, PreTrainedTokenizerBase | None, list[int]]:
    lm_config = location.preset.lm_config
    if lm_config is not None and (meta or not location.weights_available):
        if not meta:
            log.warning(
                "weights of %s are not on disk: initialising %s randomly from its config (no tokenizer)",
                location.language_model, location.preset.name,
            )
        lm, order_ids = language_model_from_config(lm_config)
        return lm, None, order_ids
    if not location.weights_available:
        raise ConfigError(
            [f"backbone {location.preset.name!r}: no weights at {location.language_model!r} and no config to build from"]
        )
    if not meta:
        lm, tokenizer = load_language_model(location.language_model)
    else:
        tokenizer = AutoTokenizer.from_pretrained(location.language_model)
        lm = AutoModelForSeq2SeqLM.from_config(AutoConfig.from_pretrained(location.language_model))
        add_visual_order_tokens(lm, tokenizer)
    return lm, tokenizer, tokenizer.convert_tokens_to_ids(visual_order_tokens())


def language_model_from_config(values) -> tuple[PreTrainedModel, list[int]]:
    """A randomly initialised T5/BART from a config dict, with the visual-order rows appended.

    Builds on the current default device (wrap in `torch.device("meta")` to count only).

    Args:
        values: a transformers config as a dict, with `model_type`.

    Returns:
        The model and the ids of its 200 visual-order rows (the last rows of the embedding).
    """
    values = dict(values)
    lm_config = AutoConfig.for_model(values.pop("model_type"), **values)
    lm = AutoModelForSeq2SeqLM.from_config(lm_config)
    rows = lm.get_input_embeddings().num_embeddings
    lm.resize_token_embeddings(rows + NUM_VISUAL_ORDER_TOKENS, mean_resizing=False)
    return lm, list(range(rows, rows + NUM_VISUAL_ORDER_TOKENS))


def visual_feature_dim(location: BackboneLocation) -> int:
    """Dimension of one visual feature: the preset's, or read from the open_clip config."""
    if location.preset.feature_dim is not None:
        return location.preset.feature_dim
    # ViT grids carry the transformer width, ResNet grids the channels of layer4 (32x the
    # stem width: 2048 for RN101).
    config = open_clip.get_model_config(location.clip_model)
    if config is None:
        raise ValueError(f"open_clip knows no model {location.clip_model!r}; see open_clip.list_models()")
    vision = config["vision_cfg"]
    return int(vision["width"]) * (32 if isinstance(vision["layers"], (list, tuple)) else 1)


def _layernorm_factory(lm):
    # The V->L projection uses the LM family's own LayerNorm, as VL-T5/VL-BART do.
    for module in lm.modules():
        if is_layernorm(module) and not isinstance(module, nn.LayerNorm):
            norm_cls = type(module)
            return lambda d: norm_cls(d, eps=lm.config.layer_norm_epsilon)
    return nn.LayerNorm
