"""Every registered method x every sharing mode it supports x tiny T5 and tiny BART.

Build, forward, backward; the meta-device count equals the built model's; exactly the intended parameters train and only they get gradients;
per-task modules route by the active task; methods that start as the identity do; trainable
weights round-trip through save/load with identical outputs. A new method needs no edits here.
"""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch

from models.backbones.sites import is_layernorm, word_embedding_modules
from models.build import assemble_vl_model
from models.params import count_parameters
from models.config import SharingMode, TrialConfig
from models.petl import get_method, method_names
from models.weights import load_trainable, save_trainable

TASKS = ("vqa", "gqa")
CASES = [(method, mode) for method in method_names() for mode in get_method(method).sharing_modes]


def trial(method: str, sharing: SharingMode, **params) -> TrialConfig:
    spec = get_method(method)
    return TrialConfig(backbone="tiny", tasks=TASKS, method=method, method_params=params, sharing=sharing, freeze=spec.freeze)


def intended_trainable(model, config: TrialConfig) -> set[str]:
    """What should train, derived from the freezing policy independently of `apply_freezing`."""
    freeze = config.freeze
    lm = model.lm
    wanted = set()
    lm_names = {id(p): f"lm.{n}" for n, p in lm.named_parameters()}
    if freeze.train_language_model:
        wanted |= set(lm_names.values())
    if freeze.train_layernorm:
        scope = lm if freeze.train_decoder_layernorm else lm.get_encoder()
        wanted |= {lm_names[id(p)] for m in scope.modules() if is_layernorm(m) for p in m.parameters()}
    if freeze.train_bias:
        wanted |= {name for name in lm_names.values() if name.endswith(".bias")}
    if freeze.train_embeddings:
        wanted |= {lm_names[id(p)] for m in word_embedding_modules(lm) for p in m.parameters()}
    names = [n for n, _ in model.named_parameters()]
    if freeze.train_vl_projection:
        wanted |= {n for n in names if n.startswith("visual_embedding.")}
    wanted |= {n for n in names if n.startswith("petl.")}
    return wanted & set(names)


@pytest.mark.parametrize(("method", "sharing"), CASES, ids=[f"{m}-{s.value}" for m, s in CASES])
def test_forward_backward_trains_only_the_intended_parameters(tiny, make_batch, method, sharing):
    config = trial(method, sharing)
    model = tiny.build(config)
    model.task_context.active = "gqa"
    ids, mask, feats, labels = make_batch()
    losses = model(ids, mask, feats, labels)
    assert losses.shape == (2,) and bool(torch.isfinite(losses).all())
    losses.mean().backward()

    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == intended_trainable(model, config)
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            assert parameter.grad is None, f"frozen {name} received a gradient"
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters() if p.requires_grad)
    petl = [(n, p) for n, p in model.named_parameters() if n.startswith("petl.")]
    if petl:
        assert any(p.grad is not None for _, p in petl), "no PETL parameter took part in the forward pass"
    if sharing is not SharingMode.SINGLE and petl:
        # Per-task parts of the inactive task are not used.
        assert any(p.grad is None for _, p in petl), f"{method}/{sharing.value}: every PETL part was used by one task"


@pytest.mark.parametrize(("method", "sharing"), CASES, ids=[f"{m}-{s.value}" for m, s in CASES])
def test_generation_runs(tiny, make_batch, method, sharing):
    model = tiny.build(trial(method, sharing))
    model.eval()
    model.task_context.active = "vqa"
    ids, mask, feats, _ = make_batch()
    out = model.generate(ids, mask, feats, max_new_tokens=3)
    assert out.shape[0] == 2 and out.shape[1] <= 4


@pytest.mark.parametrize(
    ("method", "sharing"),
    [c for c in CASES if get_method(c[0]).identity_at_init],
    ids=[f"{m}-{s.value}" for m, s in CASES if get_method(m).identity_at_init],
)
def test_methods_that_start_as_the_identity_do(tiny, make_batch, method, sharing):
    config = trial(method, sharing)
    base = tiny.build(dataclasses.replace(config, method="vl_ln", method_params={}, sharing=SharingMode.SINGLE))
    adapted = tiny.build(config)
    adapted.visual_embedding.load_state_dict(base.visual_embedding.state_dict())
    base.eval(), adapted.eval()
    ids, mask, feats, labels = make_batch()
    for task in TASKS:
        base.task_context.active = adapted.task_context.active = task
        assert torch.allclose(base(ids, mask, feats, labels), adapted(ids, mask, feats, labels), atol=1e-6)


@pytest.mark.parametrize(("method", "sharing"), CASES, ids=[f"{m}-{s.value}" for m, s in CASES])
def test_trainable_weights_round_trip(tiny, make_batch, tmp_path, method, sharing):
    config = trial(method, sharing)
    model = tiny.build(config)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=generator) * 0.1)
    path = save_trainable(model, tmp_path, config.to_dict())
    reloaded = tiny.build(dataclasses.replace(config, training=dataclasses.replace(config.training, seed=7)))
    load_trainable(reloaded, path)
    model.eval(), reloaded.eval()
    ids, mask, feats, labels = make_batch()
    for task in TASKS:
        model.task_context.active = reloaded.task_context.active = task
        assert torch.equal(model(ids, mask, feats, labels), reloaded(ids, mask, feats, labels))


@pytest.mark.parametrize(("method", "sharing"), CASES, ids=[f"{m}-{s.value}" for m, s in CASES])
def test_meta_device_count_equals_the_built_model(tiny, method, sharing):
    # search.params and the budget check count on the meta device; training builds for real.
    config = trial(method, sharing)
    built = tiny.build(config)
    feat_dim = built.visual_embedding.feat_proj[0].in_features
    with torch.device("meta"):
        lm = type(tiny.lm)(copy.deepcopy(tiny.lm.config))  # the same architecture, visual-order rows included
        meta_model = assemble_vl_model(config, lm, feat_dim, tiny.order_ids)
    assert next(meta_model.parameters()).is_meta
    assert count_parameters(meta_model) == count_parameters(built)


@pytest.mark.parametrize("method", method_names())
def test_unsupported_sharing_modes_are_rejected_with_the_accepted_ones(method):
    spec = get_method(method)
    for mode in set(SharingMode) - set(spec.sharing_modes):
        with pytest.raises(Exception) as caught:
            spec.make_config({}, mode)
        message = str(caught.value)
        assert f"does not support sharing {mode.value!r}" in message
        assert all(m.value in message for m in spec.sharing_modes)


def test_prompts_are_prepended_to_the_encoder_input_with_mask_ones(tiny_t5, make_batch):
    model = tiny_t5.build(trial("prompt", SharingMode.SINGLE, length=3))
    ids, mask, feats, _ = make_batch()
    embeds, full_mask = model.encoder_inputs(ids, mask, feats)
    T, N = ids.shape[1], feats.shape[1]
    assert embeds.shape == (2, 3 + T + N, tiny_t5.d_model)
    assert bool(full_mask[:, :3].eq(1).all()) and torch.equal(full_mask[:, 3 : 3 + T], mask)
    assert torch.allclose(embeds[0, :3], model.input_prompt(1)[0])
    assert torch.allclose(embeds[:, 3 : 3 + T], model.lm.get_input_embeddings()(ids))
