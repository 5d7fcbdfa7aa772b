"""LoRA (DoRA, PiSSA) folded into the language model's weights: a plain Hugging Face model for transformers alone.

peft does the arithmetic, not this file: the adapter is exported (`export_peft`), loaded onto
the LM as it was before LoRA with `PeftModel.from_pretrained`, and `merge_and_unload()` folds
`W + (alpha / r) B A` into each targeted linear (DoRA: rescaled by its magnitude), so the merge
is the format's own definition. With PiSSA, W is the model's residual, so the merged weight is
the trained model's.
"The LM before LoRA" is a copy of `model.lm` without LoRA's forward hooks: LoRA never replaces
a module (models.petl.hooks), so dropping the hooks leaves the backbone with its trained biases.
The V->L projection is not part of the LM: the merged folder is the text model only.
"""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path

from torch import nn

from models.petl.hooks import OutputDelta, OutputRewrite
from models.petl.lora import LoraConfig
from models.petl.peft_format import PeftFormatError, lora_branches, write_adapter


def plain_lm(model) -> nn.Module:
    """A copy of `model.lm` without LoRA's hooks: the backbone LM with every trained weight it holds.

    Raises:
        PeftFormatError: the model has no LoRA, or hooks other than LoRA's change its LM.
    """
    branches = lora_branches(model)
    if not branches:
        raise PeftFormatError("the model has no LoRA branches; build it with method 'lora' or 'dora'")
    # The memo keeps the branches out of the copy: the copied hooks that refer to them are dropped.
    lm = copy.deepcopy(model.lm, memo={id(b): b for b in branches})
    ours = {id(b) for b in branches}
    for module in lm.modules():
        for key, hook in list(module._forward_hooks.items()):
            if id(_branch_of(hook)) in ours:
                del module._forward_hooks[key]
                module._forward_hooks_with_kwargs.pop(key, None)
                module._forward_hooks_always_called.pop(key, None)
    hooked = [name or "(the LM)" for name, m in lm.named_modules() if m._forward_hooks or m._forward_pre_hooks]
    if hooked:
        raise PeftFormatError(f"modules {hooked[:3]} of the LM carry hooks other than LoRA's; only a LoRA model merges into plain weights")
    return lm


def _branch_of(hook) -> object:
    # LoRA's hook holds its branch; DoRA's holds the branch's bound `rewrite`.
    if isinstance(hook, OutputDelta):
        return hook.delta
    if isinstance(hook, OutputRewrite):
        return getattr(hook.rewrite, "__self__", None)
    return None


def merge_lora(model, config: LoraConfig, folder: Path, task: str | None = None, tokenizer=None) -> Path:
    """Write `model`'s LM with LoRA merged into its weights, loadable by transformers alone.

    `AutoModelForSeq2SeqLM.from_pretrained(folder)` then computes what `model.lm` computes for
    `task`. Everything is checked before `folder` is created.

    Args:
        model: a `VLSeq2Seq` with LoRA applied (trained weights).
        config: its LoRA config.
        folder: created if missing; gets config.json, the weights, and the tokenizer when given.
        task: which task's LoRA to merge; needed when the pairs differ per task.
        tokenizer: saved alongside when given (the run's tokenizer, visual-order tokens included).

    Raises:
        PeftFormatError (a ValueError): as `export_peft`, or hooks other than LoRA's on the LM.
    """
    from peft import PeftModel

    lm = plain_lm(model)
    with tempfile.TemporaryDirectory(prefix="vlpetl-lora-") as adapter:
        # On the model's own LM: with PiSSA its targeted weights are the residuals the adapter was trained on.
        write_adapter(model, config, Path(adapter), task=task)
        merged = PeftModel.from_pretrained(lm, adapter).merge_and_unload()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(str(folder))
    if tokenizer is not None:
        tokenizer.save_pretrained(str(folder))
    (folder / "vlpetl_export.json").write_text(
        json.dumps({"task": task, "tasks": list(model.task_context.tasks), "merged": True}, indent=2)
    )
    return folder
