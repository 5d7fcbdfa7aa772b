"""Ladder Side-Tuning: the backbone is not differentiated, the side network makes every
prediction (training, generation, choice scoring), its count, and its input checks."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch

from models.backbones.sites import stack_blocks
from models.config import ConfigError, FreezeConfig, SharingMode, TrialConfig
from models.params import breakdown
from models.petl import get_method
from models.validation import trial_problems

TASKS = ("vqa", "gqa")


def trial(method: str = "lst", **params) -> TrialConfig:
    return TrialConfig(backbone="tiny", tasks=TASKS, method=method, method_params=params, freeze=get_method(method).freeze)


def saved_for_backward(model, batch) -> tuple[int, int]:
    """(bytes autograd saves in one training forward, tensors saved while a backbone layer runs)."""
    inside = [0]
    saved = {"bytes": 0, "in_backbone": 0}

    def enter(module, args):
        inside[0] += 1

    def leave(module, args, output):
        inside[0] -= 1

    for blocks in stack_blocks(model.lm).values():
        for block in blocks:
            block.register_forward_pre_hook(enter)
            block.register_forward_hook(leave)

    def pack(tensor):
        saved["bytes"] += tensor.numel() * tensor.element_size()
        saved["in_backbone"] += inside[0] > 0
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        losses = model(*batch)
    losses.mean().backward()
    return saved["bytes"], saved["in_backbone"]


def test_the_backbone_keeps_no_activations_and_gets_no_gradient(tiny, make_batch):
    batch = make_batch(n_text=24, n_visual=16)
    lst, lora = tiny.build(trial(reduction_factor=4)), tiny.build(trial("lora", rank=8))
    lst.task_context.active = lora.task_context.active = "vqa"
    lst_bytes, lst_in_backbone = saved_for_backward(lst, batch)
    lora_bytes, lora_in_backbone = saved_for_backward(lora, batch)
    assert lst_in_backbone == 0, "a backbone layer saved tensors for backward: the backbone is being differentiated"
    assert lora_in_backbone > 0  # the probe sees a differentiated backbone
    assert lst_bytes < 0.8 * lora_bytes
    assert all(p.grad is None for p in lst.lm.parameters())
    # The V->L projection trains through the side network's input (the backbone reads text only).
    feature_projection = lst.visual_embedding.feat_proj[0].weight.grad
    assert feature_projection is not None and feature_projection.abs().sum() > 0


def test_the_side_network_makes_the_prediction(tiny, make_batch):
    model = tiny.build(trial(reduction_factor=4))
    model.eval()
    model.task_context.active = "vqa"
    ids, mask, feats, labels = make_batch()
    before = model(ids, mask, feats, labels)
    with torch.no_grad():
        model.petl.sides[0].upsample.weight.mul_(2.0)
    assert not torch.allclose(before, model(ids, mask, feats, labels))


def test_the_backbone_encoder_reads_the_text_only(tiny, make_batch):
    model = tiny.build(trial(reduction_factor=4))
    model.eval()
    model.task_context.active = "vqa"
    ids, mask, feats, labels = make_batch(n_text=5, n_visual=4)
    lengths = []
    model.lm.get_encoder().register_forward_hook(
        lambda m, a, out: lengths.append((out.last_hidden_state.shape[1], out.side_hidden_state.shape[1]))
    )
    model(ids, mask, feats, labels)
    assert lengths == [(5, 5 + 4)]  # backbone: text; side: text + visual


@pytest.mark.parametrize("num_beams", [1, 3])
def test_generation_follows_the_side_network_without_a_cache(tiny, make_batch, num_beams):
    """Greedy decoding equals the argmax of the training path's logits fed its own output, and
    beams (which expand the encoder output's rows) still run the side network."""
    model = tiny.build(trial(reduction_factor=4))
    model.eval()
    model.task_context.active = "vqa"
    ids, mask, feats, _ = make_batch()
    with torch.no_grad():
        model.petl.sides[0].upsample.bias.normal_(0, 3.0)  # a side-made answer differs from the backbone's
    generated = model.generate(ids, mask, feats, max_new_tokens=4, num_beams=num_beams)
    if num_beams > 1:
        assert generated.shape[0] == 2
        return
    embeds, full_mask = model.encoder_inputs(ids, mask, feats)
    with torch.no_grad():
        logits = model.lm(inputs_embeds=embeds, attention_mask=full_mask, labels=generated[:, 1:].contiguous()).logits
    assert torch.equal(logits.argmax(-1), generated[:, 1:])


def test_choice_scoring_selects_each_rows_side_memory(tiny, make_batch):
    model = tiny.build(trial(reduction_factor=4))
    model.eval()
    model.task_context.active = "vqa"
    ids, mask, feats, _ = make_batch()
    choices = torch.tensor([[5, 6], [7, -100], [5, 6]])
    rows = torch.tensor([1, 0, 0])
    scores = model.score_choices(ids, mask, feats, choices, rows)
    for k in range(3):
        r = rows[k : k + 1]
        one = model(ids[r], mask[r], feats[r], choices[k : k + 1])  # mean token NLL of that row alone
        assert torch.allclose(-scores[k] / (choices[k] != -100).sum(), one[0], atol=1e-5)


def test_side_network_count_matches_the_authors_layout_on_tiny_t5(tiny_t5):
    # Side T5 (VL-T5/src/my_transformers/modeling_t5.py): blocks of d/r, d_kv/r, d_ff/r with the
    # heads kept, relative bias in the first, a final norm; a downsample in and per layer with
    # bias, a gate per layer; an upsample out with bias.
    c = tiny_t5.lm.config
    r = 4
    d, s, inner, ff, heads, buckets = (
        c.d_model,
        c.d_model // r,
        c.num_heads * c.d_kv // r,
        c.d_ff // r,
        c.num_heads,
        c.relative_attention_num_buckets,
    )
    attention = 4 * s * inner + s  # q, k, v, o + its RMS norm
    ffn = 2 * s * ff + s
    ladders = lambda n: (n + 1) * (d * s + s) + n  # noqa: E731  (input + one per layer, gates)
    encoder = c.num_layers * (attention + ffn) + buckets * heads + s + ladders(c.num_layers)
    decoder = c.num_decoder_layers * (2 * attention + ffn) + buckets * heads + s + ladders(c.num_decoder_layers)
    expected = encoder + decoder + (s * d + d)
    assert breakdown(tiny_t5.build(trial(reduction_factor=r)))["petl"].total == expected
    multiple = dataclasses.replace(trial(reduction_factor=r), sharing=SharingMode.MULTIPLE)
    assert breakdown(tiny_t5.build(multiple))["petl"].total == len(TASKS) * expected


def test_dropped_layers_have_no_side_layer_nor_ladder(tiny_bart):
    full = breakdown(tiny_bart.build(trial(reduction_factor=4)))["petl"].total
    dropped = tiny_bart.build(trial(reduction_factor=4, drop_encoder_layers=(0,), drop_decoder_layers=(1,)))
    assert len(dropped.petl.sides[0].encoder.ladders) == 1 and len(dropped.petl.sides[0].decoder.ladders) == 1
    assert breakdown(dropped)["petl"].total < full


def test_invalid_values_are_all_reported_at_once():
    with pytest.raises(ConfigError) as caught:
        get_method("lst").make_config(
            {"reduction_factor": 0, "drop_encoder_layers": (-1,), "drop_decoder_layers": (1, 1), "gate_temperature": 0.0},
            SharingMode.SINGLE,
        )
    problems = caught.value.problems
    assert len(problems) == 4
    assert "wider than the backbone" in problems[0] and "got 0" in problems[0]
    assert "[-1]" in problems[1] and "twice" in problems[2] and "gate_temperature" in problems[3]


def test_half_sharing_is_refused_with_the_reason():
    with pytest.raises(ConfigError, match="no pair of projections"):
        get_method("lst").make_config({}, SharingMode.HALF_SHARED)


def test_checks_against_the_backbone_come_with_the_others_before_building(tmp_path):
    from models.location import BackboneLocation

    config = dataclasses.replace(
        trial(reduction_factor=3, drop_decoder_layers=(12,), gate_temperature=-1.0),
        backbone="clip-rn101+t5-base",
        freeze=FreezeConfig(train_language_model=False, train_layernorm=True, train_vl_projection=True),
    )
    problems = trial_problems(config, BackboneLocation.resolve("clip-rn101+t5-base", tmp_path))
    # The value check, then the backbone checks: 3 does not divide t5-base's d_kv (64),
    # layer 12 of a 12-layer decoder, and LayerNorms that could get no gradient.
    assert len(problems) == 4
    assert any("gate_temperature" in p for p in problems)
    assert any("reduction_factor=3 must divide" in p and "['d_kv']" in p and "[1, 2, 4, 8, 16, 32, 64]" in p for p in problems)
    assert any("drop_decoder_layers [12] out of range" in p and "0..11" in p for p in problems)
    assert any("train_layernorm=True" in p for p in problems)


def test_apply_refuses_a_reduction_the_widths_do_not_allow(tiny_bart):
    # tiny BART: d_model 32 over 4 heads; r = 16 leaves 2 channels for 4 heads.
    with pytest.raises(ConfigError, match="must split over the 4 encoder_attention_heads"):
        tiny_bart.build(trial(reduction_factor=16))


def test_a_deep_copy_runs_its_own_side_network(tiny, make_batch):
    model = tiny.build(trial(reduction_factor=4))
    model.eval()
    model.task_context.active = "vqa"
    copied = copy.deepcopy(model)
    batch = make_batch()
    with torch.no_grad():
        for ladder in copied.petl.sides[0].encoder.ladders:
            ladder.weight.normal_(0, 1.0)  # hooks that still pointed at the original would not see this
    assert not torch.equal(copied(*batch), model(*batch))
