"""LoRA: low-rank updates of chosen linear layers (Hu et al., ICLR 2022; PAPER.md §2).

`y = W x + b + (alpha / r) * B A dropout(x)` with `A: d_in -> r` Kaiming-uniform initialised
and `B: r -> d_out` zero-initialised, so the adapted model starts as the backbone. The branch
runs in a forward hook, so the LM's modules and state-dict names stay untouched and a
configuration exports to peft's format (`export_peft`). VL-Adapter's run: query and value
projections of all 18 attention modules of BART-base, rank 128, alpha 32, dropout 0.1, and
every bias of the LM trained too (`FreezeConfig.train_bias`, this method's default freeze).

Sharing across tasks: one A/B pair for all tasks (single), one per task (multiple), or one
side shared with the other per task (half-shared: "up" = B shared, "down" = A shared).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import torch
from torch import nn

from models.backbones.sites import PROJECTION_ROLES, projections
from models.config import FreezeConfig, SharingMode
from models.petl.adapter import projection_counts
from models.petl.hooks import add_to_output
from models.petl.registry import MethodSpec, RunPreset, register

PEFT_PREFIX = "base_model.model."


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
    """

    rank: int = 8
    alpha: float = 32.0
    dropout: float = 0.1
    targets: tuple[str, ...] = ("q", "v")
    shared_projection: str = "up"

    def problems(self) -> list[str]:
        found = []
        if self.rank < 1:
            found.append(f"lora.rank must be >= 1, got {self.rank}")
        if not self.alpha > 0:
            found.append(f"lora.alpha must be > 0, got {self.alpha}")
        if not 0 <= self.dropout < 1:
            found.append(f"lora.dropout must be in [0, 1), got {self.dropout}")
        unknown = sorted(set(self.targets) - set(PROJECTION_ROLES))
        if unknown or not self.targets:
            found.append(f"lora.targets must be a non-empty subset of {list(PROJECTION_ROLES)}, got {list(self.targets)}")
        if self.shared_projection not in ("up", "down"):
            found.append(f"lora.shared_projection must be 'up' or 'down', got {self.shared_projection!r}")
        return found

    @property
    def scaling(self) -> float:
        return self.alpha / self.rank


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
        self.dropout = nn.Dropout(config.dropout) if config.dropout > 0 else nn.Identity()
        self._task_context = [task_context]  # plain reference, not a submodule

    def pair(self, task: int | None = None) -> tuple[nn.Linear, nn.Linear]:
        """The (A, B) used for task index `task` (None: the active task, or the only pair)."""
        if task is None:
            task = self._task_context[0].index() if len(self.lora_A) > 1 or len(self.lora_B) > 1 else 0
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
    n_down, n_up = projection_counts(sharing, len(model.task_context.tasks), config.shared_projection)
    branches = nn.ModuleDict()
    for projection in projections(model.lm, config.targets):
        branch = LoraBranch(projection.module, projection.path, config, n_down, n_up, model.task_context)
        branches[projection.name.replace(".", "_")] = branch
        add_to_output(projection.module, branch)
    model.petl = branches


