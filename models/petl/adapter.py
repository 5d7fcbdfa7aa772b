"""Bottleneck adapters (Houlsby et al. 2019; as run in VL-Adapter, PAPER.md §2).

`h = x + U(f(D x))` with `D: d -> d/r`, `U: d/r -> d`, on the output of each chosen sublayer
before its residual add. `U` starts at zero so the adapted model starts as the backbone.
Sharing across tasks: one adapter per task (multiple), one projection shared (half-shared),
or one adapter for all tasks (single). An optional LayerNorm normalises the adapter's input
("before", travels with D) or its output ("after", travels with U).

The projections come from a factory, so Compacter (models.petl.compacter) is this adapter with
PHM projections.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from models.backbones.sites import SITE_KINDS, sublayer_sites
from models.config import FreezeConfig, SharingMode
from models.petl.hooks import wrap_output
from models.petl.registry import MethodSpec, RunPreset, register

ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU, "silu": nn.SiLU}
LAYER_NORM_PLACES = ("none", "before", "after")

# make_linear(d_in, d_out, zero_init) -> a module mapping (..., d_in) to (..., d_out)
LinearFactory = Callable[[int, int, bool], nn.Module]


@dataclass(frozen=True)
class AdapterConfig:
    """Hyperparameters of the bottleneck adapter.

    Attributes:
        reduction_factor: r in d/r, the bottleneck width (ignored when `hidden_size` is set).
        hidden_size: explicit bottleneck width.
        activation: one of ACTIVATIONS.
        sites: sublayer kinds that get an adapter (default: all five of PAPER.md §2).
        shared_projection: for half-shared: "up" (the paper's 8.36%) or "down" is shared.
        layer_norm: "none" (the paper), or a LayerNorm "before" D or "after" U inside the adapter.
    """

    reduction_factor: int = 8
    hidden_size: int | None = None
    activation: str = "gelu"
    sites: tuple[str, ...] = SITE_KINDS
    shared_projection: str = "up"
    layer_norm: str = "none"

    def problems(self) -> list[str]:
        return bottleneck_problems("adapter", self)

    def bottleneck(self, d_model: int) -> int:
        return self.hidden_size if self.hidden_size is not None else max(1, d_model // self.reduction_factor)


def bottleneck_problems(prefix: str, config) -> list[str]:
    """Checks shared by every bottleneck-shaped config (adapter, Compacter)."""
    found = []
    if config.reduction_factor < 1:
        found.append(f"{prefix}.reduction_factor must be >= 1, got {config.reduction_factor}")
    if config.hidden_size is not None and config.hidden_size < 1:
        found.append(f"{prefix}.hidden_size must be >= 1, got {config.hidden_size}")
    if config.activation not in ACTIVATIONS:
        found.append(f"{prefix}.activation must be one of {sorted(ACTIVATIONS)}, got {config.activation!r}")
    unknown = sorted(set(config.sites) - set(SITE_KINDS))
    if unknown or not config.sites:
        found.append(f"{prefix}.sites must be a non-empty subset of {list(SITE_KINDS)}, got {list(config.sites)}")
    if config.shared_projection not in ("up", "down"):
        found.append(f"{prefix}.shared_projection must be 'up' or 'down', got {config.shared_projection!r}")
    if config.layer_norm not in LAYER_NORM_PLACES:
        found.append(f"{prefix}.layer_norm must be one of {list(LAYER_NORM_PLACES)}, got {config.layer_norm!r}")
    return found


class TaskAdapter(nn.Module):
    """The adapters of one site, with down/up sides chosen per task by the sharing mode.

    Args:
        down: one module per down projection (d -> h), possibly preceded by a LayerNorm.
        up: one module per up projection (h -> d), possibly followed by a LayerNorm.
        activation: key of ACTIVATIONS.
        task_context: the model's `TaskContext`; read when there is more than one of a side.
    """

    def __init__(self, down: list[nn.Module], up: list[nn.Module], activation: str, task_context):
        super().__init__()
        self.down = nn.ModuleList(down)
        self.up = nn.ModuleList(up)
        self.act = ACTIVATIONS[activation]()
        self._task_context = [task_context]  # plain reference, not a submodule

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, T, d) -> (B, T, d)
        task = self._task_context[0].index() if len(self.down) > 1 or len(self.up) > 1 else 0
        down = self.down[min(task, len(self.down) - 1)]
        up = self.up[min(task, len(self.up) - 1)]
        return x + up(self.act(down(x)))  # (B, T, h) inside


def projection_counts(sharing: SharingMode, n_tasks: int, shared_projection: str) -> tuple[int, int]:
    """(number of down projections, number of up projections) at one site."""
    if sharing is SharingMode.SINGLE:
        return 1, 1
    if sharing is SharingMode.MULTIPLE:
        return n_tasks, n_tasks
    return (n_tasks, 1) if shared_projection == "up" else (1, n_tasks)


def linear(d_in: int, d_out: int, zero_init: bool) -> nn.Linear:
    layer = nn.Linear(d_in, d_out)
    if zero_init:
        nn.init.zeros_(layer.weight)
        nn.init.zeros_(layer.bias)
    return layer


def insert_adapters(model, config, sharing: SharingMode, make_linear: LinearFactory) -> nn.ModuleDict:
    """Hook a `TaskAdapter` onto every configured site of `model.lm`; returns them by site.

    Args:
        model: a `VLSeq2Seq`.
        config: an adapter-shaped config (sites, bottleneck(), activation, layer_norm, shared_projection).
        sharing: the sharing mode across `model.task_context.tasks`.
        make_linear: builds one projection; the up projection is asked for zero-initialised.
    """
    d_model = model.lm.config.d_model
    hidden = config.bottleneck(d_model)
    n_down, n_up = projection_counts(sharing, len(model.task_context.tasks), config.shared_projection)
    adapters = nn.ModuleDict()
    for site in sublayer_sites(model.lm):
        if site.kind not in config.sites:
            continue
        down = [_down_side(make_linear(d_model, hidden, False), d_model, config.layer_norm) for _ in range(n_down)]
        up = [_up_side(make_linear(hidden, d_model, True), d_model, config.layer_norm) for _ in range(n_up)]
        adapter = TaskAdapter(down, up, config.activation, model.task_context)
        adapters[site.name.replace(".", "_")] = adapter
        wrap_output(site.module, adapter)
    return adapters


def _down_side(projection: nn.Module, d_model: int, layer_norm: str) -> nn.Module:
    return nn.Sequential(nn.LayerNorm(d_model), projection) if layer_norm == "before" else projection


def _up_side(projection: nn.Module, d_model: int, layer_norm: str) -> nn.Module:
    # LayerNorm(0) is its bias, zero at init: an "after" norm keeps the adapter an identity.
    return nn.Sequential(projection, nn.LayerNorm(d_model)) if layer_norm == "after" else projection


def apply(model, config: AdapterConfig, sharing: SharingMode) -> None:
    """Insert adapters at the configured sites of `model.lm` (a `VLSeq2Seq`)."""
    model.petl = insert_adapters(model, config, sharing, linear)


_PAPER_SIZE = {"reduction_factor": 8}  # the paper's runs (PAPER.md §2)
_WITH_LN = FreezeConfig(train_layernorm=True)  # adapters train the LM's LayerNorms too


SPEC = register(
    MethodSpec(
        name="adapter",
        paper="Houlsby et al., Parameter-Efficient Transfer Learning for NLP, ICML 2019",
        config_cls=AdapterConfig,
        apply=apply,
        freeze=FreezeConfig(train_language_model=False, train_layernorm=True, train_vl_projection=True),
        sharing_modes=(SharingMode.SINGLE, SharingMode.MULTIPLE, SharingMode.HALF_SHARED),
        learning_rate=1e-3,
        identity_at_init=True,
        search={
            "reduction_factor": [4, 8, 16, 32, 64],
            "sharing": ["single", "multiple", "half-shared"],
            "learning_rate_scale": [0.5, 1.0, 2.0],
        },
        tiny_learning_rate=5e-3,
        presets=(
            RunPreset(
                "single-adapter",
                "one adapter for all tasks",
                "adapter",
                _PAPER_SIZE,
                SharingMode.SINGLE,
                _WITH_LN,
                paper_trainable_pct=4.18,
                warm_start_rank=1,
            ),
            RunPreset(
                "multiple-adapters",
                "one adapter per task",
                "adapter",
                _PAPER_SIZE,
                SharingMode.MULTIPLE,
                _WITH_LN,
                learning_rate=3e-4,
                size_sibling="single-adapter",
                warm_start_rank=5,
            ),
            RunPreset(
                "half-shared-adapters",
                "shared up projection, per-task down projections",
                "adapter",
                {**_PAPER_SIZE, "shared_projection": "up"},
                SharingMode.HALF_SHARED,
                _WITH_LN,
                learning_rate=3e-4,
                size_sibling="single-adapter",
                warm_start_rank=6,
            ),
        ),
    )
)
