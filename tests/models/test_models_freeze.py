"""Freezing choices: validation, serialisation, and what each switch makes trainable."""

from __future__ import annotations

import dataclasses

import pytest

from models.config import ConfigError, FreezeConfig, SharingMode, TrialConfig

BASE = TrialConfig(backbone="tiny", tasks=("vqa",), method="vl_only", freeze=FreezeConfig(train_layernorm=False))


def trainable(tiny, **freeze) -> set[str]:
    model = tiny.build(dataclasses.replace(BASE, freeze=FreezeConfig(train_layernorm=False, **freeze)))
    return {n for n, p in model.named_parameters() if p.requires_grad}


def test_new_fields_round_trip_and_old_dicts_still_load():
    config = dataclasses.replace(
        BASE,
        sharing=SharingMode.SINGLE,
        freeze=FreezeConfig(train_embeddings=True, train_lm_head=True, train_bias=True, visual_encoder="last_block"),
    )
    assert TrialConfig.from_dict(config.to_dict()) == config
    old = config.to_dict()
    old["freeze"] = {"train_language_model": False, "train_layernorm": True, "train_vl_projection": True}
    assert TrialConfig.from_dict(old).freeze == FreezeConfig()


def test_invalid_freeze_values_are_all_reported():
    data = {**BASE.to_dict(), "freeze": {"visual_encoder": "half", "train_bias": "yes"}}
    with pytest.raises(ConfigError) as caught:
        TrialConfig.from_dict(data)
    assert len(caught.value.problems) == 2
    assert "frozen" in str(caught.value) and "last_block" in str(caught.value)


def test_embeddings_switch_trains_the_tied_word_embedding_and_positions(tiny):
    names = trainable(tiny, train_embeddings=True) - trainable(tiny)
    word = "lm.shared.weight" if tiny.family == "t5" else "lm.model.shared.weight"
    assert word in names
    if tiny.family == "bart":
        assert {"lm.model.encoder.embed_positions.weight", "lm.model.decoder.embed_positions.weight"} <= names


def test_lm_head_switch_trains_the_head(tiny):
    # Tied in both families: the head is the word embedding.
    names = trainable(tiny, train_lm_head=True) - trainable(tiny)
    assert names == {"lm.shared.weight" if tiny.family == "t5" else "lm.model.shared.weight"}


def test_bias_switch_trains_every_lm_bias_and_no_layernorm_weight(tiny):
    names = trainable(tiny, train_bias=True) - trainable(tiny)
    if tiny.family == "t5":
        assert names == set()  # T5 has no biases
    else:
        assert names and all(n.endswith(".bias") for n in names)
        assert any("layer_norm.bias" in n for n in names)
        assert not any(n.endswith("layer_norm.weight") for n in names)


def _expected_trainable(model, freeze: FreezeConfig, family: str) -> set[str]:
    """What `freeze` names, read off parameter names (independently of models.freezing)."""
    word = "lm.shared.weight" if family == "t5" else "lm.model.shared.weight"
    positions = {"lm.model.encoder.embed_positions.weight", "lm.model.decoder.embed_positions.weight"}
    names = set()
    for name, _ in model.named_parameters():
        in_lm = name.startswith("lm.")
        if (
            name.startswith("petl.")
            or (freeze.train_vl_projection and name.startswith("visual_embedding."))
            or (freeze.train_layernorm and in_lm and ("layer_norm" in name or "layernorm" in name))
            or (freeze.train_bias and in_lm and name.endswith(".bias"))
            or (freeze.train_embeddings and (name == word or name in positions))
        ):
            names.add(name)
    return names


@pytest.mark.parametrize(
    "method, choices",
    [
        # LoRA's paper freezing trains biases, not LayerNorms: the opposite of both, V->L frozen.
        ("lora", {"train_layernorm": True, "train_bias": False, "train_vl_projection": False, "train_embeddings": False}),
        ("adapter", {"train_layernorm": False, "train_bias": True, "train_vl_projection": True, "train_embeddings": True}),
    ],
)
def test_sampled_freezing_choices_reach_the_model(tiny, method, choices):
    """A default-space trial whose freeze.* values are forced (as an enqueued trial is) builds a
    model whose trainable parameters are exactly those the values name, and counts them."""
    import optuna

    from models.params import count_parameters
    from search.space import SpaceDefaults, config_from_trial
    from search.space_file import load_space

    space = load_space()
    params = space.fixed_params(method, {f"freeze.{flag}": value for flag, value in choices.items()})
    assert params is not None and {f"{method}.freeze.{flag}" for flag in choices} <= set(params)
    config = config_from_trial(optuna.trial.FixedTrial(params), SpaceDefaults("tiny-clip+tiny-t5", ("vqa",), BASE.training, space))
    assert config.freeze == FreezeConfig(**choices)
    model = tiny.build(config)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    expected = _expected_trainable(model, config.freeze, tiny.family)
    assert trainable == expected
    assert count_parameters(model).trainable == sum(p.numel() for n, p in model.named_parameters() if n in expected)
