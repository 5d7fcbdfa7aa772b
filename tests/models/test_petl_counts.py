"""Closed-form PETL parameter counts per method and sharing mode, on tiny T5 and BART."""

from __future__ import annotations

import pytest

from models.config import SharingMode, TrialConfig
from models.params import breakdown
from models.petl import get_method

TASKS = ("a", "b", "c")
N = len(TASKS)
SITES = 2 * 2 + 3 * 2  # encoder: self-attn + FFN; decoder: self-attn + cross-attn + FFN; 2+2 layers
ATTENTION_MODULES = 2 + 2 * 2  # encoder self; decoder self + cross


def petl_count(tiny, method: str, sharing: SharingMode, **params) -> int:
    config = TrialConfig(
        backbone="tiny", tasks=TASKS, method=method, method_params=params, sharing=sharing, freeze=get_method(method).freeze
    )
    return breakdown(tiny.build(config))["petl"].total


def sides(sharing: SharingMode, shared: str = "up") -> tuple[int, int]:
    if sharing is SharingMode.SINGLE:
        return 1, 1
    if sharing is SharingMode.MULTIPLE:
        return N, N
    return (N, 1) if shared == "up" else (1, N)


@pytest.mark.parametrize("sharing", list(SharingMode))
@pytest.mark.parametrize("layer_norm", ["none", "before", "after"])
def test_adapter(tiny, sharing, layer_norm):
    d, h = tiny.d_model, tiny.d_model // 8
    n_down, n_up = sides(sharing)
    down = d * h + h + (2 * d if layer_norm == "before" else 0)
    up = h * d + d + (2 * d if layer_norm == "after" else 0)
    assert petl_count(tiny, "adapter", sharing, reduction_factor=8, layer_norm=layer_norm) == SITES * (n_down * down + n_up * up)


def test_adapter_sites_switch(tiny):
    d, h = tiny.d_model, tiny.d_model // 4
    count = petl_count(tiny, "adapter", SharingMode.SINGLE, reduction_factor=4, sites=("encoder.ffn", "decoder.ffn"))
    assert count == 4 * (d * h + h + h * d + d)


@pytest.mark.parametrize("sharing", list(SharingMode))
@pytest.mark.parametrize(("k", "shared_rule", "rank"), [(2, False, None), (4, True, 1), (2, True, 2), (4, False, None)])
def test_compacter(tiny, sharing, k, shared_rule, rank):
    d, h = tiny.d_model, tiny.d_model // 4

    def phm(d_in: int, d_out: int) -> int:
        p, q = d_in // k, d_out // k
        B = k * p * q if rank is None else k * (p * rank + rank * q)
        return (0 if shared_rule else k**3) + B + d_out

    n_down, n_up = sides(sharing)
    expected = SITES * (n_down * phm(d, h) + n_up * phm(h, d)) + (k**3 if shared_rule else 0)
    params = dict(reduction_factor=4, k=k, shared_rule=shared_rule, rank=rank)
    assert petl_count(tiny, "compacter", sharing, **params) == expected


def test_compacter_rejects_a_k_that_does_not_divide_the_widths(tiny):
    from models.config import ConfigError

    config = TrialConfig(backbone="tiny", tasks=TASKS, method="compacter", method_params={"k": 3})
    with pytest.raises(ConfigError, match="must divide d_model"):
        tiny.build(config)


def test_hyperformer(tiny):
    d, r, E, H, P = tiny.d_model, 4, 16, 8, 4
    h = d // r
    per_stack = lambda depth: depth * E + (2 * E * H + H) + (H * P + P) + 2 * P  # noqa: E731
    per_position = (P * d * h + d * h) + (P * h + h) + (P * h * d + h * d) + (P * d + d)
    expected = N * E + per_stack(2) + per_stack(2) + 5 * per_position
    params = dict(reduction_factor=r, task_embedding_dim=E, hidden_dim=H, projected_dim=P)
    assert petl_count(tiny, "hyperformer", SharingMode.SINGLE, **params) == expected


@pytest.mark.parametrize("sharing", list(SharingMode))
def test_lora_attention(tiny, sharing):
    d, r = tiny.d_model, 4
    n_down, n_up = sides(sharing, "down")
    expected = ATTENTION_MODULES * 2 * (n_down * r * d + n_up * r * d)  # q and v: d -> d
    params = dict(rank=r, targets=("q", "v"), shared_projection="down")
    assert petl_count(tiny, "lora", sharing, **params) == expected


@pytest.mark.parametrize("sharing", list(SharingMode))
def test_dora_is_lora_plus_a_magnitude_per_b(tiny, sharing):
    d, r = tiny.d_model, 4
    n_down, n_up = sides(sharing, "down")
    expected = ATTENTION_MODULES * 2 * (n_down * r * d + n_up * r * d + n_up * d)  # q and v: d -> d, magnitude d
    params = dict(rank=r, targets=("q", "v"), shared_projection="down")
    assert petl_count(tiny, "dora", sharing, **params) == expected


def test_lora_every_target(tiny):
    d, r, d_ff = tiny.d_model, 2, 64
    attention = ATTENTION_MODULES * 4 * (r * d + r * d)  # q, k, v, o
    ffn = 4 * ((r * d + r * d_ff) + (r * d_ff + r * d))  # 2 encoder + 2 decoder FFNs: in and out
    params = dict(rank=r, targets=("q", "k", "v", "o", "ffn_in", "ffn_out"))
    assert petl_count(tiny, "lora", SharingMode.SINGLE, **params) == attention + ffn


@pytest.mark.parametrize("sharing", [SharingMode.SINGLE, SharingMode.MULTIPLE])
@pytest.mark.parametrize("reparameterize", [True, False])
def test_prompt(tiny, sharing, reparameterize):
    d, L, m = tiny.d_model, 5, 12
    one = L * d + ((d * m + m) + (m * d + d) if reparameterize else 0)
    n = N if sharing is SharingMode.MULTIPLE else 1
    params = dict(length=L, hidden_dim=m, reparameterize=reparameterize)
    assert petl_count(tiny, "prompt", sharing, **params) == n * one
