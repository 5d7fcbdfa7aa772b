"""Mixed precision: bf16 autocast where the device has it, fp16 with a gradient scaler on older
CUDA cards, fp32 on a CPU by default (training.devices.choose_precision)."""

from __future__ import annotations

import contextlib

import torch

from training.devices import choose_precision


def resolve_precision(precision: str, device: torch.device) -> str:
    """`auto` becomes bf16 on a CUDA device with bf16 support, fp16 on one without, fp32 elsewhere.

    CPUs can run bf16 autocast too, but without AMX it is slower than fp32, so it is used on a
    CPU only when asked for explicitly.
    """
    bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    return choose_precision(precision, device.type, bf16)


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The forward-pass context: bf16 or fp16 autocast, or nothing for fp32.

    Weights and optimiser state stay fp32 (autocast casts per op); bf16 has fp32's range, so
    only fp16 needs its loss scaled (`grad_scaler`).
    """
    chosen = resolve_precision(precision, device)
    if chosen in ("bf16", "fp16"):
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16 if chosen == "bf16" else torch.float16)
    return contextlib.nullcontext()


def grad_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler:
    """Loss scaling for fp16 (small gradients would flush to zero in fp16); a pass-through otherwise."""
    return torch.amp.GradScaler(device.type, enabled=resolve_precision(precision, device) == "fp16")
