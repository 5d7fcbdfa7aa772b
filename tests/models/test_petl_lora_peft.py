"""A LoRA configuration exported to peft's format loads into peft itself and computes the same."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from models.config import SharingMode, TrialConfig
from models.petl import get_method
from models.petl.lora import export_peft

peft = pytest.importorskip("peft")


def lora_model(tiny, sharing=SharingMode.SINGLE, tasks=("vqa",), **params):
    spec = get_method("lora")
    params = {"rank": 4, "alpha": 8.0, "targets": ("q", "v", "o", "ffn_in"), **params}
    config = TrialConfig(backbone="tiny", tasks=tasks, method="lora", method_params=params, sharing=sharing, freeze=spec.freeze)
    model = tiny.build(config)
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():  # B starts at zero: give every trained tensor a visible value
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=generator) * 0.2)
    model.eval()
    return model, spec.make_config(params, sharing)


def lm_outputs(lm, make_batch):
    ids, mask, _, labels = make_batch()
    with torch.no_grad():
        return lm(input_ids=ids, attention_mask=mask, labels=labels).logits


def peft_outputs(tiny, folder, make_batch):
    # The backbone as it was before LoRA: frozen weights equal the model's, trained biases do not.
    loaded = peft.PeftModel.from_pretrained(copy.deepcopy(tiny.lm), str(folder))
    loaded.eval()
    return lm_outputs(loaded, make_batch)


def test_tiny_t5_export_loads_in_peft_with_identical_outputs(tiny_t5, make_batch, tmp_path):
    model, config = lora_model(tiny_t5)
    export_peft(model, config, tmp_path / "peft")
    saved = json.loads((tmp_path / "peft" / "adapter_config.json").read_text())
    assert saved["peft_type"] == "LORA" and saved["r"] == 4 and saved["lora_alpha"] == 8.0
    expected = lm_outputs(model.lm, make_batch)
    assert not torch.allclose(expected, lm_outputs(tiny_t5.lm, make_batch), atol=1e-4), "LoRA must change the outputs"
    assert torch.allclose(peft_outputs(tiny_t5, tmp_path / "peft", make_batch), expected, atol=1e-5)


def test_tiny_bart_export_carries_the_trained_biases(tiny_bart, make_batch, tmp_path):
    model, config = lora_model(tiny_bart)
    assert any(n.endswith(".bias") and p.requires_grad for n, p in model.lm.named_parameters())
    export_peft(model, config, tmp_path / "peft")
    assert json.loads((tmp_path / "peft" / "adapter_config.json").read_text())["bias"] == "all"
    expected = lm_outputs(model.lm, make_batch)
    assert torch.allclose(peft_outputs(tiny_bart, tmp_path / "peft", make_batch), expected, atol=1e-5)


def test_per_task_lora_exports_one_task_at_a_time(tiny_t5, make_batch, tmp_path):
    model, config = lora_model(tiny_t5, SharingMode.MULTIPLE, tasks=("vqa", "gqa"))
    with pytest.raises(ValueError, match="pass task="):
        export_peft(model, config, tmp_path / "none")
    for task in ("vqa", "gqa"):
        export_peft(model, config, tmp_path / task, task=task)
        model.task_context.active = task
        expected = lm_outputs(model.lm, make_batch)
        assert torch.allclose(peft_outputs(tiny_t5, tmp_path / task, make_batch), expected, atol=1e-5)
