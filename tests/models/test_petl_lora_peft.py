"""A LoRA configuration exported to peft's format loads into peft itself, and merged into the LM loads
with transformers alone; both compute what the project's model computes."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from models.config import SharingMode, TrialConfig
from models.petl import get_method
from models.petl.lora import export_peft
from models.petl.lora_merge import merge_lora
from models.petl.peft_format import PeftFormatError, peft_lora_config

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


def test_config_mapping_is_the_exported_one_and_needs_no_weights(tiny_t5, tmp_path):
    """search.export --format peft describes a trial from its meta-device model: the same config as a trained export."""
    model, config = lora_model(tiny_t5, dropout=0.05)
    export_peft(model, config, tmp_path / "peft", base_model="t5-small")
    exported = peft.LoraConfig.from_pretrained(str(tmp_path / "peft"))
    described = peft_lora_config(model, config, base_model="t5-small")
    assert described.to_dict() == exported.to_dict()
    assert exported.r == 4 and exported.lora_alpha == 8.0 and exported.lora_dropout == 0.05
    assert exported.base_model_name_or_path == "t5-small" and exported.bias == "none"  # T5 has no biases
    assert "encoder.block.0.layer.0.SelfAttention.q" in exported.target_modules


def test_what_peft_cannot_hold_is_refused_before_anything_is_written(tiny_t5, tmp_path):
    model, config = lora_model(tiny_t5)
    model.lm.encoder.final_layer_norm.weight.requires_grad_(True)
    with pytest.raises(PeftFormatError, match="final_layer_norm"):
        export_peft(model, config, tmp_path / "peft")
    with pytest.raises(PeftFormatError, match="final_layer_norm"):
        merge_lora(model, config, tmp_path / "merged")
    assert list(tmp_path.iterdir()) == []


def merged_outputs(folder, make_batch):
    from transformers import AutoModelForSeq2SeqLM

    assert not list(folder.glob("adapter_*")), "a merged export holds no peft adapter"
    assert "peft" not in (folder / "config.json").read_text()
    loaded = AutoModelForSeq2SeqLM.from_pretrained(str(folder))
    loaded.eval()
    return lm_outputs(loaded, make_batch)


def test_merged_lora_loads_with_transformers_alone_and_computes_the_same(tiny, make_batch, tmp_path):
    model, config = lora_model(tiny)
    expected = lm_outputs(model.lm, make_batch)
    merge_lora(model, config, tmp_path / "merged")
    assert (merged_outputs(tmp_path / "merged", make_batch) - expected).abs().max() <= 1e-5
    assert torch.equal(lm_outputs(model.lm, make_batch), expected), "merging leaves the model's own LoRA in place"


def test_per_task_lora_merges_one_task_at_a_time(tiny_bart, make_batch, tmp_path):
    model, config = lora_model(tiny_bart, SharingMode.MULTIPLE, tasks=("vqa", "gqa"))
    with pytest.raises(PeftFormatError, match="pass task="):
        merge_lora(model, config, tmp_path / "none")
    for task in ("vqa", "gqa"):
        merge_lora(model, config, tmp_path / task, task=task)
        model.task_context.active = task
        expected = lm_outputs(model.lm, make_batch)
        assert (merged_outputs(tmp_path / task, make_batch) - expected).abs().max() <= 1e-5
    assert not (tmp_path / "none").exists()
