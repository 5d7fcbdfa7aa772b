"""Collate TextExamples into model tensors."""

from __future__ import annotations

import random
from dataclasses import dataclass, fields
from typing import Any, Sequence

import torch
from transformers import PreTrainedTokenizerBase

from models.features import FeatureTable
from training.text_examples import TextExample
from training.visual_inputs import VisualInputs


@dataclass
class Batch:
    input_ids: torch.Tensor  # (B, T)
    attention_mask: torch.Tensor  # (B, T)
    feats: torch.Tensor  # (B, N, F), or pixels (B, images, 3, H, W) when CLIP trains
    image_index: torch.Tensor  # (B, N): which image each visual token comes from (NLVR2: 0/1)
    visual_mask: torch.Tensor  # (B, N): False on padded visual tokens (short videos)
    labels: torch.Tensor | None = None  # (B, L), -100 on padding
    weights: torch.Tensor | None = None  # (B,)
    choice_labels: torch.Tensor | None = None  # (R, L) every example's candidate answers, -100 on padding
    choice_example: torch.Tensor | None = None  # (R,) the example each candidate belongs to

    def to(self, device: torch.device) -> "Batch":
        # Any: whether a field may be None depends on its name, which the type system cannot follow.
        moved: dict[str, Any] = {f.name: _move(getattr(self, f.name), device) for f in fields(self)}
        return Batch(**moved)

    def model_inputs(self) -> dict[str, torch.Tensor]:
        """The keyword arguments every VLSeq2Seq entry point takes."""
        return {
            "input_ids": self.input_ids,
            "attention_mask": self.attention_mask,
            "feats": self.feats,
            "image_index": self.image_index,
            "visual_mask": self.visual_mask,
        }


def _move(tensor: torch.Tensor | None, device: torch.device) -> torch.Tensor | None:
    if tensor is None:
        return None
    if device.type == "cuda" and tensor.device.type == "cpu":
        # From page-locked memory the copy runs asynchronously, overlapping the GPU's work
        # (torch's pinned-memory allocator keeps the buffer until the copy is done).
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


class Collator:
    """Tokenises sources (truncated) and, for training, sampled targets.

    Args:
        tokenizer: the language model's tokenizer.
        visual: the visual features (an image store, or images and videos).
        max_source_tokens: default truncation of the encoder text; a task may ask for more.
    """

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        visual: VisualInputs | FeatureTable,
        max_source_tokens: int,
        pixels: bool = False,
    ):
        self.tokenizer = tokenizer
        self.visual = visual if isinstance(visual, VisualInputs) else VisualInputs(images=visual)
        self.max_source_tokens = max_source_tokens
        if pixels and self.visual.pixels is None:
            raise ValueError("pixel inputs were asked for, but the visual inputs hold no images to read")
        self.pixels = pixels  # images as pixels for a CLIP that trains, not cached features

    def inputs(self, examples: Sequence[TextExample], max_source_tokens: int | None = None) -> Batch:
        """Encoder inputs; every example of a batch comes from one task (same image count)."""
        encoded = self.tokenizer(
            [e.source for e in examples],
            padding=True,
            truncation=True,
            max_length=max_source_tokens or self.max_source_tokens,
            return_tensors="pt",
        )
        table = self.visual.pixels  # never None when self.pixels: __init__ checks
        if self.pixels and table is not None and examples[0].img_ids[0] in table.image_paths:
            return self._pixel_inputs(examples, encoded)
        # Multi-image examples (NLVR2) concatenate their images' tokens, told apart by image index.
        looked_up = [self.visual.lookup(list(e.img_ids)) for e in examples]  # each (images, N, F), (images, N)
        width = max(f.shape[1] for f, _ in looked_up)
        feats = torch.stack([_pad(f, width).flatten(0, 1) for f, _ in looked_up])
        visual_mask = torch.stack([_pad(m, width).flatten(0, 1) for _, m in looked_up])
        n_images = looked_up[0][0].shape[0]
        image_index = torch.arange(n_images).repeat_interleave(width).expand(len(examples), -1)
        return Batch(encoded.input_ids, encoded.attention_mask, feats, image_index, visual_mask)

    def _pixel_inputs(self, examples: Sequence[TextExample], encoded) -> Batch:
        # (B, images, 3, H, W); the model's CLIP makes `tokens_per_image` tokens of each image.
        table = self.visual.pixels
        assert table is not None, "a Collator with pixels=True has a pixel table"
        pixels = torch.stack([table.lookup(list(e.img_ids)) for e in examples])
        n_images, n_tokens = pixels.shape[1], table.tokens_per_image
        image_index = torch.arange(n_images).repeat_interleave(n_tokens).expand(len(examples), -1)
        visual_mask = torch.ones(image_index.shape, dtype=torch.bool)
        return Batch(encoded.input_ids, encoded.attention_mask, pixels, image_index, visual_mask)

    def training(
        self, examples: Sequence[TextExample], rng: random.Random, max_target_tokens: int, max_source_tokens: int | None = None
    ) -> Batch:
        batch = self.inputs(examples, max_source_tokens)
        sampled = [e.sample_target(rng) for e in examples]
        batch.labels = self._labels([t for t, _ in sampled], max_target_tokens)
        batch.weights = torch.tensor([w for _, w in sampled], dtype=torch.float32)
        return batch

    def targets(
        self, examples: Sequence[TextExample], targets: Sequence[str], max_target_tokens: int, max_source_tokens: int | None = None
    ) -> Batch:
        """Encoder inputs with the given target of each example as labels (a held-out loss)."""
        batch = self.inputs(examples, max_source_tokens)
        batch.labels = self._labels(list(targets), max_target_tokens)
        return batch

    def choices(self, examples: Sequence[TextExample], max_source_tokens: int | None = None, max_target_tokens: int | None = None) -> Batch:
        """Encoder inputs plus every example's candidate answers, for the fixed-answer scorer.

        Candidates are truncated like training targets (`max_target_tokens`), so that each is
        scored as the sequence the model was trained to produce.
        """
        batch = self.inputs(examples, max_source_tokens)
        candidates = [(n, choice) for n, e in enumerate(examples) for choice in e.choices]
        batch.choice_labels = self._labels([c for _, c in candidates], max_length=max_target_tokens)
        batch.choice_example = torch.tensor([n for n, _ in candidates], dtype=torch.long)
        return batch

    def _labels(self, texts: list[str], max_length: int | None) -> torch.Tensor:
        labels = self.tokenizer(
            texts, padding=True, truncation=max_length is not None, max_length=max_length, return_tensors="pt"
        ).input_ids
        labels[labels == self.tokenizer.pad_token_id] = -100
        return labels


def _pad(tensor: torch.Tensor, width: int) -> torch.Tensor:
    # (images, N, ...) -> (images, width, ...), zeros (False for masks) after N.
    missing = width - tensor.shape[1]
    if missing == 0:
        return tensor
    padding = tensor.new_zeros((tensor.shape[0], missing, *tensor.shape[2:]))
    return torch.cat([tensor, padding], dim=1)
