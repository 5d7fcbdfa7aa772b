"""TrialConfig -> model: backbone, V->L projection, PETL modules and freezing policy."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import open_clip
import torch
from torch import nn
from transformers import AutoConfig, AutoModelForSeq2SeqLM, AutoTokenizer, PreTrainedTokenizerBase

from models.backbones.clip_encoder import GridEncoder, build_grid_encoder
from models.backbones.language_model import add_visual_order_tokens, load_language_model, visual_order_tokens
from models.backbones.presets import BackbonePreset, get_preset
from models.backbones.sites import is_layernorm
from models.config import TrialConfig
from models.embedded import embedded_dir
from models.petl.registry import get_method
from models.vl_model import VisualEmbedding, VLSeq2Seq


@dataclass(frozen=True)
class BackboneLocation:
    """Where a preset's weights live: open_clip name + checkpoint, LM hub name or directory."""

    preset: BackbonePreset
    clip_model: str
    clip_checkpoint: str | None
    language_model: str

    @classmethod
    def resolve(cls, name: str, data_dir: Path) -> "BackboneLocation":
        preset = get_preset(name)
        if not preset.embedded:
            return cls(preset, preset.clip_model, preset.clip_pretrained, str(preset.language_model))
        root = embedded_dir(data_dir, preset)
        config_file = root / "clip" / f"{preset.clip_model}.json"
        if config_file.exists():
            open_clip.add_model_config(config_file)
        return cls(preset, preset.clip_model, str(root / "clip" / "open_clip_model.safetensors"), str(root / "language_model"))


def build_visual_encoder(location: BackboneLocation) -> tuple[GridEncoder, object]:
    """The frozen CLIP grid encoder and its image transform."""
    encoder, preprocess = build_grid_encoder(location.clip_model, location.clip_checkpoint, location.preset.grid)
    encoder.requires_grad_(False)
    return encoder, preprocess


def build_vl_model(config: TrialConfig, location: BackboneLocation, meta: bool = False) -> tuple[VLSeq2Seq, PreTrainedTokenizerBase]:
    """Build the VL model of a trial with its PETL modules inserted and its freezing applied.

    Args:
        config: the trial.
        location: where the backbone's weights live.
        meta: build on the meta device (no memory, no weight loading) for parameter counting.

    Raises:
        ConfigError: the method, its parameters or its sharing mode are invalid.
    """
    spec = get_method(config.method)
    method_config = spec.make_config(config.method_params, config.sharing)
    device_scope = torch.device("meta") if meta else contextlib.nullcontext()
    torch.manual_seed(config.training.seed)  # new modules (V->L, PETL) start the same on every rebuild
    with device_scope:
        lm, tokenizer = _language_model(location, meta)
        feat_dim = _visual_feature_dim(location)
        layernorm = _layernorm_factory(lm)
        order_ids = tokenizer.convert_tokens_to_ids(visual_order_tokens())
        visual = VisualEmbedding(feat_dim, lm.config.d_model, layernorm, lm.get_input_embeddings(), order_ids)
        model = VLSeq2Seq(lm, visual, config.tasks)
        spec.apply(model, method_config, config.sharing)
    apply_freezing(model, config)
    return model, tokenizer


def apply_freezing(model: VLSeq2Seq, config: TrialConfig) -> None:
    """Only PETL modules and what `config.freeze` names receive gradients."""
    freeze = config.freeze
    model.requires_grad_(False)
    if freeze.train_language_model:
        model.lm.requires_grad_(True)
    if freeze.train_layernorm:
        for module in model.lm.modules():
            if is_layernorm(module):
                module.requires_grad_(True)
    if freeze.train_vl_projection:
        model.visual_embedding.requires_grad_(True)
    petl = getattr(model, "petl", None)
    if petl is not None:
        petl.requires_grad_(True)


def _language_model(location: BackboneLocation, meta: bool):
    if not meta:
        return load_language_model(location.language_model)
    tokenizer = AutoTokenizer.from_pretrained(location.language_model)
    lm = AutoModelForSeq2SeqLM.from_config(AutoConfig.from_pretrained(location.language_model))
    add_visual_order_tokens(lm, tokenizer)
    return lm, tokenizer


def _visual_feature_dim(location: BackboneLocation) -> int:
    # Read from the open_clip config: ViT grids carry the transformer width, ResNet grids the
    # channels of layer4 (32x the stem width: 2048 for RN101).
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
