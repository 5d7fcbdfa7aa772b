"""VL-PET (models.petl.vl_pet): the gates at each granularity on examples checked by hand, where the
encoder module reads x and where the decoder adapter adds, closed-form and meta-device counts,
encoder-only LayerNorms, and bad input listed all at once."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from models.build import assemble_vl_model
from models.config import FreezeConfig, SharingMode, TrialConfig
from models.lm_loading import language_model_from_config
from models.location import BackboneLocation
from models.params import breakdown, count_parameters
from models.petl import get_method
from models.petl.vl_pet import GatedSublayer, LargeGate, MiddleXGate, MiddleYGate, MultiHeadDownAdapter, SmallGate, VLPetConfig, make_gate
from models.validation import trial_problems
from tests.models.conftest import FEAT_DIM, TINY_CONFIGS

TASKS = ("vqa", "gqa")
GRANULARITIES = ("large", "middle_x", "middle_y", "small")


def gelu(z: float) -> float:  # transformers' gelu_new, written out
    return 0.5 * z * (1 + math.tanh(math.sqrt(2 / math.pi) * (z + 0.044715 * z**3)))


def sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-z))


def trial(**params) -> TrialConfig:
    spec = get_method("vl_pet")
    return TrialConfig(backbone="tiny", tasks=TASKS, method="vl_pet", method_params=params, sharing=SharingMode.SINGLE, freeze=spec.freeze)


def set_(layer: torch.nn.Linear, weight, bias) -> None:
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight, dtype=torch.float32))
        layer.bias.copy_(torch.tensor(bias, dtype=torch.float32))


# One example, two tokens, d = 2: x is the sublayer's input, h its (adapted) output.
X = torch.tensor([[[1.0, 2.0], [0.0, -1.0]]])
H = torch.tensor([[[0.5, -0.5], [2.0, 1.0]]])


def test_large_gate_is_a_sigmoid_of_a_low_rank_map_of_x_per_token_and_channel():
    gate = LargeGate(2, 1, zero_init=False)
    set_(gate.down, [[1.0, 0.0]], [0.0])
    set_(gate.up, [[1.0], [-1.0]], [0.0, 0.5])
    G = gate(X, H)
    assert G.shape == (1, 2, 2)
    z0, z1 = gelu(1.0), gelu(0.0)  # W_down x per token
    expected = [[sigmoid(z0), sigmoid(-z0 + 0.5)], [sigmoid(z1), sigmoid(-z1 + 0.5)]]
    assert torch.allclose(G[0], torch.tensor(expected), atol=1e-6)


def test_middle_x_gate_is_one_sigmoid_per_token_of_x_plus_h():
    gate = MiddleXGate(2, zero_init=False)
    set_(gate.proj, [[1.0, 2.0]], [-1.0])
    G = gate(X, H)
    assert G.shape == (1, 2, 1)
    # token 0: x + h = (1.5, 1.5) -> 1.5 + 3 - 1; token 1: (2, 0) -> 2 - 1
    assert torch.allclose(G[0, :, 0], torch.tensor([sigmoid(3.5), sigmoid(1.0)]), atol=1e-6)


def test_middle_y_gate_is_one_plus_a_vector_per_channel():
    gate = MiddleYGate(2, zero_init=False)
    with torch.no_grad():
        gate.v.copy_(torch.tensor([0.5, -0.25]))
    G = gate(X, H)
    assert G.shape == (2,)
    assert torch.allclose(G * H, torch.tensor([[[0.75, -0.375], [3.0, 0.75]]]))


def test_small_gate_is_one_mean_sigmoid_per_example():
    gate = SmallGate(2, zero_init=False)
    set_(gate.proj, [[1.0, 0.0, 0.0, 1.0]], [0.0])  # reads x_0 and h_1 of [x; h]
    G = gate(X, H)
    assert G.shape == (1, 1, 1)
    # token 0: 1 + (-0.5); token 1: 0 + 1
    assert math.isclose(G.item(), (sigmoid(0.5) + sigmoid(1.0)) / 2, rel_tol=1e-6)


def test_multi_head_down_adapter_concatenates_the_heads_before_one_up_projection():
    adapter = MultiHeadDownAdapter(2, 2, heads=2, zero_init=False)
    set_(adapter.down[0], [[1.0, 1.0]], [0.0])
    set_(adapter.down[1], [[1.0, -1.0]], [1.0])
    set_(adapter.up, [[1.0, 0.0], [0.0, 2.0]], [0.0, -1.0])
    out = adapter(H)
    # token 0: heads (0, 2) -> up (gelu 0, 2 gelu 2 - 1); token 1: heads (3, 2)
    expected = [[0.5 + 0.0, -0.5 + 2 * gelu(2.0) - 1], [2.0 + gelu(3.0), 1.0 + 2 * gelu(2.0) - 1]]
    assert torch.allclose(out[0], torch.tensor(expected), atol=1e-6)


@pytest.mark.parametrize("granularity", GRANULARITIES)
def test_the_module_scales_the_gated_adapted_output(granularity):
    config = VLPetConfig(granularity=granularity)
    adapter = MultiHeadDownAdapter(2, 2, heads=1, zero_init=False)
    gate = make_gate(config, 2) if granularity != "large" else LargeGate(2, 1, zero_init=False)
    module = GatedSublayer(adapter, gate, scale=0.3)
    module._inputs = [X]
    out = module(H)
    adapted = adapter(H)
    assert out.shape == H.shape
    assert torch.allclose(out, 0.3 * gate(X, adapted) * adapted)


def capture_inputs(model) -> dict[str, torch.Tensor]:
    """x of every encoder module as the module sees it, by site name."""
    seen: dict[str, torch.Tensor] = {}
    for name, module in model.petl.items():
        if isinstance(module, GatedSublayer):
            gate_forward = module.gate.forward

            def record(x, h, name=name, gate_forward=gate_forward):
                seen[name] = x
                return gate_forward(x, h)

            module.gate.forward = record
    return seen


def test_bart_gates_read_the_residual_stream_entering_each_sublayer(tiny_bart, make_batch):
    model = tiny_bart.build(trial(granularity="middle_x"))
    seen = capture_inputs(model)
    layer = model.lm.model.encoder.layers[1]
    expected = {}
    layer.register_forward_pre_hook(lambda m, args: expected.__setitem__("self_attn", args[0]))
    layer.self_attn_layer_norm.register_forward_hook(lambda m, args, out: expected.__setitem__("ffn", out))
    ids, mask, feats, labels = make_batch()
    model(ids, mask, feats, labels)
    assert torch.equal(seen["encoder_1_self_attn"], expected["self_attn"])  # the layer's input
    assert torch.equal(seen["encoder_1_ffn"], expected["ffn"])  # the FFN's input (fc1's), not fc2's


def test_t5_gates_read_x_before_the_pre_norm(tiny_t5, make_batch):
    model = tiny_t5.build(trial(granularity="small"))
    seen = capture_inputs(model)
    block = model.lm.encoder.block[0]
    expected = {}
    block.layer[0].layer_norm.register_forward_pre_hook(lambda m, args: expected.__setitem__("self_attn", args[0]))
    block.layer[1].layer_norm.register_forward_pre_hook(lambda m, args: expected.__setitem__("ffn", args[0]))
    ids, mask, feats, labels = make_batch()
    model(ids, mask, feats, labels)
    assert torch.equal(seen["encoder_0_self_attn"], expected["self_attn"])
    assert torch.equal(seen["encoder_0_ffn"], expected["ffn"])


def test_decoder_value_adapter_adds_to_the_cross_attention_values_only(tiny_bart):
    model = tiny_bart.build(trial())
    cross = model.lm.model.decoder.layers[0].encoder_attn.v_proj
    own = model.lm.model.decoder.layers[0].self_attn.v_proj
    adapter = model.petl["decoder_0_cross_attn_v"]
    e = torch.randn(2, 3, tiny_bart.d_model)
    plain = torch.nn.functional.linear(e, cross.weight, cross.bias)
    assert torch.allclose(cross(e), plain + adapter.up(adapter.act(adapter.down(e))), atol=1e-6)
    assert torch.equal(own(e), torch.nn.functional.linear(e, own.weight, own.bias))
    assert not any("self_attn_v" in name for name in model.petl)


def closed_form(d: int, granularity: str, r: int, g_r: int, dec_r: int | None, enc_sites: int, dec_sites: int) -> int:
    a, g = d // r, d // g_r
    adapter = (d * a + a) + (a * d + d)
    gate = {"large": (d * g + g) + (g * d + d), "middle_x": d + 1, "middle_y": d, "small": 2 * d + 1}[granularity]
    decoder = 0 if dec_r is None else (d * (d // dec_r) + d // dec_r) + (d // dec_r * d + d)
    return enc_sites * (adapter + gate) + dec_sites * decoder


@pytest.mark.parametrize("granularity", GRANULARITIES)
@pytest.mark.parametrize("dec_r", [4, None])
def test_counts_in_closed_form_and_on_the_meta_device(tiny, granularity, dec_r):
    params = dict(granularity=granularity, reduction_factor=4, heads=2, gate_reduction_factor=8, decoder_reduction_factor=dec_r)
    config = trial(**params)
    model = tiny.build(config)
    d = tiny.d_model
    assert breakdown(model)["petl"].total == closed_form(d, granularity, 4, 8, dec_r, enc_sites=2 * 2, dec_sites=2)
    with torch.device("meta"):
        lm, order_ids = language_model_from_config(TINY_CONFIGS[tiny.family])
        meta = assemble_vl_model(config, lm, FEAT_DIM, order_ids)
    assert count_parameters(meta) == count_parameters(model)


def test_only_the_encoders_layernorms_train(tiny):
    # VL-PET's runs unfreeze the encoder's LayerNorms only (`--unfreeze_encoder_layer_norms`).
    model = tiny.build(trial())
    trained = {id(p) for p in model.lm.parameters() if p.requires_grad}
    encoder_norms = {id(p) for n, p in model.lm.get_encoder().named_parameters() if "norm" in n}
    assert encoder_norms and trained == encoder_norms


def test_decoder_layernorm_flag_round_trips_and_is_left_out_at_its_default():
    default = trial()
    changed = TrialConfig.from_dict(default.to_dict())
    assert changed == default and changed.freeze.train_decoder_layernorm is False
    assert "train_decoder_layernorm" not in TrialConfig(backbone="tiny", tasks=TASKS, method="adapter").to_dict()["freeze"]
    assert FreezeConfig(train_decoder_layernorm="no").problems() == ["freeze.train_decoder_layernorm must be true or false, got 'no'"]


def test_bad_values_are_each_one_line_listed_at_once():
    bad = VLPetConfig(granularity="huge", reduction_factor=0, heads=-1, decoder_reduction_factor=0, gate_scale=0.0, zero_init="yes")
    problems = bad.problems()
    assert len(problems) == 6, problems
    for needle in (
        "granularity",
        "'huge'",
        "reduction_factor must be an integer >= 1, got 0",
        "heads",
        "decoder_reduction_factor",
        "gate_scale",
        "zero_init",
    ):
        assert any(needle in line for line in problems), needle


def test_widths_that_do_not_fit_the_backbone_are_listed_with_the_other_problems():
    location = BackboneLocation.resolve("clip-rn101+bart-base", Path("/nonexistent-data-dir"))
    params = {"granularity": "huge", "heads": 5, "decoder_reduction_factor": 1000, "gate_scale": -1}
    config = TrialConfig("clip-rn101+bart-base", TASKS, "vl_pet", params, freeze=get_method("vl_pet").freeze)
    problems = trial_problems(config, location)
    assert any("granularity" in p for p in problems) and any("gate_scale" in p for p in problems)
    assert any("heads=5 must divide the adapter width d_model // reduction_factor = 768 // 8 = 96" in p for p in problems)
    assert any("decoder_reduction_factor=1000 leaves no width on d_model=768" in p for p in problems)
    assert len(problems) == 4, problems
