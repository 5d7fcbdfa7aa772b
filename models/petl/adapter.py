"""Bottleneck adapters (Houlsby et al. 2019; as run in VL-Adapter, PAPER.md §2).

`h = x + U(f(D x))` with `D: d -> d/r`, `U: d/r -> d`, on the output of each chosen sublayer
before its residual add. `U` starts at zero so the adapted model starts as the backbone.
Sharing across tasks: one adapter per task (multiple), one projection shared (half-shared),
or one adapter for all tasks (single).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from models.backbones.sites import SITE_KINDS, sublayer_sites
from models.config import FreezeConfig, SharingMode
from models.petl.hooks import wrap_output
from models.petl.registry import MethodSpec, register

ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU, "silu": nn.SiLU}


@dataclass(frozen=True)
class AdapterConfig:
    """Hyperparameters of the bottleneck adapter.

    Attributes:
        reduction_factor: r in d/r, the bottleneck width (ignored when `hidden_size` is set).
        hidden_size: explicit bottleneck width.
        activation: one of ACTIVATIONS.
        sites: sublayer kinds that get an adapter (default: all five of PAPER.md §2).
        shared_projection: for half-shared: "up" (the paper's 8.36%) or "down" is shared.
    """

    reduction_factor: int = 8
    hidden_size: int | None = None
    activation: str = "gelu"
    sites: tuple[str, ...] = SITE_KINDS
    shared_projection: str = "up"

    def problems(self) -> list[str]:
        found = []
        if self.reduction_factor < 1:
            found.append(f"adapter.reduction_factor must be >= 1, got {self.reduction_factor}")
        if self.hidden_size is not None and self.hidden_size < 1:
            found.append(f"adapter.hidden_size must be >= 1, got {self.hidden_size}")
        if self.activation not in ACTIVATIONS:
            found.append(f"adapter.activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}")
        unknown = sorted(set(self.sites) - set(SITE_KINDS))
        if unknown or not self.sites:
            found.append(f"adapter.sites must be a non-empty subset of {list(SITE_KINDS)}, got {list(self.sites)}")
        if self.shared_projection not in ("up", "down"):
            found.append(f"adapter.shared_projection must be 'up' or 'down', got {self.shared_projection!r}")
        return found

    def bottleneck(self, d_model: int) -> int:
        return self.hidden_size if self.hidden_size is not None else max(1, d_model // self.reduction_factor)


class TaskAdapter(nn.Module):
    """The adapters of one site, with down/up projections chosen per task by the sharing mode."""

    def __init__(self, d_model: int, hidden: int, activation: str, n_down: int, n_up: int, task_context):
        super().__init__()
        self.down = nn.ModuleList(nn.Linear(d_model, hidden) for _ in range(n_down))
        self.up = nn.ModuleList(nn.Linear(hidden, d_model) for _ in range(n_up))
        for up in self.up:
            nn.init.zeros_(up.weight)
            nn.init.zeros_(up.bias)
        self.act = ACTIVATIONS[activation]()
        self._task_context = [task_context]  # plain reference, not a submodule

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, T, d) -> (B, T, d)
        task = self._task_context[0].index() if len(self.down) > 1 or len(self.up) > 1 else 0
        down = self.down[min(task, len(self.down) - 1)]
        up = self.up[min(task, len(self.up) - 1)]
        return x + up(self.act(down(x)))


def projection_counts(sharing: SharingMode, n_tasks: int, shared_projection: str) -> tuple[int, int]:
    """(number of down projections, number of up projections) at one site."""
    if sharing is SharingMode.SINGLE:
        return 1, 1
    if sharing is SharingMode.MULTIPLE:
        return n_tasks, n_tasks
    return (n_tasks, 1) if shared_projection == "up" else (1, n_tasks)


def apply(model, config: AdapterConfig, sharing: SharingMode) -> None:
    """Insert adapters at the configured sites of `model.lm` (a `VLSeq2Seq`)."""
    d_model = model.lm.config.d_model
    n_down, n_up = projection_counts(sharing, len(model.task_context.tasks), config.shared_projection)
    adapters = nn.ModuleDict()
    for site in sublayer_sites(model.lm):
        if site.kind not in config.sites:
            continue
        adapter = TaskAdapter(d_model, config.bottleneck(d_model), config.activation, n_down, n_up, model.task_context)
        adapters[site.name.replace(".", "_")] = adapter
        wrap_output(site.module, adapter)
    model.petl = adapters


def suggest(trial) -> dict:
    return {"reduction_factor": trial.suggest_categorical("adapter.reduction_factor", [2, 4, 8, 16, 32, 64])}


SPEC = register(
    MethodSpec(
        name="adapter",
        paper="Houlsby et al., Parameter-Efficient Transfer Learning for NLP, ICML 2019",
        config_cls=AdapterConfig,
        apply=apply,
        suggest=suggest,
        freeze=FreezeConfig(train_language_model=False, train_layernorm=True, train_vl_projection=True),
        sharing_modes=(SharingMode.SINGLE, SharingMode.MULTIPLE, SharingMode.HALF_SHARED),
        learning_rate=1e-3,
    )
)
