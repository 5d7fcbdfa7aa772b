"""Named backbone presets: a CLIP visual encoder paired with a seq2seq language model.

The base-size presets carry the exact architecture of their language model (the values of the
hub's `config.json`), so they build with random initialisation, or on the meta device for
exact parameter counting, without any download (PAPER.md §3: BART-base has 139,420,416
parameters, t5-base 222,903,552).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from models.config import ConfigError


@dataclass(frozen=True)
class BackbonePreset:
    """A CLIP + seq2seq pairing.

    Attributes:
        name: the preset key users pass as `--backbone`.
        clip_model: open_clip model name; None when the features come without an image tower
            (the video setting's precomputed 512-d frame features).
        clip_pretrained: open_clip pretrained tag, or None for the project-built weights.
        grid: side of the pooled visual grid (6 -> 36 tokens for RN101, PAPER.md §1).
        language_model: hub name or local directory; None for the project-built model.
        embedded: built by the project under `<data_dir>/backbones/<name>`.
        image_size: input resolution of the visual encoder.
        lm_config: the language model's architecture (a transformers config as a dict, with
            `model_type`); lets the model be built without its weights.
        feature_dim: dimension of one visual feature when it is not the CLIP grid's.
        modality: "image" or "video": which of the paper's task sets the backbone serves.
        vl_pretrained_from: for a VL-pretrained variant, the embedded preset it starts from
            (training.pretrain.vl_variant builds it; its folder adds the trained V->L projection).
    """

    name: str
    clip_model: str | None
    clip_pretrained: str | None
    grid: int
    language_model: str | None
    embedded: bool
    image_size: int
    lm_config: Mapping[str, Any] | None = field(default=None, hash=False)
    feature_dim: int | None = None
    modality: str = "image"
    vl_pretrained_from: str | None = None
    vl_projection: str | None = None  # a backbone spec's trained V->L projection file (proj=)


# facebook/bart-base's config.json (architecture fields): 139,420,416 parameters.
BART_BASE = MappingProxyType(
    {
        "model_type": "bart",
        "vocab_size": 50265,
        "d_model": 768,
        "encoder_layers": 6,
        "decoder_layers": 6,
        "encoder_attention_heads": 12,
        "decoder_attention_heads": 12,
        "encoder_ffn_dim": 3072,
        "decoder_ffn_dim": 3072,
        "max_position_embeddings": 1024,
        "activation_function": "gelu",
        "dropout": 0.1,
        "attention_dropout": 0.1,
        "activation_dropout": 0.1,
        "init_std": 0.02,
        "scale_embedding": False,
        "normalize_before": False,
        "add_final_layer_norm": False,
        "add_bias_logits": False,
        "pad_token_id": 1,
        "bos_token_id": 0,
        "eos_token_id": 2,
        "decoder_start_token_id": 2,
        "forced_eos_token_id": 2,
        "tie_word_embeddings": True,
    }
)

# t5-base's config.json (architecture fields): 222,903,552 parameters.
T5_BASE = MappingProxyType(
    {
        "model_type": "t5",
        "vocab_size": 32128,
        "d_model": 768,
        "d_kv": 64,
        "d_ff": 3072,
        "num_layers": 12,
        "num_decoder_layers": 12,
        "num_heads": 12,
        "relative_attention_num_buckets": 32,
        "relative_attention_max_distance": 128,
        "dropout_rate": 0.1,
        "layer_norm_epsilon": 1e-6,
        "initializer_factor": 1.0,
        "feed_forward_proj": "relu",
        "pad_token_id": 0,
        "eos_token_id": 1,
        "decoder_start_token_id": 0,
        "tie_word_embeddings": True,
    }
)

_LANGUAGE_MODELS = {"bart-base": ("facebook/bart-base", BART_BASE), "t5-base": ("t5-base", T5_BASE)}
# CLIP image towers: open_clip name; both give a 7x7 last-block grid at 224 px, pooled to 6x6.
_CLIP_MODELS = {"rn101": "RN101", "vit-b32": "ViT-B-32"}


def _base_presets() -> list[BackbonePreset]:
    presets = []
    for clip_key, clip_model in _CLIP_MODELS.items():
        for lm_key, (hub_name, config) in _LANGUAGE_MODELS.items():
            presets.append(
                BackbonePreset(
                    name=f"clip-{clip_key}+{lm_key}",
                    clip_model=clip_model,
                    clip_pretrained="openai",
                    grid=6,
                    language_model=hub_name,
                    embedded=False,
                    image_size=224,
                    lm_config=config,
                )
            )
    return presets


PRESETS: dict[str, BackbonePreset] = {
    preset.name: preset
    for preset in (
        BackbonePreset(
            name="tiny-clip+tiny-t5",
            clip_model="tiny-clip-vit",
            clip_pretrained=None,
            grid=4,
            language_model=None,
            embedded=True,
            image_size=64,
        ),
        BackbonePreset(
            name="tiny-clip+tiny-bart",
            clip_model="tiny-clip-vit",
            clip_pretrained=None,
            grid=4,
            language_model=None,
            embedded=True,
            image_size=64,
        ),
        *_base_presets(),
        # The video setting (PAPER.md §3, §4): 64 frames of 512-d CLIP features per video, read
        # precomputed, so no image tower is part of the preset.
        BackbonePreset(
            name="video-clip512+bart-base",
            clip_model=None,
            clip_pretrained=None,
            grid=0,
            language_model="facebook/bart-base",
            embedded=False,
            image_size=224,
            lm_config=BART_BASE,
            feature_dim=512,
            modality="video",
        ),
    )
}

VLP_SUFFIX = "-vlp"


def _vl_pretrained(base: BackbonePreset) -> BackbonePreset:
    # The paper's "with VL pretraining" variant (PAPER.md §6): the same architecture, hence the
    # same parameter counts; only the weights differ.
    return dataclasses.replace(base, name=f"{base.name}{VLP_SUFFIX}", vl_pretrained_from=base.name)


# The embedded presets' VL-pretrained variants (python -m training.vl_pretrain builds them).
PRESETS.update((variant.name, variant) for variant in map(_vl_pretrained, (PRESETS["tiny-clip+tiny-t5"], PRESETS["tiny-clip+tiny-bart"])))

DEFAULT_BACKBONE = "tiny-clip+tiny-t5"
# What `search.launch` searches on by default: the same backbone after VL pretraining. PETL
# adapts a VL-pretrained model (VL-T5 / VL-BART in the paper), and it is what makes short trials
# meaningful: after 400 steps on the four image tasks a single adapter at 4.1% scored 59.9
# against 62.2 for full fine-tuning on the VL-pretrained tiny backbone, and 25.9 against 38.2
# without VL pretraining, where the V->L projection starts from scratch.
DEFAULT_SEARCH_BACKBONE = DEFAULT_BACKBONE + VLP_SUFFIX


def get_preset(name: str) -> BackbonePreset:
    """Look a preset up by name, or describe a backbone spec (`clip=ARCH:CHECKPOINT,lm=...`,
    models.backbones.backbone_spec) from its files.

    Raises:
        ConfigError: unknown name (the message lists the known presets and the spec syntax), or
            a spec that does not check out.
    """
    from models.backbones.backbone_spec import SPEC_SYNTAX, is_backbone_spec, spec_preset

    if is_backbone_spec(name):
        return spec_preset(name)
    if name not in PRESETS:
        raise ConfigError([f"unknown backbone {name!r}; known backbones: {', '.join(sorted(PRESETS))}, or a spec {SPEC_SYNTAX}"])
    return PRESETS[name]
