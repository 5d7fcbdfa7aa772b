"""LoRA in peft's format: the one mapping from the project's LoRA to peft's `LoraConfig`.

Two callers share it, so a configuration and a trained model describe their LoRA the same way:
`export_peft` (a trained model: adapter_config.json + adapter_model.safetensors) and
`python -m search.export --format peft` (a study's trial: adapter_config.json only, from the
trial's model built on the meta device). peft is an optional dependency (`.[peft]`), imported
only when a function here runs.

What peft's LoRA format holds: one A/B pair per targeted linear, DoRA's magnitude vector
(`use_dora=True`, models.petl.dora), and, optionally, the biases (`bias="all"`). What it cannot:
other trained LM weights (LayerNorms, embeddings, the whole LM), several tasks' pairs at once,
and the V->L projection, which is not part of the LM.

PiSSA (`init="pissa"`) replaced each targeted W by a residual the adapter alone cannot carry, so
`export_peft` refuses it; `models.petl.lora_merge` folds it into full weights instead (it loads
the adapter onto the model's own residual LM, where A/B are a plain LoRA).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    import peft

    from models.petl.lora import LoraBranch, LoraConfig

PEFT_METHODS = ("lora", "dora")  # the registry keys whose models this format expresses
PEFT_PREFIX = "base_model.model."
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"


class PeftFormatError(ValueError):
    """The model holds something peft's LoRA format cannot express; the message says what."""


@dataclass(frozen=True)
class _Layout:
    """What one task's LoRA of a model consists of, checked to fit peft's format."""

    branches: list[LoraBranch]
    task: str | None
    index: int
    biases: dict[str, torch.Tensor]  # trained LM biases, by their name in the LM


def peft_lora_config(model, config: LoraConfig, task: str | None = None, base_model: str | None = None) -> peft.LoraConfig:
    """The peft `LoraConfig` that describes `model`'s LoRA (a model on the meta device will do).

    DoRA sets `use_dora`; PiSSA sets `init_lora_weights="pissa"`, so peft starts training
    from the same A, B and residual (a trained PiSSA model is refused by `export_peft` instead).

    Target modules are the adapted linears' full dotted names in the Hugging Face LM; the bias
    setting is "all" when LM biases train (T5 has none), else "none".

    Args:
        model: a `VLSeq2Seq` with LoRA applied.
        config: its LoRA config (rank, alpha, dropout).
        task: the task whose A/B pair is meant; needed when the pairs differ per task.
        base_model: recorded as `base_model_name_or_path`.

    Raises:
        PeftFormatError: no LoRA branches, a missing or unknown `task`, or LM weights other
            than biases train.
    """
    # A configuration (nothing trained yet): peft runs PiSSA's SVD itself on the original weights.
    return _peft_config(_layout(model, task), config, base_model, pissa=getattr(config, "init", "default") == "pissa")


def _refuse_residual_base(config: LoraConfig) -> None:
    if getattr(config, "init", "default") == "pissa":
        raise PeftFormatError(
            "init='pissa' replaced each targeted weight W by the residual W - (alpha / r) B0 A0, which a peft adapter "
            "loaded onto the original model cannot carry; merge it into full weights instead "
            "(search.export --run RUN --format peft --merge, or models.petl.lora_merge.merge_lora), or train with init 'default' "
            "to export an adapter"
        )


def export_peft(model, config: LoraConfig, folder: Path, task: str | None = None, base_model: str | None = None) -> Path:
    """Write one task's LoRA weights in peft's format (adapter_config.json + adapter_model.safetensors).

    `peft.PeftModel.from_pretrained(plain_lm, folder)` then computes what `model.lm` computes
    for that task. When the LM's biases train (`FreezeConfig.train_bias`), they are exported
    too (peft's `bias="all"`). The V->L projection is not part of the LM and is not exported.
    Everything is checked before `folder` is created.

    Args:
        model: a `VLSeq2Seq` with LoRA applied.
        config: its LoRA config.
        folder: created if missing.
        task: which task's A/B to export; needed when they differ per task.
        base_model: recorded as `base_model_name_or_path`.

    Raises:
        PeftFormatError (a ValueError): as `peft_lora_config`, or a PiSSA model (its base weights
            are residuals; merge it with `models.petl.lora_merge.merge_lora` instead).
    """
    _refuse_residual_base(config)
    return write_adapter(model, config, folder, task, base_model)


