"""CLIP visual encoder returning grid features, built with open_clip.

The paper keeps CLIP's spatial grid rather than its pooled vector: RN101 layer4 gives
7x7x2048, adaptive-max-pooled to 6x6 = 36 visual tokens (PAPER.md §1). ViTs give a patch
grid that is pooled the same way.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import open_clip
import torch
from torch import nn

# An open_clip visual tower (VisionTransformer or ModifiedResNet). open_clip ships no type
# information, so a tower is Any here; its submodules are read by name.
OpenClipTower = Any


class GridEncoder(nn.Module):
    """Wraps an open_clip visual tower; maps images to a sequence of grid features.

    Args:
        visual: `model.visual` of an open_clip CLIP model (ViT or ModifiedResNet).
        grid: side of the pooled grid; the output has grid*grid tokens.
    """

    def __init__(self, visual: OpenClipTower, grid: int):
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


def build_grid_encoder(model_name: str, pretrained: str | None, grid: int, quick_gelu: bool = False) -> tuple[GridEncoder, Callable]:
    """Build a CLIP visual encoder and its evaluation-time image transform.

    Args:
        model_name: an open_clip model name (e.g. "RN101", "ViT-B-32", or a registered local one).
        pretrained: an open_clip pretrained tag, a local checkpoint file, or None for no weights.
        grid: side of the pooled feature grid.
        quick_gelu: use QuickGELU (OpenAI's CLIP weights need it; open_clip infers it from a
            pretrained tag but not from a checkpoint file).

    Returns:
        The encoder in eval mode, and the preprocessing transform for PIL images.
    """
    model, _, preprocess = open_clip.create_model_and_transforms(model_name, pretrained=pretrained, force_quick_gelu=quick_gelu)
    encoder = GridEncoder(model.visual, grid)
    encoder.eval()
    return encoder, preprocess


def tiny_clip_config(image_size: int = 64) -> dict:
    """The embedded tiny CLIP's open_clip config: a 3-layer ViT with 16x16 patches (a 4x4 grid at 64 px)."""
    return {
        "embed_dim": 64,
        "vision_cfg": {"image_size": image_size, "layers": 3, "width": 128, "patch_size": 16, "head_width": 32},
        "text_cfg": {"context_length": 48, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
    }


def write_open_clip_config(path: Path, config: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2))


# Heads after the last block that the grid path never runs: ResNet's attention pool, ViT's
# final norm and projection (`forward_intermediates` stops at the last block).
_UNUSED_HEADS = ("attnpool.", "attn_pool.", "ln_post.", "head.")


def grid_path_parameters(visual: OpenClipTower, policy: str) -> dict[str, tuple[int, bool]]:
    """The visual tower's parameters that compute grid features, with whether each trains.

    Args:
        visual: an open_clip visual tower (ModifiedResNet or VisionTransformer).
        policy: "frozen", "last_block" (ResNet: the whole layer4 stage, as the VL-Adapter code
            unfreezes it; ViT: the last transformer block) or "trainable".

    Returns:
        name -> (number of elements, trains).
    """
    if hasattr(visual, "transformer"):
        last = f"transformer.resblocks.{len(visual.transformer.resblocks) - 1}."
    else:
        last = "layer4."
    found = {}
    for name, parameter in visual.named_parameters():
        if name == "proj" or name.startswith(_UNUSED_HEADS):
            continue
        trains = policy == "trainable" or (policy == "last_block" and name.startswith(last))
        found[name] = (parameter.numel(), trains)
    return found


def meta_visual_tower(model_name: str) -> nn.Module:
    """An open_clip visual tower on the meta device (no memory, no weights), for counting.

    Raises:
        ValueError: open_clip does not know the model.
    """
    if open_clip.get_model_config(model_name) is None:
        raise ValueError(f"open_clip knows no model {model_name!r}; see open_clip.list_models()")
    with torch.device("meta"):
        return open_clip.create_model(model_name, pretrained=None, device="meta").visual