def export_peft(model, config: LoraConfig, folder: Path, task: str | None = None, base_model: str | None = None) -> Path:
    """Write one task's LoRA weights in peft's format (adapter_config.json + adapter_model.safetensors).

    `peft.PeftModel.from_pretrained(plain_lm, folder)` then computes what `model.lm` computes
    for that task. When the LM's biases train (`FreezeConfig.train_bias`), they are exported
    too (peft's `bias="all"`). The V->L projection is not part of the LM and is not exported.

    Args:
        model: a `VLSeq2Seq` with LoRA applied.
        config: its LoRA config.
        folder: created if missing.
        task: which task's A/B to export; needed when they differ per task.
        base_model: recorded as `base_model_name_or_path`.

    Raises:
        ValueError: the model has no LoRA branches, `task` is missing or unknown, or LM weights
            other than biases train (peft's format cannot hold them).
    """
    from peft import LoraConfig as PeftLoraConfig
    from safetensors.torch import save_file

    branches = [m for m in model.petl.modules() if isinstance(m, LoraBranch)] if hasattr(model, "petl") else []
    if not branches:
        raise ValueError("the model has no LoRA branches; build it with method 'lora'")
    per_task = any(len(b.lora_A) > 1 or len(b.lora_B) > 1 for b in branches)
    tasks = model.task_context.tasks
    if per_task and task is None:
        raise ValueError(f"LoRA weights differ per task here; pass task= one of {list(tasks)}")
    if task is not None and task not in tasks:
        raise ValueError(f"unknown task {task!r}; this model serves {list(tasks)}")
    index = tasks.index(task) if task is not None else 0
    state = {}
    for branch in branches:
        A, B = branch.pair(index)
        state[f"{PEFT_PREFIX}{branch.path}.lora_A.weight"] = A.weight.detach().cpu().contiguous()
        state[f"{PEFT_PREFIX}{branch.path}.lora_B.weight"] = B.weight.detach().cpu().contiguous()
    trains_bias = _exportable_biases(model.lm)
    others = [n for n, p in model.lm.named_parameters() if p.requires_grad and n not in trains_bias]
    if others:
        raise ValueError(
            f"peft's LoRA format holds LoRA weights and biases only, but these LM parameters train too: "
            f"{others[:5]}{' ...' if len(others) > 5 else ''}; export a model whose freeze trains no other LM weights"
        )
    wrapped = {b.path for b in branches}
    for name, parameter in trains_bias.items():
        owner = name.rsplit(".", 1)[0]
        # peft wraps each targeted linear: its bias lives at "<path>.base_layer.bias".
        key = f"{PEFT_PREFIX}{owner}.base_layer.bias" if owner in wrapped else f"{PEFT_PREFIX}{name}"
        state[key] = parameter.detach().cpu().contiguous()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    peft_config = PeftLoraConfig(
        r=config.rank,
        # peft types lora_alpha int but scales by any number; the float keeps adapter_config.json as it was.
        lora_alpha=config.alpha,  # type: ignore[arg-type]
        lora_dropout=config.dropout,
        target_modules=sorted(wrapped),
        bias="all" if trains_bias else "none",
        task_type="SEQ_2_SEQ_LM",
        base_model_name_or_path=base_model,
    )
    peft_config.save_pretrained(str(folder))
    save_file(state, str(folder / "adapter_model.safetensors"), metadata={"format": "pt"})
    (folder / "vlpetl_export.json").write_text(json.dumps({"task": task, "tasks": list(tasks)}, indent=2))
    return folder


def _exportable_biases(lm: nn.Module) -> dict[str, torch.Tensor]:
    # Biases that train are exported; frozen ones equal the base model's and need not be.
    return {n: p for n, p in lm.named_parameters() if n.endswith(".bias") and p.requires_grad}


_PAPER_RUN = {"rank": 128, "alpha": 32.0, "dropout": 0.1, "targets": ("q", "v")}
_PAPER_FREEZE = FreezeConfig(train_layernorm=False, train_bias=True)  # every LM bias, not LN weights


SPEC = register(
    MethodSpec(
        name="lora",
        paper="Hu et al., LoRA: Low-Rank Adaptation of Large Language Models, ICLR 2022",
        config_cls=LoraConfig,
        apply=apply,
        freeze=FreezeConfig(train_language_model=False, train_layernorm=False, train_vl_projection=True, train_bias=True),
        sharing_modes=(SharingMode.SINGLE, SharingMode.MULTIPLE, SharingMode.HALF_SHARED),
        learning_rate=1e-3,
        identity_at_init=True,
        search={
            "rank": [2, 4, 8, 16, 32, 64, 128],
            "alpha": [16.0, 32.0],
            "sharing": ["single", "multiple"],
            "learning_rate_scale": [0.5, 1.0, 2.0],
        },
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
        ),
    )
)
