"""LoRA: low-rank updates of chosen linear layers (Hu et al., ICLR 2022; PAPER.md §2).

`y = W x + b + (alpha / r) * B A dropout(x)` with `A: d_in -> r` Kaiming-uniform initialised
and `B: r -> d_out` zero-initialised, so the adapted model starts as the backbone. The branch
runs in a forward hook, so the LM's modules and state-dict names stay untouched and a
configuration exports to peft's format (`export_peft`, models.petl.peft_format) or merges into
the LM's weights (models.petl.lora_merge). VL-Adapter's run: query and value projections of
all 18 attention modules of BART-base, rank 128, alpha 32, dropout 0.1, and every bias of the
LM trained too (`FreezeConfig.train_bias`, this method's default freeze).

`init="pissa"` starts A and B from the weight's principal singular triplets and freezes the
residual instead of W (PiSSA, models.petl.pissa; peft's `init_lora_weights="pissa"`); the
rank must then fit every targeted weight, which `lm_problems` checks against the LM.

Sharing across tasks: one A/B pair for all tasks (single), one per task (multiple), or one
side shared with the other per task (half-shared: "up" = B shared, "down" = A shared).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import cast

import torch
from torch import nn
from transformers import PreTrainedModel

from models.backbones.sites import PROJECTION_ROLES, projections
from models.config import FreezeConfig, SharingMode
from models.petl.adapter import projection_counts
from models.petl.hooks import add_to_output
from models.petl.peft_format import export_peft  # noqa: F401  (its home before peft_format; callers import it from here)
from models.petl.pissa import INITS, principal_factors, rank_problems
from models.petl.registry import MethodSpec, RunPreset, register


@dataclass(frozen=True)
class LoraConfig:
    """Hyperparameters of LoRA.

    Attributes:
        rank: r, the rank of the update.
        alpha: the update is scaled by alpha / r.
        dropout: dropout on the branch's input.
        targets: roles of the adapted linears: attention "q", "k", "v", "o" (every attention
            module) and FFN "ffn_in", "ffn_out" (every FFN).
        shared_projection: for half-shared: "up" (B) or "down" (A) is shared across tasks.
        init: "default" (A Kaiming-uniform, B zero) or "pissa" (A, B from the top-r singular
            triplets of the weight, which becomes the residual; models.petl.pissa).
    """

    rank: int = 8
    alpha: float = 32.0
    dropout: float = 0.1
    targets: tuple[str, ...] = ("q", "v")
    shared_projection: str = "up"
    init: str = "default"

    def problems(self) -> list[str]:
        return lora_problems("lora", self)

    @property
    def scaling(self) -> float:
        return self.alpha / self.rank


def lora_problems(prefix: str, config: LoraConfig) -> list[str]:
    """Checks shared by every LoRA-shaped config (LoRA, DoRA), each naming the value, the rule and the fix."""
    found = []
    if config.rank < 1:
        found.append(f"{prefix}.rank must be >= 1, got {config.rank}")
    if not config.alpha > 0:
        found.append(f"{prefix}.alpha must be > 0, got {config.alpha}")
    if not 0 <= config.dropout < 1:
        found.append(f"{prefix}.dropout must be in [0, 1), got {config.dropout}")
    unknown = sorted(set(config.targets) - set(PROJECTION_ROLES))
    if unknown or not config.targets:
        found.append(f"{prefix}.targets must be a non-empty subset of {list(PROJECTION_ROLES)}, got {list(config.targets)}")
    if config.shared_projection not in ("up", "down"):
        found.append(f"{prefix}.shared_projection must be 'up' or 'down', got {config.shared_projection!r}")
    if config.init not in INITS:
        found.append(f"{prefix}.init must be one of {list(INITS)}, got {config.init!r}")
    return found


def lm_problems(config: LoraConfig, lm: PreTrainedModel) -> list[str]:
    """LoRA's checks against the backbone: a PiSSA rank must fit every targeted weight."""
    return rank_problems("lora", config, lm)


