"""CLIP visual encoder returning grid features, built with open_clip.

The paper keeps CLIP's spatial grid rather than its pooled vector: RN101 layer4 gives
7x7x2048, adaptive-max-pooled to 6x6 = 36 visual tokens (PAPER.md §1). ViTs give a patch
grid that is pooled the same way.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import open_clip
import torch
from torch import nn


class GridEncoder(nn.Module):
    """Wraps an open_clip visual tower; maps images to a sequence of grid features.

    Args:
        visual: `model.visual` of an open_clip CLIP model (ViT or ModifiedResNet).
        grid: side of the pooled grid; the output has grid*grid tokens.
    """

    def __init__(self, visual: nn.Module, grid: int):
        super().__init__()
        self.visual = visual
        self.pool = nn.AdaptiveMaxPool2d(grid)

    @property
    def feature_dim(self) -> int:
        # ViT grids carry the transformer width; ResNet grids the channels of layer4.
        if hasattr(self.visual, "transformer"):
            return int(self.visual.transformer.width)
        return int(self.visual.layer4[-1].conv3.out_channels)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        # images: (B, 3, H, W) -> last block grid (B, C, h, w) -> pooled (B, grid*grid, C)
        out = self.visual.forward_intermediates(images, indices=1, intermediates_only=True)
        grid = out["image_intermediates"][-1]
        pooled = self.pool(grid)
        return pooled.flatten(2).transpose(1, 2)


def register_local_config(config_file: Path) -> str:
    """Make a project-written open_clip config file known to open_clip by its file stem."""
    open_clip.add_model_config(config_file)
    return config_file.stem


def build_grid_encoder(
    model_name: str, pretrained: str | None, grid: int
) -> tuple[GridEncoder, Callable]:
    """Build a CLIP visual encoder and its evaluation-time image transform.

    Args:
        model_name: an open_clip model name (e.g. "RN101", "ViT-B-32", or a registered local one).
        pretrained: an open_clip pretrained tag, a local checkpoint file, or None for no weights.
        grid: side of the pooled feature grid.

    Returns:
        The encoder in eval mode, and the preprocessing transform for PIL images.
    """
    model, _, preprocess = open_clip.create_model_and_transforms(model_name, pretrained=pretrained)
    encoder = GridEncoder(model.visual, grid)
    encoder.eval()
    return encoder, preprocess


def tiny_clip_config(image_size: int = 64) -> dict:
    """The embedded tiny CLIP's open_clip config: a 3-layer ViT with 8x8 patches."""
    return {
        "embed_dim": 64,
        "vision_cfg": {"image_size": image_size, "layers": 3, "width": 128, "patch_size": 8, "head_width": 32},
        "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
    }


def write_open_clip_config(path: Path, config: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2))
