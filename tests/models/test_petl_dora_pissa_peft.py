"""DoRA and PiSSA against peft 0.21.2 on tiny T5 and tiny BART: the same outputs, and the same
weights after identical optimiser steps on the same batch.

DoRA: our A, B and magnitude are copied into peft's `use_dora=True` layers (peft's own init is
Kaiming A, zero B, the norm magnitude: ours too, but a trained state tests more). PiSSA: nothing
is copied: peft's `init_lora_weights="pissa"` and ours must produce the same A, B and residual W.
"""

from __future__ import annotations

import copy

import pytest
import torch

from models.config import FreezeConfig, SharingMode, TrialConfig
from models.petl import get_method

peft = pytest.importorskip("peft")

LM_ONLY = FreezeConfig(train_layernorm=False, train_bias=False, train_vl_projection=False)  # only A, B (, m) train
TARGETS = ("q", "v", "o", "ffn_in")


def ours(tiny, method: str, dropout: float = 0.0, init: str = "default", rank: int = 4):
    params = {"rank": rank, "alpha": 8.0, "dropout": dropout, "targets": TARGETS, "init": init}
    config = TrialConfig(backbone="tiny", tasks=("vqa",), method=method, method_params=params, sharing=SharingMode.SINGLE, freeze=LM_ONLY)
    return tiny.build(config)


def theirs(tiny, model, dora: bool, dropout: float = 0.0, init: str = "default", rank: int = 4):
    branches = list(model.petl.values())
    config = peft.LoraConfig(
        r=rank,
        lora_alpha=8.0,
        lora_dropout=dropout,
        target_modules=sorted(b.path for b in branches),
        use_dora=dora,
        init_lora_weights="pissa" if init == "pissa" else True,
    )
    return peft.get_peft_model(copy.deepcopy(tiny.lm), config)


def peft_layer(peft_model, path: str):
    return peft_model.base_model.model.get_submodule(path)


def copy_into_peft(model, peft_model) -> None:
    with torch.no_grad():
        for branch in model.petl.values():
            layer = peft_layer(peft_model, branch.path)
            A, B = branch.pair(0)
            layer.lora_A["default"].weight.copy_(A.weight)
            layer.lora_B["default"].weight.copy_(B.weight)
            if hasattr(branch, "magnitude"):
                layer.lora_magnitude_vector["default"].weight.copy_(branch.magnitude[0])


def give_trained_values(model) -> None:
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in model.petl.parameters():
            p.add_(torch.randn(p.shape, generator=generator) * 0.2)


def loss(lm, make_batch, seed: int | None = None):
    ids, mask, _, labels = make_batch()
    if seed is not None:
        torch.manual_seed(seed)  # the same dropout masks, drawn in the same order by both
    return lm(input_ids=ids, attention_mask=mask, labels=labels)


def backbone_logits(tiny, make_batch):
    with torch.no_grad():
        return loss(copy.deepcopy(tiny.lm).eval(), make_batch).logits


def train_both(model, peft_model, make_batch, steps: int = 3) -> None:
    """The same AdamW steps on the same batch; dropout active when the configs have it."""
    ours_params = [p for p in model.parameters() if p.requires_grad]
    theirs_params = [p for p in peft_model.parameters() if p.requires_grad]
    assert sum(p.numel() for p in ours_params) == sum(p.numel() for p in theirs_params)
    # Our branches live in model.petl, beside model.lm: the whole model's mode switches their dropout.
    for whole, lm, params in ((model, model.lm, ours_params), (peft_model, peft_model, theirs_params)):
        optimiser = torch.optim.AdamW(params, lr=1e-2)
        whole.train()
        for step in range(steps):
            optimiser.zero_grad()
            loss(lm, make_batch, seed=step).loss.backward()
            optimiser.step()
        whole.eval()


