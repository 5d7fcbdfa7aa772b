"""Attach a module to a sublayer's output with a forward hook, leaving the LM's code intact."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn


def wrap_output(sublayer: nn.Module, transform: Callable[[torch.Tensor], torch.Tensor]):
    """Apply `transform` to the sublayer's hidden-state output (the first item of a tuple).

    Returns:
        The hook handle; `handle.remove()` detaches it.
    """

    def hook(module, args, output):
        if isinstance(output, tuple):
            return (transform(output[0]),) + output[1:]
        return transform(output)

    return sublayer.register_forward_hook(hook)
