"""The VL model on the embedded backbone: layout, generation, freezing, counting, weights."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from models.build import build_vl_model
from models.config import ConfigError, FreezeConfig, TrialConfig
from models.params import count_parameters
from models.petl import get_method, method_names
from models.weights import load_trainable, save_trainable

BACKBONE = "tiny-clip+tiny-t5"


def config(method: str, **params) -> TrialConfig:
    return TrialConfig(backbone=BACKBONE, tasks=("vqa",), method=method, method_params=params, freeze=get_method(method).freeze)


def inputs(tokenizer, n_visual: int = 16, feat_dim: int = 128):
    torch.manual_seed(0)
    text = tokenizer(["vqa: what color is the square?", "vqa: how many circles are there?"], return_tensors="pt", padding=True)
    labels = tokenizer(["red", "2"], return_tensors="pt", padding=True).input_ids
    labels[labels == tokenizer.pad_token_id] = -100
    return text.input_ids, text.attention_mask, torch.randn(2, n_visual, feat_dim), labels


def test_visual_tokens_follow_text_tokens_in_the_encoder_input(env):
    model, tokenizer = build_vl_model(config("full_ft"), env.location)
    ids, mask, feats, _ = inputs(tokenizer)
    embeds, full_mask = model.encoder_inputs(ids, mask, feats)
    T, N = ids.shape[1], feats.shape[1]
    assert embeds.shape == (2, T + N, model.lm.config.d_model)
    assert torch.equal(full_mask[:, :T], mask) and bool(full_mask[:, T:].eq(1).all())
    assert torch.allclose(embeds[:, :T], model.lm.get_input_embeddings()(ids))


def test_two_images_get_distinct_image_index_embeddings(env):
    model, tokenizer = build_vl_model(config("full_ft"), env.location)
    feats = torch.randn(1, 4, 128).repeat(1, 2, 1)  # the same 4 features for image 0 and image 1
    index = torch.tensor([[0, 0, 0, 0, 1, 1, 1, 1]])
    visual = model.visual_embedding(feats, index)
    delta = visual[0, 4:] - visual[0, :4]  # same features, same order rows: only the image index differs
    expected = model.visual_embedding.image_index.weight[1] - model.visual_embedding.image_index.weight[0]
    assert torch.allclose(delta, expected.expand_as(delta), atol=1e-5)


def test_generation_returns_decodable_text(env):
    model, tokenizer = build_vl_model(config("adapter"), env.location)
    ids, mask, feats, _ = inputs(tokenizer)
    generated = model.generate(ids, mask, feats, max_new_tokens=4)
    assert generated.shape[0] == 2 and generated.shape[1] <= 5
    assert all(isinstance(t, str) for t in tokenizer.batch_decode(generated, skip_special_tokens=True))


@pytest.mark.parametrize("method", ["full_ft", "adapter", "vl_only", "vl_ln"])
def test_meta_count_equals_the_built_model(env, method):
    meta_model, _ = build_vl_model(config(method), env.location, meta=True)
    real_model, _ = build_vl_model(config(method), env.location)
    assert count_parameters(meta_model) == count_parameters(real_model)


def test_adapter_count_matches_closed_form(env):
    base, _ = build_vl_model(config("vl_ln"), env.location)
    adapted, _ = build_vl_model(config("adapter", reduction_factor=8), env.location)
    d = base.lm.config.d_model
    h = d // 8
    sites = 2 * base.lm.config.num_layers + 3 * base.lm.config.num_decoder_layers  # PAPER.md §2
    per_site = (d * h + h) + (h * d + d)
    base_count, adapted_count = count_parameters(base), count_parameters(adapted)
    assert adapted_count.total - base_count.total == sites * per_site
    assert adapted_count.trainable - base_count.trainable == sites * per_site


def test_full_fine_tuning_trains_everything_and_adapters_only_their_share(env):
    full, _ = build_vl_model(config("full_ft"), env.location)
    assert count_parameters(full).trainable_pct == 100.0
    adapted, _ = build_vl_model(config("adapter"), env.location)
    names = [n for n, p in adapted.named_parameters() if p.requires_grad]
    assert names and all(n.startswith(("petl.", "visual_embedding.")) or "layer_norm" in n for n in names)


@pytest.mark.parametrize("method", method_names())
def test_only_intended_parameters_receive_gradients(env, method):
    model, tokenizer = build_vl_model(config(method), env.location)
    ids, mask, feats, labels = inputs(tokenizer)
    model.task_context.active = "vqa"
    model(ids, mask, feats, labels).mean().backward()
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            continue
        assert parameter.grad is None, f"{method}: frozen {name} received a gradient"
    trained = [p for p in model.parameters() if p.requires_grad]
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in trained)


def test_adapter_starts_as_identity(env):
    base, tokenizer = build_vl_model(config("vl_ln"), env.location)
    adapted, _ = build_vl_model(config("adapter"), env.location)
    base.eval(), adapted.eval()
    ids, mask, feats, labels = inputs(tokenizer)
    # Same backbone weights and V->L projection seed: the zero-initialised up projection adds nothing.
    adapted.visual_embedding.load_state_dict(base.visual_embedding.state_dict())
    assert torch.allclose(base(ids, mask, feats, labels), adapted(ids, mask, feats, labels), atol=1e-6)


def test_trainable_weights_round_trip(env, tmp_path):
    cfg = config("adapter", reduction_factor=16)
    model, tokenizer = build_vl_model(cfg, env.location)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.1)
    model.eval()
    path = save_trainable(model, tmp_path, cfg.to_dict())
    reloaded, _ = build_vl_model(cfg, env.location)
    load_trainable(reloaded, path)
    reloaded.eval()
    ids, mask, feats, labels = inputs(tokenizer)
    assert torch.equal(model(ids, mask, feats, labels), reloaded(ids, mask, feats, labels))
    other, _ = build_vl_model(config("adapter", reduction_factor=8), env.location)
    with pytest.raises(ValueError, match="does not match"):
        load_trainable(other, path)


def test_invalid_method_configuration_lists_every_problem(env):
    bad = dataclasses.replace(config("adapter"), method_params={"reduction_factor": 0, "activation": "tanh", "rank": 4})
    with pytest.raises(ConfigError) as caught:
        build_vl_model(bad, env.location, meta=True)
    assert len(caught.value.problems) == 3


def test_unknown_method_names_the_known_ones(env):
    with pytest.raises(ConfigError, match="known methods"):
        build_vl_model(dataclasses.replace(config("adapter"), method="nope"), env.location, meta=True)


def test_trial_config_round_trips_through_a_dict():
    cfg = dataclasses.replace(config("adapter", reduction_factor=4), freeze=FreezeConfig(train_layernorm=False))
    assert TrialConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="unknown keys"):
        TrialConfig.from_dict({**cfg.to_dict(), "colour": "red"})
