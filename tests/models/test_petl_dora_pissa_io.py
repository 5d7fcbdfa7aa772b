"""DoRA and PiSSA beyond the forward pass: bad input refused before anything is built, one line
per problem; a PiSSA model saves and reloads to identical outputs; DoRA exports to peft and both
merge into plain weights that compute what the model computes."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from torch import nn

from models.build import assemble_vl_model
from models.config import ConfigError, FreezeConfig, SharingMode, TrialConfig
from models.location import BackboneLocation
from models.params import parameter_report
from models.petl import get_method
from models.petl.lora_merge import merge_lora
from models.petl.peft_format import PeftFormatError, export_peft
from models.weights import load_trainable, save_trainable


def trial(method: str, tasks=("vqa",), sharing=SharingMode.SINGLE, **params) -> TrialConfig:
    return TrialConfig(backbone="tiny", tasks=tasks, method=method, method_params=params, sharing=sharing, freeze=get_method(method).freeze)


def perturbed(model):
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=generator) * 0.2)
    return model.eval()


def losses(model, make_batch):
    ids, mask, feats, labels = make_batch()
    with torch.no_grad():
        return model(ids, mask, feats, labels)  # (B,) per-example losses


class Int8Linear(nn.Linear):
    """Stands in for a quantised linear: a subclass whose `weight` is not the float matrix DoRA reads."""


def test_config_problems_name_value_rule_and_fix():
    problems = get_method("dora").config_cls(rank=0, init="svd", targets=("q", "x")).problems()
    assert problems == [
        "dora.rank must be >= 1, got 0",
        "dora.targets must be a non-empty subset of ['q', 'k', 'v', 'o', 'ffn_in', 'ffn_out'], got ['q', 'x']",
        "dora.init must be one of ['default', 'pissa'], got 'svd'",
    ]


def test_unsupported_module_and_oversized_pissa_rank_are_listed_at_once_before_insertion(tiny_t5):
    lm = copy.deepcopy(tiny_t5.lm)
    attention = lm.encoder.block[0].layer[0].SelfAttention
    attention.q = Int8Linear(attention.q.in_features, attention.q.out_features, bias=False)
    config = trial("dora", rank=40, init="pissa", targets=("q", "ffn_in"))
    with pytest.raises(ConfigError) as raised:
        assemble_vl_model(config, lm, 24, tiny_t5.order_ids)  # conftest.FEAT_DIM
    unsupported, *ranks = raised.value.problems
    assert "encoder.block.0.layer.0.SelfAttention.q" in unsupported and "Int8Linear" in unsupported
    assert "plain float nn.Linear" in unsupported and "method 'lora'" in unsupported
    assert len(ranks) == 2, ranks  # 6 q of 32 x 32, 4 ffn_in (wi) of 64 x 32: one line per shape
    assert all(r.startswith("dora.rank=40 with dora.init='pissa' exceeds min(d_out, d_in)=32 of ") for r in ranks)
    assert "(32 x 32) and 5 other targeted weights" in ranks[0] and "(64 x 32) and 3 other" in ranks[1]
    assert all("use dora.rank <= 32" in r for r in ranks)
    assert not any(hasattr(m, "magnitude") for m in lm.modules()) and not lm.encoder.block[0].layer[0].SelfAttention.q._forward_hooks


def test_pissa_rank_is_checked_on_the_counting_route_of_a_base_size_backbone(tmp_path):
    """search.params and the objective count on the meta device first: the rank is refused there, before training."""
    config = TrialConfig(
        backbone="clip-rn101+bart-base", tasks=("vqa",), method="lora", method_params={"rank": 1000, "init": "pissa"}, freeze=FreezeConfig()
    )
    with pytest.raises(ConfigError) as raised:
        parameter_report(config, BackboneLocation.resolve("clip-rn101+bart-base", tmp_path))
    assert raised.value.problems == [
        "lora.rank=1000 with lora.init='pissa' exceeds min(d_out, d_in)=768 of model.encoder.layers.0.self_attn.q_proj (768 x 768) "
        "and 35 other targeted weights of that shape: PiSSA takes the top-r singular vectors of each targeted weight; "
        "use lora.rank <= 768 or drop those targets"
    ]


@pytest.mark.parametrize("method", ["lora", "dora"])
def test_pissa_model_saves_and_reloads_to_identical_outputs(tiny, make_batch, tmp_path, method):
    config = trial(method, tasks=("vqa", "gqa"), sharing=SharingMode.MULTIPLE, rank=4, init="pissa", targets=("q", "v", "ffn_out"))
    model = perturbed(tiny.build(config))
    path = save_trainable(model, tmp_path, config.to_dict())
    reloaded = tiny.build(config)  # a fresh build: the SVD again, on the pristine backbone
    load_trainable(reloaded, path)
    reloaded.eval()
    for task in ("vqa", "gqa"):
        model.task_context.active = reloaded.task_context.active = task
        assert torch.equal(losses(reloaded, make_batch), losses(model, make_batch))
    frozen = {n: p for n, p in reloaded.lm.named_parameters() if not p.requires_grad}
    assert all(torch.equal(p, frozen[n]) for n, p in model.lm.named_parameters() if not p.requires_grad), (
        "the residual is recomputed exactly"
    )


def test_pissa_cannot_export_an_adapter_but_merges_into_the_trained_model(tiny, make_batch, tmp_path):
    config = trial("lora", rank=4, init="pissa", targets=("q", "v"))
    model = perturbed(tiny.build(config))
    method_config = get_method("lora").make_config(config.method_params, config.sharing)
    with pytest.raises(PeftFormatError, match="merge_lora"):
        export_peft(model, method_config, tmp_path / "adapter")
    assert not (tmp_path / "adapter").exists()
    expected = lm_logits(model.lm, make_batch)
    merge_lora(model, method_config, tmp_path / "merged")
    assert (lm_logits(merged(tmp_path / "merged"), make_batch) - expected).abs().max() <= 1e-5


def lm_logits(lm, make_batch):
    ids, mask, _, labels = make_batch()
    with torch.no_grad():
        return lm(input_ids=ids, attention_mask=mask, labels=labels).logits


def merged(folder: Path):
    from transformers import AutoModelForSeq2SeqLM

    return AutoModelForSeq2SeqLM.from_pretrained(str(folder)).eval()


def test_dora_exports_to_peft_and_merges_with_identical_outputs(tiny, make_batch, tmp_path):
    peft = pytest.importorskip("peft")
    config = trial("dora", rank=4, targets=("q", "v", "ffn_in"))
    config = TrialConfig(**{**config.__dict__, "freeze": FreezeConfig(train_layernorm=False, train_bias=True)})  # peft holds biases
    model = perturbed(tiny.build(config))
    method_config = get_method("dora").make_config(config.method_params, config.sharing)
    export_peft(model, method_config, tmp_path / "adapter")
    assert json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())["use_dora"] is True
    expected = lm_logits(model.lm, make_batch)
    loaded = peft.PeftModel.from_pretrained(copy.deepcopy(tiny.lm), str(tmp_path / "adapter")).eval()
    assert (lm_logits(loaded, make_batch) - expected).abs().max() <= 1e-5
    merge_lora(model, method_config, tmp_path / "merged")
    assert (lm_logits(merged(tmp_path / "merged"), make_batch) - expected).abs().max() <= 1e-5


def test_configs_describe_dora_and_pissa_for_peft_to_train(tiny_t5):
    """search.export --format peft on a trial: peft starts the same method (use_dora, its own PiSSA SVD)."""
    from models.petl.peft_format import peft_lora_config

    config = trial("dora", rank=4, init="pissa", targets=("q",))
    # DoRA's own freeze trains the LayerNorms too (the paper's run), which peft's format cannot hold.
    config = TrialConfig(**{**config.__dict__, "freeze": FreezeConfig(train_layernorm=False, train_bias=True)})
    model = tiny_t5.build(config)
    described = peft_lora_config(model, get_method("dora").make_config(config.method_params, config.sharing))
    assert described.use_dora is True and described.init_lora_weights == "pissa"
    plain = trial("lora", rank=4, targets=("q",))
    described = peft_lora_config(tiny_t5.build(plain), get_method("lora").make_config(plain.method_params, plain.sharing))
    assert described.use_dora is False and described.init_lora_weights is True
