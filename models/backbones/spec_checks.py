"""The CLIP half of a backbone spec, checked before anything is written: the architecture, its
grid, and a checkpoint whose every tensor fits it (models.backbones.backbone_spec)."""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

import open_clip
import torch

from models.config import ConfigError

# The towers whose last block's grid models.backbones.clip_encoder reads and counts.
GRID_TOWERS = ("VisionTransformer", "ModifiedResNet")
MAX_LISTED = 3  # mismatched tensors named in the one-line error


@functools.lru_cache(maxsize=16)
def _meta_model(arch: str) -> Any:
    # open_clip warns on the root logger that a model without weights is random: this one is
    # only for shapes, and the warning would reach a command's one-line error output.
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with torch.device("meta"):
            return open_clip.create_model(arch, pretrained=None, device="meta")
    finally:
        logging.disable(previous)


def tower_grid(arch: str) -> tuple[int, int]:
    """The side of the tower's native grid at its image size, and that image size.

    Raises:
        ConfigError: unknown architecture, or a tower without a spatial grid this project reads.
    """
    if open_clip.get_model_config(arch) is None:
        raise ConfigError(
            [f"clip={arch!r} is not an open_clip architecture; accepted: a name from open_clip.list_models(), e.g. RN50, RN101, ViT-B-32"]
        )
    visual = _meta_model(arch).visual
    kind = type(visual).__name__
    if kind not in GRID_TOWERS:
        raise ConfigError(
            [
                f"clip={arch!r} has a {kind} tower, without the spatial grid this project reads; accepted: open_clip's "
                "ResNets (RN50, RN101, ...) and ViTs (ViT-B-32, ViT-B-16, ...)"
            ]
        )
    if kind == "VisionTransformer":
        side = int(visual.grid_size[0])
        image_size = int(visual.image_size[0])
    else:  # ModifiedResNet: the attention pool reads the stride-32 grid of layer4
        image_size = int(visual.image_size)
        side = image_size // 32
    if side < 1:
        raise ConfigError([f"clip={arch!r} has a {side}x{side} grid at {image_size} px; accepted: towers with at least a 1x1 grid"])
    return side, image_size


def check_checkpoint(arch: str, checkpoint: str) -> None:
    """A file exists and every tensor fits the architecture, or a tag is cached for it.

    Raises:
        ConfigError: a missing file, a directory, an unknown suffix, an unreadable file, tensors
            whose names or shapes do not fit, a tag that is not open_clip's or not cached.
    """
    from models.backbones.backbone_spec import CHECKPOINT_SUFFIXES
    from models.backbones.availability import clip_checkpoint_file

    path = Path(checkpoint)
    if path.is_dir():
        raise ConfigError([f"clip checkpoint {checkpoint!r} is a directory; give the weight file in it (.safetensors, .pt or .bin)"])
    if path.is_absolute() or checkpoint.endswith(CHECKPOINT_SUFFIXES):
        if not path.is_file():
            raise ConfigError([f"clip checkpoint {checkpoint!r} does not exist; give a .safetensors, .pt or .bin state dict file"])
        if not checkpoint.endswith(CHECKPOINT_SUFFIXES):
            raise ConfigError([f"clip checkpoint {checkpoint!r} is not a {', '.join(CHECKPOINT_SUFFIXES)} file"])
        _check_shapes(arch, path)
        return
    if not open_clip.get_pretrained_cfg(arch, checkpoint):
        tags = ", ".join(open_clip.list_pretrained_tags_by_model(arch)) or "none"
        raise ConfigError(
            [f"clip checkpoint {checkpoint!r} is neither a file nor an open_clip pretrained tag of {arch} (its tags: {tags})"]
        )
    if clip_checkpoint_file(arch, checkpoint) is None:
        raise ConfigError(
            [
                f"clip checkpoint {arch}:{checkpoint} is not in the local cache (nothing is downloaded): download it where "
                "there is internet and copy the cache here, or give a checkpoint file"
            ]
        )


def _check_shapes(arch: str, path: Path) -> None:
    found = _tensor_shapes(path)
    if any(name.startswith("module.") for name in found):  # a DataParallel save, as open_clip strips it
        found = {name.removeprefix("module."): shape for name, shape in found.items()}
    expected = {name: tuple(tensor.shape) for name, tensor in _meta_model(arch).state_dict().items()}
    problems = [f"{name} missing" for name in expected if name not in found]
    problems += [
        f"{name} is {list(found[name])}, {arch} has {list(shape)}"
        for name, shape in expected.items()
        if name in found and found[name] != shape
    ]
    problems += [f"{name} is not part of {arch}" for name in found if name not in expected]
    if problems:
        listed = "; ".join(problems[:MAX_LISTED]) + (f"; and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else "")
        raise ConfigError(
            [
                f"clip checkpoint {str(path)!r} does not fit the open_clip architecture {arch!r} ({len(problems)} tensors: {listed}); name the architecture it was trained as"
            ]
        )


def _tensor_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    try:
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as handle:
                return {name: tuple(handle.get_slice(name).get_shape()) for name in handle.keys()}
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - safetensors, pickle and zip each raise their own; all mean "unreadable"
        raise ConfigError([f"clip checkpoint {str(path)!r} is not a readable state dict ({type(error).__name__}: {error})"]) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ConfigError([f"clip checkpoint {str(path)!r} holds a {type(state).__name__}, not a state dict of tensors"])
    return {str(name): tuple(tensor.shape) for name, tensor in state.items() if isinstance(tensor, torch.Tensor)}