def write_adapter(model, config: LoraConfig, folder: Path, task: str | None = None, base_model: str | None = None) -> Path:
    """`export_peft` without the PiSSA check: the adapter as it sits on the model's own LM, whose
    targeted weights are PiSSA's residuals when `config.init` is "pissa" (models.petl.lora_merge)."""
    from safetensors.torch import save_file

    layout = _layout(model, task)
    # Trained A/B are loaded, never initialised: a PiSSA init here would take a second SVD of the residual.
    peft_config = _peft_config(layout, config, base_model, pissa=False)
    state = {}
    for branch in layout.branches:
        A, B = branch.pair(layout.index)
        state[f"{PEFT_PREFIX}{branch.path}.lora_A.weight"] = A.weight.detach().cpu().contiguous()
        state[f"{PEFT_PREFIX}{branch.path}.lora_B.weight"] = B.weight.detach().cpu().contiguous()
        magnitudes = getattr(branch, "magnitude", None)  # DoRA's, one per B: the task's B picks it
        if magnitudes is not None:
            magnitude = magnitudes[min(layout.index, len(magnitudes) - 1)]
            state[f"{PEFT_PREFIX}{branch.path}.lora_magnitude_vector"] = magnitude.detach().cpu().contiguous()
    wrapped = {b.path for b in layout.branches}
    for name, parameter in layout.biases.items():
        owner = name.rsplit(".", 1)[0]
        # peft wraps each targeted linear: its bias lives at "<path>.base_layer.bias".
        key = f"{PEFT_PREFIX}{owner}.base_layer.bias" if owner in wrapped else f"{PEFT_PREFIX}{name}"
        state[key] = parameter.detach().cpu().contiguous()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    peft_config.save_pretrained(str(folder))
    save_file(state, str(folder / ADAPTER_WEIGHTS), metadata={"format": "pt"})
    (folder / "vlpetl_export.json").write_text(json.dumps({"task": task, "tasks": list(model.task_context.tasks)}, indent=2))
    return folder


def lora_branches(model) -> list[LoraBranch]:
    """The model's LoRA branches, in the order they were applied (empty without LoRA)."""
    from models.petl.lora import LoraBranch

    return [m for m in model.petl.modules() if isinstance(m, LoraBranch)] if hasattr(model, "petl") else []


def per_task(model) -> bool:
    """Whether the model's LoRA pairs differ per task (sharing multiple or half-shared, several tasks)."""
    return any(len(b.lora_A) > 1 or len(b.lora_B) > 1 for b in lora_branches(model))


def _layout(model, task: str | None) -> _Layout:
    branches = lora_branches(model)
    if not branches:
        raise PeftFormatError("the model has no LoRA branches; build it with method 'lora' or 'dora'")
    tasks = model.task_context.tasks
    if per_task(model) and task is None:
        raise PeftFormatError(f"LoRA weights differ per task here; pass task= one of {list(tasks)}")
    if task is not None and task not in tasks:
        raise PeftFormatError(f"unknown task {task!r}; this model serves {list(tasks)}")
    biases = _trained_biases(model.lm)
    others = [n for n, p in model.lm.named_parameters() if p.requires_grad and n not in biases]
    if others:
        raise PeftFormatError(
            f"peft's LoRA format holds LoRA weights and biases only, but these LM parameters train too: "
            f"{others[:5]}{' ...' if len(others) > 5 else ''}; export a model whose freeze trains no other LM weights"
        )
    return _Layout(branches, task, tasks.index(task) if task is not None else 0, biases)


def _peft_config(layout: _Layout, config: LoraConfig, base_model: str | None, pissa: bool) -> peft.LoraConfig:
    from peft import LoraConfig as PeftLoraConfig

    return PeftLoraConfig(
        init_lora_weights="pissa" if pissa else True,
        r=config.rank,
        # peft types lora_alpha int but scales by any number; the float keeps adapter_config.json as it was.
        lora_alpha=config.alpha,  # type: ignore[arg-type]
        lora_dropout=config.dropout,
        target_modules=sorted(b.path for b in layout.branches),
        bias="all" if layout.biases else "none",
        use_dora=any(hasattr(b, "magnitude") for b in layout.branches),
        task_type="SEQ_2_SEQ_LM",
        base_model_name_or_path=base_model,
    )


def _trained_biases(lm: nn.Module) -> dict[str, torch.Tensor]:
    # Biases that train are exported; frozen ones equal the base model's and need not be.
    return {n: p for n, p in lm.named_parameters() if n.endswith(".bias") and p.requires_grad}
