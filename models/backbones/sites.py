"""Per-architecture map of the places PETL modules attach to, for T5 and BART.

Method code asks for sites by kind and never branches on model names (the hook-map idea of
adapter-hub's `AdapterModelInterface`). Two kinds of places:

- sublayer sites: an adapter sits on a sublayer's output before the residual add: encoder
  self-attention and FFN; decoder self-attention, cross-attention and FFN (PAPER.md §2);
- linear projections inside those sublayers (attention q/k/v/o, FFN in/out) for LoRA.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from torch import nn
from transformers import PreTrainedModel

SITE_KINDS = ("encoder.self_attn", "encoder.ffn", "decoder.self_attn", "decoder.cross_attn", "decoder.ffn")
ATTENTION_KINDS = ("encoder.self_attn", "decoder.self_attn", "decoder.cross_attn")
PROJECTION_ROLES = ("q", "k", "v", "o", "ffn_in", "ffn_out")


@dataclass(frozen=True)
class Site:
    """One sublayer: `name` is unique in the model (e.g. "decoder.1.cross_attn").

    Attributes:
        name: "<stack>.<layer>.<position>".
        kind: "<stack>.<position>", one of SITE_KINDS.
        module: the sublayer whose output the adapter transforms.
        layer: index of the layer within its stack.
    """

    name: str
    kind: str
    module: nn.Module
    layer: int

    @property
    def stack(self) -> str:
        return self.kind.split(".")[0]


@dataclass(frozen=True)
class Projection:
    """One linear layer inside a sublayer, e.g. the query projection of "encoder.0.self_attn".

    Attributes:
        name: "<site name>.<role>" (e.g. "encoder.0.self_attn.q"); gated FFNs add ".0"/".1".
        role: one of PROJECTION_ROLES.
        site: the sublayer it belongs to.
        path: the module's dotted name inside the language model (peft's target name).
        module: the `nn.Linear` itself.
    """

    name: str
    role: str
    site: Site
    path: str
    module: nn.Linear


# Attribute names of each family: attention projections and FFN linears, per role.
_ROLE_ATTRS: dict[str, dict[str, tuple[str, ...]]] = {
    "t5": {"q": ("q",), "k": ("k",), "v": ("v",), "o": ("o",), "ffn_in": ("wi", "wi_0", "wi_1"), "ffn_out": ("wo",)},
    "bart": {
        "q": ("q_proj",),
        "k": ("k_proj",),
        "v": ("v_proj",),
        "o": ("out_proj",),
        "ffn_in": ("fc1",),
        "ffn_out": ("fc2",),
    },
}


def _family(lm: PreTrainedModel) -> str:
    model_type = lm.config.model_type
    if model_type in ("t5", "mt5"):
        return "t5"
    if model_type in ("bart", "mbart"):
        return "bart"
    raise ValueError(f"no sublayer map for model_type {model_type!r}; supported: t5, mt5, bart, mbart")


def sublayer_sites(lm: PreTrainedModel) -> list[Site]:
    """All adapter sites of a T5 or BART model, in forward order."""
    return _t5_sites(lm) if _family(lm) == "t5" else _bart_sites(lm)


def stack_depths(lm: PreTrainedModel) -> dict[str, int]:
    """Number of layers of the encoder and of the decoder."""
    depths = {"encoder": 0, "decoder": 0}
    for site in sublayer_sites(lm):
        depths[site.stack] = max(depths[site.stack], site.layer + 1)
    return depths


def _t5_sites(lm: PreTrainedModel) -> list[Site]:
    # Walked by attribute name: torch types every submodule attribute Tensor | Module.
    t5: Any = lm
    sites = []
    for i, block in enumerate(t5.encoder.block):
        sites.append(Site(f"encoder.{i}.self_attn", "encoder.self_attn", block.layer[0].SelfAttention, i))
        sites.append(Site(f"encoder.{i}.ffn", "encoder.ffn", block.layer[1].DenseReluDense, i))
    for i, block in enumerate(t5.decoder.block):
        sites.append(Site(f"decoder.{i}.self_attn", "decoder.self_attn", block.layer[0].SelfAttention, i))
        sites.append(Site(f"decoder.{i}.cross_attn", "decoder.cross_attn", block.layer[1].EncDecAttention, i))
        sites.append(Site(f"decoder.{i}.ffn", "decoder.ffn", block.layer[2].DenseReluDense, i))
    return sites


def _bart_sites(lm: PreTrainedModel) -> list[Site]:
    # BART's FFN is two linears inside the layer; its output before the residual add is fc2's.
    sites = []
    for i, layer in enumerate(lm.model.encoder.layers):
        sites.append(Site(f"encoder.{i}.self_attn", "encoder.self_attn", layer.self_attn, i))
        sites.append(Site(f"encoder.{i}.ffn", "encoder.ffn", layer.fc2, i))
    for i, layer in enumerate(lm.model.decoder.layers):
        sites.append(Site(f"decoder.{i}.self_attn", "decoder.self_attn", layer.self_attn, i))
        sites.append(Site(f"decoder.{i}.cross_attn", "decoder.cross_attn", layer.encoder_attn, i))
        sites.append(Site(f"decoder.{i}.ffn", "decoder.ffn", layer.fc2, i))
    return sites


def sublayer_input(lm: PreTrainedModel, site: Site) -> nn.Module:
    """The module whose first input is the residual stream entering `site`'s sublayer.

    A gate that reads the sublayer's input x as well as its output (VL-PET) hooks this module's
    input: T5's whole layer (x before its pre-norm), BART's attention itself, and BART's fc1 for
    the FFN (x after the previous post-norm), where the FFN site is fc2.
    """
    if _family(lm) == "t5":
        t5: Any = lm
        block = (t5.encoder if site.stack == "encoder" else t5.decoder).block[site.layer]
        position = {"self_attn": 0, "cross_attn": 1}.get(site.kind.split(".")[1], len(block.layer) - 1)
        return block.layer[position]
    if site.kind.endswith("ffn"):
        bart_layer: Any = _ffn_container(lm, site)
        return bart_layer.fc1
    return site.module


def stack_modules(lm: PreTrainedModel, stack: str) -> nn.Module:
    """The encoder or the decoder stack of a T5 or BART model."""
    return lm.get_encoder() if stack == "encoder" else lm.get_decoder()


def projections(lm: PreTrainedModel, roles: tuple[str, ...]) -> list[Projection]:
    """The linear layers of the given roles, in forward order.

    Attention roles (q, k, v, o) come from every attention sublayer; FFN roles from every FFN.

    Raises:
        ValueError: an unknown role.
    """
    unknown = sorted(set(roles) - set(PROJECTION_ROLES))
    if unknown:
        raise ValueError(f"unknown projection roles {unknown}; known: {list(PROJECTION_ROLES)}")
    family = _family(lm)
    paths = {id(module): path for path, module in lm.named_modules()}
    found = []
    for site in sublayer_sites(lm):
        container = _ffn_container(lm, site) if site.kind.endswith("ffn") else site.module
        site_roles = ("ffn_in", "ffn_out") if site.kind.endswith("ffn") else ("q", "k", "v", "o")
        for role in site_roles:
            if role not in roles:
                continue
            attrs = [a for a in _ROLE_ATTRS[family][role] if isinstance(getattr(container, a, None), nn.Linear)]
            for attr in attrs:
                module = getattr(container, attr)
                suffix = f".{attr[-1]}" if len(attrs) > 1 else ""  # gated T5 FFN: wi_0, wi_1
                found.append(Projection(f"{site.name}.{role}{suffix}", role, site, paths[id(module)], module))
    return found


def _ffn_container(lm: PreTrainedModel, site: Site) -> nn.Module:
    # T5's FFN site is the DenseReluDense module holding wi/wo; BART's site is fc2 itself,
    # whose parent layer holds fc1 and fc2.
    if _family(lm) == "t5":
        return site.module
    stack = lm.model.encoder if site.stack == "encoder" else lm.model.decoder
    return stack.layers[site.layer]


def is_layernorm(module: nn.Module) -> bool:
    """LayerNorm-like modules of either family (T5 uses its own RMS-style T5LayerNorm)."""
    return isinstance(module, nn.LayerNorm) or type(module).__name__.endswith("LayerNorm")


def word_embedding_modules(lm: PreTrainedModel) -> list[nn.Module]:
    """The token embedding and, for BART, the learned position embeddings."""
    found = [lm.get_input_embeddings()]
    for name, module in lm.named_modules():
        if name.endswith("embed_positions"):
            found.append(module)
    return found


def stack_blocks(lm: PreTrainedModel) -> dict[str, list[nn.Module]]:
    """The transformer layers of the encoder and of the decoder, in forward order.

    A layer's output (its first item when it returns a tuple) is the hidden state the next
    layer reads: what a ladder side network taps (models.petl.lst).
    """
    if _family(lm) == "t5":
        t5: Any = lm
        return {"encoder": list(t5.encoder.block), "decoder": list(t5.decoder.block)}
    return {"encoder": list(lm.model.encoder.layers), "decoder": list(lm.model.decoder.layers)}


def side_widths(config: Any) -> dict[str, int]:
    """The widths a narrowed copy of the LM divides by its reduction factor, by config key.

    T5's attention width is heads x d_kv; BART's is d_model split over its heads, so the head
    count must divide the narrowed d_model ("heads" is listed for that check, never divided).
    """
    if config.model_type in ("t5", "mt5"):
        return {"d_model": config.d_model, "d_kv": config.d_kv, "d_ff": config.d_ff}
    if config.model_type in ("bart", "mbart"):
        return {
            "d_model": config.d_model,
            "encoder_ffn_dim": config.encoder_ffn_dim,
            "decoder_ffn_dim": config.decoder_ffn_dim,
        }
    raise ValueError(f"no side-network map for model_type {config.model_type!r}; supported: t5, mt5, bart, mbart")


def attention_heads(config: Any) -> dict[str, int]:
    """Heads per stack: a BART side network keeps them, so they must divide its narrowed d_model."""
    if config.model_type in ("t5", "mt5"):
        return {}  # T5 narrows d_kv per head instead
    return {"encoder_attention_heads": config.encoder_attention_heads, "decoder_attention_heads": config.decoder_attention_heads}


def narrowed_config(config: Any, reduction: int, encoder_layers: int, decoder_layers: int) -> Any:
    """A copy of an LM config with every width divided by `reduction` and the given depths.

    The heads are kept (as LST's code keeps them), so each head is `reduction` times narrower.
    """
    narrow = copy.deepcopy(config)
    for key, width in side_widths(config).items():
        setattr(narrow, key, width // reduction)
    if config.model_type in ("t5", "mt5"):
        narrow.num_layers, narrow.num_decoder_layers = encoder_layers, decoder_layers
    else:
        narrow.encoder_layers, narrow.decoder_layers = encoder_layers, decoder_layers
    return narrow


def new_stacks(lm: PreTrainedModel, config: Any) -> tuple[nn.Module, nn.Module]:
    """A fresh encoder and decoder stack of `lm`'s family built from `config`, with no word
    embedding (they are fed embeddings): the body of a side network (models.petl.lst)."""
    encoder_cls, decoder_cls = type(lm.get_encoder()), type(lm.get_decoder())
    if _family(lm) == "t5":
        # T5 builds both stacks from one class; the decoder is told apart by its config.
        encoder_config, decoder_config = copy.deepcopy(config), copy.deepcopy(config)
        encoder_config.is_decoder, encoder_config.use_cache = False, False
        decoder_config.is_decoder, decoder_config.num_layers = True, config.num_decoder_layers
        encoder, decoder = encoder_cls(encoder_config), decoder_cls(decoder_config)
    else:
        encoder, decoder = encoder_cls(config), decoder_cls(config)
    for stack in (encoder, decoder):
        stack.embed_tokens = None  # a vocabulary-sized table that inputs_embeds never reads
    return encoder, decoder
