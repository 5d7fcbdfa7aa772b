"""Save and load only the trainable weights of a VL model (safetensors, never pickle)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Mapping

import torch

from safetensors.torch import load_file, save_file

from models.vl_model import VLSeq2Seq

WEIGHTS_FILE = "trainable.safetensors"


def trainable_state(model: VLSeq2Seq) -> dict:
    names = {name for name, p in model.named_parameters() if p.requires_grad}
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if k in names}


def save_trainable(model: VLSeq2Seq, folder: Path, config: dict) -> Path:
    """Write the trainable tensors and the trial config to `folder` atomically."""
    target = folder / WEIGHTS_FILE
    save_atomically(trainable_state(model), target, {"config": json.dumps(config)})
    return target


def save_atomically(tensors: Mapping[str, torch.Tensor], path: Path, metadata: Mapping[str, str]) -> None:
    """Write a safetensors file through a temporary file and a rename: `path` is always either
    the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", dir=path.parent)
    os.close(fd)
    try:
        save_file({name: t.detach().cpu().contiguous() for name, t in tensors.items()}, tmp, metadata=dict(metadata))
        # On disk before the rename, so a power loss cannot leave the name on a partial file.
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_trainable(model: VLSeq2Seq, path: Path) -> None:
    """Load saved trainable tensors into a model built from the same config.

    Raises:
        ValueError: the file's tensors do not match the model's trainable parameters.
    """
    state = load_file(str(path))
    expected = {name: tuple(t.shape) for name, t in trainable_state(model).items()}
    found = {name: tuple(t.shape) for name, t in state.items()}
    if found != expected:
        missing, extra = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
        reshaped = sorted(n for n in set(expected) & set(found) if expected[n] != found[n])
        raise ValueError(
            f"{path} does not match this configuration: missing {missing[:5]}, unexpected {extra[:5]}, "
            f"different shapes {reshaped[:5]}; rebuild the model from the config saved with the weights"
        )
    model.load_state_dict(state, strict=False)
