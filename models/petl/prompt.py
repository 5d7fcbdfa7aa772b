"""Prompt tuning: trainable vectors prepended to the encoder input.

Lester, Al-Rfou, Constant, "The Power of Scale for Parameter-Efficient Prompt Tuning", EMNLP
2021; with the reparameterisation of Li & Liang, "Prefix-Tuning", ACL 2021. VL-Adapter's run
(PAPER.md §2): 40 prompts, `Embedding(40, d) -> Linear(d->800) -> Tanh -> Linear(800->d)`.

The encoder input becomes `[prompts ; text ; visual]` with the attention mask extended by ones
(`VLSeq2Seq.set_input_prompt`). One prompt for all tasks (single) or one per task (multiple).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from models.config import FreezeConfig, SharingMode
from models.petl.registry import MethodSpec, RunPreset, register


@dataclass(frozen=True)
class PromptConfig:
    """Hyperparameters of prompt tuning.

    Attributes:
        length: number of prompt vectors P.
        reparameterize: pass the prompt table through the MLP (True) or train it directly.
        hidden_dim: width of the reparameterisation MLP.
    """

    length: int = 40
    reparameterize: bool = True
    hidden_dim: int = 800

    def problems(self) -> list[str]:
        found = []
        if self.length < 1:
            found.append(f"prompt.length must be >= 1, got {self.length}")
        if self.hidden_dim < 1:
            found.append(f"prompt.hidden_dim must be >= 1, got {self.hidden_dim}")
        return found


class PromptEncoder(nn.Module):
    """One prompt: a (P, d) table, optionally reparameterised by an MLP."""

    def __init__(self, length: int, d_model: int, reparameterize: bool, hidden_dim: int):
        super().__init__()
        self.embedding = nn.Embedding(length, d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, hidden_dim), nn.Tanh(), nn.Linear(hidden_dim, d_model)) if reparameterize else None

    def forward(self) -> torch.Tensor:
        prompts = self.embedding.weight  # (P, d)
        return self.mlp(prompts) if self.mlp is not None else prompts


class InputPrompt(nn.Module):
    """The prompts of a model, one per task or one for all; called by `VLSeq2Seq.encoder_inputs`."""

    def __init__(self, config: PromptConfig, d_model: int, n_prompts: int, task_context):
        super().__init__()
        self.prompts = nn.ModuleList(
            PromptEncoder(config.length, d_model, config.reparameterize, config.hidden_dim) for _ in range(n_prompts)
        )
        self._task_context = [task_context]  # plain reference, not a submodule

    def forward(self, batch_size: int) -> torch.Tensor:
        # -> (B, P, d)
        task = self._task_context[0].index() if len(self.prompts) > 1 else 0
        return self.prompts[task]().unsqueeze(0).expand(batch_size, -1, -1)


def apply(model, config: PromptConfig, sharing: SharingMode) -> None:
    """Prepend prompts to the encoder input of `model` (a `VLSeq2Seq`)."""
    n_prompts = len(model.task_context.tasks) if sharing is SharingMode.MULTIPLE else 1
    prompt = InputPrompt(config, model.lm.config.d_model, n_prompts, model.task_context)
    model.petl = prompt
    model.set_input_prompt(prompt)


SPEC = register(
    MethodSpec(
        name="prompt",
        paper="Lester et al., The Power of Scale for Parameter-Efficient Prompt Tuning, EMNLP 2021",
        config_cls=PromptConfig,
        apply=apply,
        freeze=FreezeConfig(train_language_model=False, train_layernorm=False, train_vl_projection=True),
        sharing_modes=(SharingMode.SINGLE, SharingMode.MULTIPLE),
        learning_rate=1e-3,
        sharing_note="a prompt is one table; it is either shared by all tasks or owned by one",
        search={
            "length": [10, 20, 40],
            "reparameterize": [True, False],
            "learning_rate_scale": [1.0, 2.0, 4.0],
        },
        tiny_learning_rate=5e-3,
        presets=(
            RunPreset(
                "single-prompt",
                "40 reparameterised prompts for all tasks",
                "prompt",
                {"length": 40, "reparameterize": True, "hidden_dim": 800},
                SharingMode.SINGLE,
                FreezeConfig(train_layernorm=False),
                paper_trainable_pct=2.00,
                warm_start_rank=8,
            ),
        ),
    )
)
