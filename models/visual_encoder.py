"""The frozen CLIP grid encoder of a backbone, and the dimension of one visual feature."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import open_clip
import torch

from models.backbones.clip_encoder import GridEncoder, build_grid_encoder
from models.location import BackboneLocation

RANDOM_INIT_SEED = 0  # of a random-init CLIP tower, fixed so that its cached features stay valid


def build_visual_encoder(location: BackboneLocation) -> tuple[GridEncoder, Callable[..., Any]]:
    """The frozen CLIP grid encoder and its image transform."""
    if location.clip_model is None:
        raise ValueError(f"backbone {location.preset.name!r} reads precomputed features and has no image encoder")
    location.require_weights()
    if location.random_init:
        # Seeded, so every worker extracts the same features and the cache key holds.
        with torch.random.fork_rng():
            torch.manual_seed(RANDOM_INIT_SEED)
            encoder, preprocess = build_grid_encoder(location.clip_model, None, location.preset.grid, location.clip_quick_gelu)
    else:
        encoder, preprocess = build_grid_encoder(
            location.clip_model, location.clip_checkpoint, location.preset.grid, location.clip_quick_gelu
        )
    encoder.requires_grad_(False)
    return encoder, preprocess


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