class LoraBranch(nn.Module):
    """The low-rank branch of one linear layer, with A/B chosen per task by the sharing mode.

    Args:
        path: the adapted linear's dotted name inside the LM (peft's target name).
    """

    def __init__(self, base: nn.Linear, path: str, config: LoraConfig, n_down: int, n_up: int, task_context):
        super().__init__()
        self.path = path
        self.scaling = config.scaling
        downs = [nn.Linear(base.in_features, config.rank, bias=False) for _ in range(n_down)]
        ups = [nn.Linear(config.rank, base.out_features, bias=False) for _ in range(n_up)]
        self.lora_A = nn.ModuleList(downs)
        self.lora_B = nn.ModuleList(ups)
        for A in downs:
            nn.init.kaiming_uniform_(A.weight, a=math.sqrt(5))  # as loralib and peft
        for B in ups:
            nn.init.zeros_(B.weight)
        if config.init == "pissa" and not base.weight.is_meta:  # on meta (counting) only the shapes matter
            self._start_from_principal_triplets(base, config)
        self.dropout = nn.Dropout(config.dropout) if config.dropout > 0 else nn.Identity()
        self._task_context = [task_context]  # plain reference, not a submodule

    @torch.no_grad()
    def _start_from_principal_triplets(self, base: nn.Linear, config: LoraConfig) -> None:
        # Every task's pair starts from the same triplets, so W_res + s B A = W for each task.
        A, B, residual = principal_factors(base.weight, config.rank, config.scaling)
        for down in self.lora_A:
            cast(nn.Linear, down).weight.copy_(A)
        for up in self.lora_B:
            cast(nn.Linear, up).weight.copy_(B)
        base.weight.copy_(residual)

    def active_task(self) -> int:
        """The active task's index when the pairs differ per task, else 0 (no task needed)."""
        return self._task_context[0].index() if len(self.lora_A) > 1 or len(self.lora_B) > 1 else 0

    def pair(self, task: int | None = None) -> tuple[nn.Linear, nn.Linear]:
        """The (A, B) used for task index `task` (None: the active task, or the only pair)."""
        if task is None:
            task = self.active_task()
        # nn.ModuleList is not generic: lora_A and lora_B hold nn.Linear only.
        A = cast(nn.Linear, self.lora_A[min(task, len(self.lora_A) - 1)])
        B = cast(nn.Linear, self.lora_B[min(task, len(self.lora_B) - 1)])
        return A, B

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, T, d_in) -> (B, T, r) -> (B, T, d_out)
        A, B = self.pair()
        return B(A(self.dropout(x))) * self.scaling


def apply(model, config: LoraConfig, sharing: SharingMode) -> None:
    """Add LoRA branches to the targeted linears of `model.lm` (a `VLSeq2Seq`)."""
    insert_branches(model, config, sharing, LoraBranch, add_to_output)


def insert_branches(model, config: LoraConfig, sharing: SharingMode, branch_cls: type[LoraBranch], attach) -> None:
    """Build a `branch_cls` per targeted linear, hook it on with `attach(linear, branch)`, keep them in `model.petl`."""
    n_down, n_up = projection_counts(sharing, len(model.task_context.tasks), config.shared_projection)
    branches = nn.ModuleDict()
    for projection in projections(model.lm, config.targets):
        branch = branch_cls(projection.module, projection.path, config, n_down, n_up, model.task_context)
        branches[projection.name.replace(".", "_")] = branch
        attach(projection.module, branch)
    model.petl = branches


_PAPER_RUN = {"rank": 128, "alpha": 32.0, "dropout": 0.1, "targets": ("q", "v")}
_PAPER_FREEZE = FreezeConfig(train_layernorm=False, train_bias=True)  # every LM bias, not LN weights


# The default space's LoRA block; DoRA searches the same grid, so the two compare at equal sizes.
LORA_SEARCH = {
    "rank": [2, 4, 8, 16, 32, 64, 128],
    "alpha": [16.0, 32.0],
    "sharing": ["single", "multiple"],
    "learning_rate_scale": [0.5, 1.0, 2.0],
}


SPEC = register(
    MethodSpec(
        name="lora",
        paper="Hu et al., LoRA: Low-Rank Adaptation of Large Language Models, ICLR 2022",
        config_cls=LoraConfig,
        apply=apply,
        lm_problems=lm_problems,
        freeze=FreezeConfig(train_language_model=False, train_layernorm=False, train_vl_projection=True, train_bias=True),
        sharing_modes=(SharingMode.SINGLE, SharingMode.MULTIPLE, SharingMode.HALF_SHARED),
        learning_rate=1e-3,
        identity_at_init=True,
        search=LORA_SEARCH,
        tiny_learning_rate=5e-3,
        presets=(
            RunPreset(
                "single-lora",
                "one LoRA for all tasks",
                "lora",
                _PAPER_RUN,
                SharingMode.SINGLE,
                _PAPER_FREEZE,
                paper_trainable_pct=5.93,
                warm_start_rank=4,
            ),
            RunPreset(
                "multiple-lora",
                "one LoRA per task",
                "lora",
                _PAPER_RUN,
                SharingMode.MULTIPLE,
                _PAPER_FREEZE,
                size_sibling="single-lora",
                warm_start_rank=7,
            ),
            RunPreset(
                "single-pissa",
                "one LoRA for all tasks, started from W's principal singular triplets (PiSSA; no CLIP-BART run published)",
                "lora",
                {**_PAPER_RUN, "init": "pissa"},
                SharingMode.SINGLE,
                _PAPER_FREEZE,
                size_sibling="single-lora",
            ),
        ),
    )
)
