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


class OutputDelta:
    """The forward hook of `add_to_output`: `output + delta(input)`.

    A callable object rather than a closure, so the branch stays reachable (`hook.delta`): a
    copy of the LM can find LoRA's hooks and drop them (models.petl.lora_merge), and a deep
    copy of the whole model points its hooks at the copied branches, not the original ones.
    """

    def __init__(self, delta: Callable[[torch.Tensor], torch.Tensor]):
        self.delta = delta

    def __call__(self, module, args, output):
        return output + self.delta(args[0]).to(output.dtype)


def add_to_output(layer: nn.Module, delta: Callable[[torch.Tensor], torch.Tensor]):
    """Add `delta(input)` to a layer's output: `y = layer(x) + delta(x)` (LoRA's parallel branch).

    Returns:
        The hook handle; `handle.remove()` detaches it.
    """
    return layer.register_forward_hook(OutputDelta(delta))


class OutputRewrite:
    """The forward hook of `rewrite_output`: `rewrite(layer, input, output)` replaces the output.

    For a method that needs the layer's own output and weights, not only its input (DoRA
    rescales the frozen linear's output). Like `OutputDelta`, a callable object that keeps the
    module reachable (`hook.rewrite`), so lora_merge can drop it and a deep copy follows it.
    """

    def __init__(self, rewrite: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]):
        self.rewrite = rewrite

    def __call__(self, module, args, output):
        return self.rewrite(module, args[0], output)


def rewrite_output(layer: nn.Module, rewrite: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]):
    """Replace a layer's output by `rewrite(layer, x, layer(x))`.

    Returns:
        The hook handle; `handle.remove()` detaches it.
    """
    return layer.register_forward_hook(OutputRewrite(rewrite))
