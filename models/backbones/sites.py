"""Per-architecture map of the sublayers whose outputs PETL modules wrap.

Method code asks for sites by kind and never branches on model names (the hook-map idea of
adapter-hub's `AdapterModelInterface`). An adapter sits on a sublayer's output before the
residual add: encoder self-attention and FFN; decoder self-attention, cross-attention and FFN.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn
from transformers import PreTrainedModel

SITE_KINDS = ("encoder.self_attn", "encoder.ffn", "decoder.self_attn", "decoder.cross_attn", "decoder.ffn")


@dataclass(frozen=True)
class Site:
    """One sublayer: `name` is unique in the model (e.g. "decoder.1.cross_attn")."""

    name: str
    kind: str
    module: nn.Module


def sublayer_sites(lm: PreTrainedModel) -> list[Site]:
    """All adapter sites of a T5 or BART model, in forward order."""
    model_type = lm.config.model_type
    if model_type in ("t5", "mt5"):
        return _t5_sites(lm)
    if model_type in ("bart", "mbart"):
        return _bart_sites(lm)
    raise ValueError(f"no sublayer map for model_type {model_type!r}; supported: t5, mt5, bart, mbart")


def _t5_sites(lm: PreTrainedModel) -> list[Site]:
    sites = []
    for i, block in enumerate(lm.encoder.block):
        sites.append(Site(f"encoder.{i}.self_attn", "encoder.self_attn", block.layer[0].SelfAttention))
        sites.append(Site(f"encoder.{i}.ffn", "encoder.ffn", block.layer[1].DenseReluDense))
    for i, block in enumerate(lm.decoder.block):
        sites.append(Site(f"decoder.{i}.self_attn", "decoder.self_attn", block.layer[0].SelfAttention))
        sites.append(Site(f"decoder.{i}.cross_attn", "decoder.cross_attn", block.layer[1].EncDecAttention))
        sites.append(Site(f"decoder.{i}.ffn", "decoder.ffn", block.layer[2].DenseReluDense))
    return sites


def _bart_sites(lm: PreTrainedModel) -> list[Site]:
    sites = []
    for i, layer in enumerate(lm.model.encoder.layers):
        sites.append(Site(f"encoder.{i}.self_attn", "encoder.self_attn", layer.self_attn))
        sites.append(Site(f"encoder.{i}.ffn", "encoder.ffn", layer.fc2))
    for i, layer in enumerate(lm.model.decoder.layers):
        sites.append(Site(f"decoder.{i}.self_attn", "decoder.self_attn", layer.self_attn))
        sites.append(Site(f"decoder.{i}.cross_attn", "decoder.cross_attn", layer.encoder_attn))
        sites.append(Site(f"decoder.{i}.ffn", "decoder.ffn", layer.fc2))
    return sites


def is_layernorm(module: nn.Module) -> bool:
    """LayerNorm-like modules of either family (T5 uses its own RMS-style T5LayerNorm)."""
    return isinstance(module, nn.LayerNorm) or type(module).__name__.endswith("LayerNorm")
