"""Collate TextExamples into model tensors."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Sequence

import torch
from transformers import PreTrainedTokenizerBase

from models.features import FeatureTable
from training.examples import TextExample


@dataclass
class Batch:
    input_ids: torch.Tensor  # (B, T)
    attention_mask: torch.Tensor  # (B, T)
    feats: torch.Tensor  # (B, N, F)
    labels: torch.Tensor | None = None  # (B, L), -100 on padding
    weights: torch.Tensor | None = None  # (B,)

    def to(self, device: torch.device) -> "Batch":
        move = lambda t: None if t is None else t.to(device)  # noqa: E731
        return Batch(move(self.input_ids), move(self.attention_mask), move(self.feats), move(self.labels), move(self.weights))


class Collator:
    """Tokenises sources (truncated) and, for training, sampled targets."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, features: FeatureTable, max_source_tokens: int, max_target_tokens: int):
        self.tokenizer = tokenizer
        self.features = features
        self.max_source_tokens = max_source_tokens
        self.max_target_tokens = max_target_tokens

    def inputs(self, examples: Sequence[TextExample]) -> Batch:
        encoded = self.tokenizer(
            [e.source for e in examples], padding=True, truncation=True, max_length=self.max_source_tokens, return_tensors="pt"
        )
        # Single-image tasks: one image per example; multi-image tasks concatenate along tokens.
        feats = torch.stack([self.features.lookup(list(e.img_ids)).flatten(0, 1) for e in examples])
        return Batch(encoded.input_ids, encoded.attention_mask, feats)

    def training(self, examples: Sequence[TextExample], rng: random.Random) -> Batch:
        batch = self.inputs(examples)
        sampled = [e.sample_target(rng) for e in examples]
        labels = self.tokenizer(
            [t for t, _ in sampled], padding=True, truncation=True, max_length=self.max_target_tokens, return_tensors="pt"
        ).input_ids
        labels[labels == self.tokenizer.pad_token_id] = -100
        batch.labels = labels
        batch.weights = torch.tensor([w for _, w in sampled], dtype=torch.float32)
        return batch
