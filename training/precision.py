"""Mixed precision: bf16 autocast where the device supports it (issue: CPU by default, CUDA + bf16)."""

from __future__ import annotations

import contextlib

import torch


def resolve_precision(precision: str, device: torch.device) -> str:
    """`auto` becomes bf16 on a CUDA device with bf16 support, fp32 elsewhere.

    CPUs can run bf16 autocast too, but without AMX it is slower than fp32, so it is used on a
    CPU only when asked for explicitly.
    """
    if precision != "auto":
        return precision
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return "bf16"
    return "fp32"


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The forward-pass context: bf16 autocast, or nothing for fp32.

    Weights and optimiser state stay fp32 (autocast casts per op), so no loss scaling is needed.
    """
    if resolve_precision(precision, device) == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
