"""VL-PET: granularity-controlled modules for CLIP + BART/T5 (Hu et al., ICCV 2023, arXiv 2308.09804).

Encoder (every self-attention and FFN sublayer): a multi-head down adapter changes the
sublayer's output h, and a granularity-controlled matrix G scales the result before the
residual add:

    h' = h + U(f([D_1 h; ...; D_k h]))         D_i: d -> a/k (k heads), U: a -> d, f = GELU (tanh)
    out = s * G ⊙ h'                            x + out then goes through the residual add

G comes from the sublayer's input x (the residual stream entering the sublayer) and h':

    large     G = sigmoid(W_up f(W_down x))                 (B, N, d)  W_down: d -> g, W_up: g -> d
    middle_x  G = sigmoid(w · (x + h') + b)                 (B, N, 1)  one scale per token
    middle_y  G = 1 + v                                     (d,)       one scale per channel
    small     G = mean_tokens sigmoid(w · [x; h'] + b)      (B, 1, 1)  one scale per example

Decoder (every cross-attention): a value parallel adapter adds `U'(f(D' e))` to the value
projection `W_v e` of the encoder output e; the decoder's self-attention and FFN stay as they
are, and so do its LayerNorms (only the encoder's train: `FreezeConfig.train_decoder_layernorm`).

Checked against the authors' code (github.com/HenryHZY/VL-PET @ 7430cad):
`src/my_transformers/modeling_bart.py` (BartEncoderLayer: `use_encoder_adapter_down_multihead`,
`use_encoder_adapter_gating_{large_x_lowrank, middle_xy_add, middle_ia3_add, small_xy_cat}`;
BartAttentionWithValueAdapter: `attn_value_parallel_adapter`), `src/my_transformers/modeling_t5.py`
(T5LayerFF / T5LayerSelfAttention: the gate reads x before T5's pre-norm),
`src/trainer_base.py` (freezing, `weight_initialization`) and `scripts/image-text/*VL-PET-*.sh`.
The BART runs keep PyTorch's default initialisation of every linear and draw v ~ N(0, 0.02); the T5 runs zero the up
projections, the small and middle gates' linears and v (`zero_init=True`) and scale by s = 0.3.
Only middle_y with s = 1 and `zero_init` starts as the backbone; no paper run does, so the
method is not marked identity-at-init.

Counting (PAPER.md §3, the authors' `print_trainable_params_percentage`: trainable / all of
the VL model's parameters, CLIP not in it): VL-PET-large on clip-rn101+bart-base is
6,052,416 / 145,606,464 = 4.16% (published 4.16), small/middle_x/middle_y 2.98% (published
2.98). The match needs the encoder-only LayerNorms: with the decoder's 29,184 LayerNorm
parameters trained as well it would be 4.18% / 3.00%. The k concatenated down heads are one
d -> a linear split by rows: k changes neither the count nor the function, only the weights'
layout (kept as the paper names it). The T5-base run (`vl-pet-large-t5`) counts 17,582,208 /
240,620,160 = 7.31% on clip-rn101+t5-base; the authors' README publishes BART-base only.

Sharing across tasks: single only. The authors' encoder modules and gates are plain layers of
the encoder, not per-task modules, and their decoder adapter runs with `--use_single_adapter`;
tasks are told apart by their text prefixes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from models.backbones.sites import projections, sublayer_input, sublayer_sites
from models.config import FreezeConfig, SharingMode
from models.petl.hooks import add_to_output
from models.petl.registry import MethodSpec, RunPreset, register

GRANULARITIES = ("large", "middle_x", "middle_y", "small")


@dataclass(frozen=True)
class VLPetConfig:
    """Hyperparameters of VL-PET (sizes as reduction factors of d_model, like the adapter's).

    Attributes:
        granularity: the granularity-controlled matrix G, one of GRANULARITIES.
        reduction_factor: the encoder adapter's width a = d_model / r (paper: 96 on BART-base, r=8;
            192 on T5-base, r=4).
        heads: number k of down-projection heads; must divide a (paper: 4).
        gate_reduction_factor: the large gate's width g = d_model / r (paper: 96 / 192); other
            granularities have no such width.
        decoder_reduction_factor: the decoder's value parallel adapter width d_model / r (paper:
            96, r=8); None leaves the decoder without modules.
        gate_scale: s, a constant factor on the gated output (paper: 1 on BART, 0.3 on T5).
        zero_init: start the up projections, the small/middle gates and v at zero (the T5 runs).
    """

    granularity: str = "large"
    reduction_factor: int = 8
    heads: int = 4
    gate_reduction_factor: int = 8
    decoder_reduction_factor: int | None = 8
    gate_scale: float = 1.0
    zero_init: bool = False

    def problems(self) -> list[str]:
        found = []
        if self.granularity not in GRANULARITIES:
            found.append(
                f"vl_pet.granularity must be one of {list(GRANULARITIES)} (the paper's large, middleX, middleY, small), "
                f"got {self.granularity!r}"
            )
        for name in ("reduction_factor", "heads", "gate_reduction_factor"):
            if not _positive_int(getattr(self, name)):
                found.append(f"vl_pet.{name} must be an integer >= 1, got {getattr(self, name)!r}")
        if self.decoder_reduction_factor is not None and not _positive_int(self.decoder_reduction_factor):
            found.append(
                f"vl_pet.decoder_reduction_factor must be an integer >= 1, or null for no decoder module, "
                f"got {self.decoder_reduction_factor!r}"
            )
        if isinstance(self.gate_scale, bool) or not isinstance(self.gate_scale, (int, float)) or not self.gate_scale > 0:
            found.append(f"vl_pet.gate_scale must be a number > 0 (paper: 1.0 on BART, 0.3 on T5), got {self.gate_scale!r}")
        if not isinstance(self.zero_init, bool):
            found.append(f"vl_pet.zero_init must be true or false, got {self.zero_init!r}")
        return found


def backbone_problems(config: VLPetConfig, lm_config, freeze: FreezeConfig | None = None) -> list[str]:
    """Checks that need the language model's width (run by models.validation before building).

    Args:
        config: possibly invalid; invalid values are reported by `problems()` and skipped here.
        lm_config: the LM's transformers config (or the LM itself); None skips the checks.
        freeze: unused; part of `MethodSpec.backbone_problems`.
    """
    if lm_config is None:
        return []
    d_model = int(getattr(lm_config, "config", lm_config).d_model)
    found = []
    widths: dict[str, object] = {"reduction_factor": config.reduction_factor, "decoder_reduction_factor": config.decoder_reduction_factor}
    if config.granularity == "large":
        widths["gate_reduction_factor"] = config.gate_reduction_factor
    for name, factor in widths.items():
        if isinstance(factor, int) and _positive_int(factor) and factor > d_model:
            found.append(f"vl_pet.{name}={factor} leaves no width on d_model={d_model} (d_model // {factor} = 0); use at most {d_model}")
    width = d_model // config.reduction_factor if _positive_int(config.reduction_factor) else 0
    if width and _positive_int(config.heads) and width % config.heads:
        divisors = [k for k in range(1, width + 1) if width % k == 0]
        found.append(
            f"vl_pet.heads={config.heads} must divide the adapter width d_model // reduction_factor = {d_model} // "
            f"{config.reduction_factor} = {width}; pick heads among {divisors} or another reduction_factor"
        )
    return found


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _gelu() -> nn.Module:
    return nn.GELU(approximate="tanh")  # transformers' gelu_new, as the authors' code


def _linear(d_in: int, d_out: int, zero: bool) -> nn.Linear:
    layer = nn.Linear(d_in, d_out)
    if zero:
        nn.init.zeros_(layer.weight)
        nn.init.zeros_(layer.bias)
    return layer


class MultiHeadDownAdapter(nn.Module):
    """`h + U(f([D_1 h; ...; D_k h]))`: k down heads d -> a/k, concatenated, one up projection a -> d."""

    def __init__(self, d_model: int, width: int, heads: int, zero_init: bool):
        super().__init__()
        self.down = nn.ModuleList(nn.Linear(d_model, width // heads) for _ in range(heads))
        self.act = _gelu()
        self.up = _linear(width, d_model, zero_init)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        # h: (B, N, d) -> k x (B, N, a/k) -> (B, N, a) -> (B, N, d)
        return h + self.up(self.act(torch.cat([down(h) for down in self.down], dim=-1)))


class LargeGate(nn.Module):
    """G = sigmoid(W_up f(W_down x)): one scale per token and channel, (B, N, d)."""

    def __init__(self, d_model: int, width: int, zero_init: bool):
        super().__init__()
        self.down = nn.Linear(d_model, width)
        self.act = _gelu()
        self.up = _linear(width, d_model, zero_init)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.up(self.act(self.down(x))))  # (B, N, d)


class MiddleXGate(nn.Module):
    """G = sigmoid(w · (x + h') + b): one scale per token, (B, N, 1)."""

    def __init__(self, d_model: int, zero_init: bool):
        super().__init__()
        self.proj = _linear(d_model, 1, zero_init)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.proj(x + h))  # (B, N, 1)


class MiddleYGate(nn.Module):
    """G = 1 + v: one scale per channel, (d,), the same for every token and example."""

    def __init__(self, d_model: int, zero_init: bool):
        super().__init__()
        self.v = nn.Parameter(torch.zeros(d_model))
        if not zero_init:
            nn.init.normal_(self.v, std=0.02)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return 1 + self.v  # (d,)


class SmallGate(nn.Module):
    """G = mean over tokens of sigmoid(w · [x; h'] + b): one scale per example, (B, 1, 1).

    The mean runs over every position, padding included, as in the authors' code.
    """

    def __init__(self, d_model: int, zero_init: bool):
        super().__init__()
        self.proj = _linear(2 * d_model, 1, zero_init)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        scores = torch.sigmoid(self.proj(torch.cat([x, h], dim=-1)))  # (B, N, 1)
        return scores.mean(dim=1, keepdim=True)  # (B, 1, 1)


def make_gate(config: VLPetConfig, d_model: int) -> nn.Module:
    if config.granularity == "large":
        return LargeGate(d_model, d_model // config.gate_reduction_factor, config.zero_init)
    if config.granularity == "middle_x":
        return MiddleXGate(d_model, config.zero_init)
    if config.granularity == "middle_y":
        return MiddleYGate(d_model, config.zero_init)
    return SmallGate(d_model, config.zero_init)


class GatedSublayer(nn.Module):
    """The VL-PET module of one encoder sublayer: `s * G(x, h') ⊙ h'` with `h' = adapter(h)`.

    Two hooks, both bound methods so that a deep copy of the model points them at the copy:
    `capture`, a forward pre-hook on `sites.sublayer_input`, keeps the sublayer's input x just
    before the sublayer runs; `transform`, a forward hook on the sublayer, rewrites its output h.
    """

    def __init__(self, adapter: nn.Module, gate: nn.Module, scale: float):
        super().__init__()
        self.adapter = adapter
        self.gate = gate
        self.scale = scale
        self._inputs: list[torch.Tensor] = []  # x of the running forward pass only; not state

    def capture(self, module, args, kwargs) -> None:
        self._inputs = [args[0] if args else kwargs["hidden_states"]]

    def transform(self, module, args, output):
        if isinstance(output, tuple):
            return (self(output[0]),) + output[1:]
        return self(output)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        # h, x: (B, N, d) -> (B, N, d)
        x = self._inputs.pop()
        adapted = self.adapter(h)
        return self.scale * self.gate(x, adapted) * adapted


class ValueParallelAdapter(nn.Module):
    """`U'(f(D' e))`, added to the cross-attention's value projection `W_v e` of the encoder output e."""

    def __init__(self, d_model: int, width: int, zero_init: bool):
        super().__init__()
        self.down = nn.Linear(d_model, width)
        self.act = _gelu()
        self.up = _linear(width, d_model, zero_init)

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        # e: (B, S, d) -> (B, S, width) -> (B, S, d)
        return self.up(self.act(self.down(e)))


def apply(model, config: VLPetConfig, sharing: SharingMode) -> None:
    """Insert VL-PET's encoder modules and decoder value adapters into `model.lm` (a `VLSeq2Seq`)."""
    lm = model.lm
    d_model = lm.config.d_model
    modules = nn.ModuleDict()
    for site in sublayer_sites(lm):
        if site.stack != "encoder":
            continue
        adapter = MultiHeadDownAdapter(d_model, d_model // config.reduction_factor, config.heads, config.zero_init)
        module = GatedSublayer(adapter, make_gate(config, d_model), config.gate_scale)
        sublayer_input(lm, site).register_forward_pre_hook(module.capture, with_kwargs=True)
        site.module.register_forward_hook(module.transform)
        modules[site.name.replace(".", "_")] = module
    if config.decoder_reduction_factor is not None:
        width = d_model // config.decoder_reduction_factor
        for projection in projections(lm, ("v",)):
            if projection.site.kind != "decoder.cross_attn":
                continue
            value_adapter = ValueParallelAdapter(d_model, width, config.zero_init)
            add_to_output(projection.module, value_adapter)
            modules[projection.name.replace(".", "_")] = value_adapter
    model.petl = modules


# The authors' BART-base runs (scripts/image-text/VL-PET-*.sh): widths 96 = 768 / 8, 4 heads.
_BART_RUN = {"reduction_factor": 8, "heads": 4, "gate_reduction_factor": 8, "decoder_reduction_factor": 8}
# Encoder LayerNorms only (`--unfreeze_encoder_layer_norms`), plus the V->L projection.
_ENCODER_LN = FreezeConfig(train_layernorm=True, train_decoder_layernorm=False)
_PAPER = "github.com/HenryHZY/VL-PET README"


def _bart_preset(name: str, granularity: str, description: str, pct: float) -> RunPreset:
    return RunPreset(
        name,
        description,
        "vl_pet",
        {**_BART_RUN, "granularity": granularity},
        SharingMode.SINGLE,
        _ENCODER_LN,
        learning_rate=1e-3,
        paper_trainable_pct=pct,
    )


SPEC = register(
    MethodSpec(
        name="vl_pet",
        paper="Hu, Li, Lyu, Wang, VL-PET: Vision-and-Language Parameter-Efficient Tuning via Granularity Control, ICCV 2023",
        config_cls=VLPetConfig,
        apply=apply,
        backbone_problems=backbone_problems,
        freeze=FreezeConfig(train_language_model=False, train_layernorm=True, train_vl_projection=True, train_decoder_layernorm=False),
        sharing_modes=(SharingMode.SINGLE,),
        learning_rate=1e-3,
        sharing_note="VL-PET trains one module set for all tasks: its encoder modules and gates are not per task in the "
        "authors' code, and its decoder adapter ran with --use_single_adapter",
        search={
            "granularity": list(GRANULARITIES),
            "reduction_factor": [4, 8, 16],
            "gate_reduction_factor": [8, 16],
            "decoder_reduction_factor": [8, 16, None],
            "learning_rate_scale": [0.5, 1.0, 2.0],
        },
        tiny_learning_rate=5e-3,
        presets=(
            _bart_preset("vl-pet-large", "large", "VL-PET-large: per-token, per-channel gates (low-rank, width 96)", 4.16),
            _bart_preset("vl-pet-middle-x", "middle_x", "VL-PET-middleX: one gate per token", 2.98),
            _bart_preset("vl-pet-middle-y", "middle_y", "VL-PET-middleY: one scale per channel", 2.98),
            _bart_preset("vl-pet-small", "small", "VL-PET-small: one gate per example", 2.98),
            RunPreset(
                "vl-pet-large-t5",
                "VL-PET-large as run on T5-base: widths 192, scale 0.3, zero-initialised up projections",
                "vl_pet",
                {
                    "granularity": "large",
                    "reduction_factor": 4,
                    "heads": 4,
                    "gate_reduction_factor": 4,
                    "decoder_reduction_factor": 8,
                    "gate_scale": 0.3,
                    "zero_init": True,
                },
                SharingMode.SINGLE,
                _ENCODER_LN,
                learning_rate=3e-4,
            ),
        ),
    )
)
