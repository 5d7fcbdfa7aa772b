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
