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
    image_index: torch.Tensor  # (B, N): which image each visual token comes from (NLVR2: 0/1)
    labels: torch.Tensor | None = None  # (B, L), -100 on padding
    weights: torch.Tensor | None = None  # (B,)

    def to(self, device: torch.device) -> "Batch":
        move = lambda t: None if t is None else t.to(device)  # noqa: E731
        return Batch(*(move(getattr(self, f)) for f in ("input_ids", "attention_mask", "feats", "image_index", "labels", "weights")))


class Collator:
    """Tokenises sources (truncated) and, for training, sampled targets."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, features: FeatureTable, max_source_tokens: int):
        self.tokenizer = tokenizer
        self.features = features
        self.max_source_tokens = max_source_tokens

    def inputs(self, examples: Sequence[TextExample]) -> Batch:
        """Encoder inputs; every example of a batch comes from one task (same image count)."""
        encoded = self.tokenizer(
            [e.source for e in examples], padding=True, truncation=True, max_length=self.max_source_tokens, return_tensors="pt"
        )
        # Multi-image examples (NLVR2) concatenate their images' tokens, told apart by image index.
        per_example = [self.features.lookup(list(e.img_ids)) for e in examples]  # each (images, N, F)
        feats = torch.stack([f.flatten(0, 1) for f in per_example])
        n_images, n_tokens = per_example[0].shape[:2]
        image_index = torch.arange(n_images).repeat_interleave(n_tokens).expand(len(examples), -1)
        return Batch(encoded.input_ids, encoded.attention_mask, feats, image_index)

    def training(self, examples: Sequence[TextExample], rng: random.Random, max_target_tokens: int) -> Batch:
        batch = self.inputs(examples)
        sampled = [e.sample_target(rng) for e in examples]
        labels = self.tokenizer(
            [t for t, _ in sampled], padding=True, truncation=True, max_length=max_target_tokens, return_tensors="pt"
        ).input_ids
        labels[labels == self.tokenizer.pad_token_id] = -100
        batch.labels = labels
        batch.weights = torch.tensor([w for _, w in sampled], dtype=torch.float32)
        return batch
