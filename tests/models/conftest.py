"""Tiny T5 and BART backbones built from configs (nothing downloaded), for PETL contract tests."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import pytest
import torch

from models.build import assemble_vl_model
from models.config import TrialConfig
from models.lm_loading import language_model_from_config

VOCAB = 64
FEAT_DIM = 24
TINY_CONFIGS = {
    "t5": dict(
        model_type="t5",
        vocab_size=VOCAB,
        d_model=32,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=4,
        feed_forward_proj="relu",
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    ),
    "bart": dict(
        model_type="bart",
        vocab_size=VOCAB,
        d_model=32,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_position_embeddings=64,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        decoder_start_token_id=2,
        forced_eos_token_id=None,
    ),
}


@dataclass
class TinyBackbone:
    """A pristine tiny LM (with its 200 visual-order rows); every build gets an identical copy."""

    family: str
    lm: torch.nn.Module
    order_ids: list[int]

    def build(self, config: TrialConfig):
        torch.manual_seed(config.training.seed)  # V->L and PETL start the same on every build
        return assemble_vl_model(config, copy.deepcopy(self.lm), FEAT_DIM, self.order_ids)

    @property
    def d_model(self) -> int:
        return self.lm.config.d_model


def batch(n_text: int = 5, n_visual: int = 4, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, VOCAB, (2, n_text), generator=generator)
    mask = torch.ones(2, n_text, dtype=torch.long)
    mask[1, -2:] = 0  # some padding
    feats = torch.randn(2, n_visual, FEAT_DIM, generator=generator)
    labels = torch.randint(3, VOCAB, (2, 3), generator=generator)
    return ids, mask, feats, labels


@pytest.fixture(scope="session", params=sorted(TINY_CONFIGS))
def tiny(request) -> TinyBackbone:
    torch.manual_seed(0)
    lm, order_ids = language_model_from_config(TINY_CONFIGS[request.param])
    return TinyBackbone(request.param, lm, order_ids)


@pytest.fixture(scope="session")
def tiny_t5() -> TinyBackbone:
    torch.manual_seed(0)
    lm, order_ids = language_model_from_config(TINY_CONFIGS["t5"])
    return TinyBackbone("t5", lm, order_ids)


@pytest.fixture(scope="session")
def tiny_bart() -> TinyBackbone:
    torch.manual_seed(0)
    lm, order_ids = language_model_from_config(TINY_CONFIGS["bart"])
    return TinyBackbone("bart", lm, order_ids)


@pytest.fixture(scope="session")
def make_batch():
    """`make_batch(n_text=5, n_visual=4, seed=0) -> (input_ids, attention_mask, feats, labels)`."""
    return batch