def assert_same_weights(model, peft_model, atol: float = 1e-5) -> None:
    for branch in model.petl.values():
        layer = peft_layer(peft_model, branch.path)
        A, B = branch.pair(0)
        torch.testing.assert_close(A.weight, layer.lora_A["default"].weight, atol=atol, rtol=0)
        torch.testing.assert_close(B.weight, layer.lora_B["default"].weight, atol=atol, rtol=0)
        torch.testing.assert_close(layer.base_layer.weight, model.lm.get_submodule(branch.path).weight, atol=atol, rtol=0)
        if hasattr(branch, "magnitude"):
            torch.testing.assert_close(branch.magnitude[0], layer.lora_magnitude_vector["default"].weight, atol=atol, rtol=0)


def assert_same_outputs(model, peft_model, make_batch, atol: float = 1e-5) -> None:
    model.eval()
    peft_model.eval()
    with torch.no_grad():
        torch.testing.assert_close(loss(model.lm, make_batch).logits, loss(peft_model, make_batch).logits, atol=atol, rtol=0)


@pytest.mark.parametrize("dropout", [0.0, 0.1])
def test_dora_matches_peft_in_outputs_and_in_trained_weights(tiny, make_batch, dropout):
    model = ours(tiny, "dora", dropout)
    give_trained_values(model)
    peft_model = theirs(tiny, model, dora=True, dropout=dropout)
    copy_into_peft(model, peft_model)
    assert_same_outputs(model, peft_model, make_batch)
    base = backbone_logits(tiny, make_batch)
    with torch.no_grad():
        assert not torch.allclose(loss(model.lm, make_batch).logits, base, atol=1e-3), "the trained DoRA must change the outputs"
    train_both(model, peft_model, make_batch)  # with dropout: peft's recomputed W dropout(x) path
    assert_same_weights(model, peft_model)
    assert_same_outputs(model, peft_model, make_batch)


def test_dora_magnitude_starts_as_the_row_norms_of_w(tiny):
    model = ours(tiny, "dora")
    for branch in model.petl.values():
        weight = model.lm.get_submodule(branch.path).weight
        torch.testing.assert_close(branch.magnitude[0].detach(), torch.linalg.norm(weight, dim=1), atol=0, rtol=0)


@pytest.mark.parametrize("method", ["lora", "dora"])
def test_pissa_matches_peft_from_its_own_init_to_trained_weights(tiny, make_batch, method):
    model = ours(tiny, method, init="pissa")
    peft_model = theirs(tiny, model, dora=method == "dora", init="pissa")
    assert_same_weights(model, peft_model)  # A, B and the residual W, each computed by its own code
    for branch in model.petl.values():
        W = tiny.lm.get_submodule(branch.path).weight
        assert not torch.allclose(model.lm.get_submodule(branch.path).weight, W, atol=1e-3), "the frozen weight is the residual"
    base = backbone_logits(tiny, make_batch)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(loss(model.lm, make_batch).logits, base, atol=1e-5, rtol=0)  # starts as the backbone
    train_both(model, peft_model, make_batch)
    assert_same_weights(model, peft_model, atol=2e-5)
    assert_same_outputs(model, peft_model, make_batch, atol=2e-5)
    with torch.no_grad():
        assert not torch.allclose(loss(model.lm, make_batch).logits, base, atol=1e-3)


def test_half_shared_dora_keeps_the_magnitude_with_b(tiny_t5):
    spec = get_method("dora")
    counts = {}
    for side in ("up", "down"):
        params = {"rank": 2, "targets": ("q",), "shared_projection": side}
        config = TrialConfig(
            backbone="tiny", tasks=("a", "b", "c"), method="dora", method_params=params, sharing=SharingMode.HALF_SHARED, freeze=spec.freeze
        )
        branch = next(iter(tiny_t5.build(config).petl.values()))
        counts[side] = (len(branch.lora_A), len(branch.lora_B), len(branch.magnitude))
    assert counts == {"up": (3, 1, 1), "down": (1, 3, 3)}
