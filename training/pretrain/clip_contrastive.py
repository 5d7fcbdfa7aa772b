"""Contrastive image-caption pretraining of the tiny CLIP (Radford et al. 2021), with open_clip's loss."""

from __future__ import annotations

import random
from typing import Callable, Protocol, Sequence

import torch
from open_clip.loss import ClipLoss
from PIL import Image
from tqdm.auto import tqdm

from training.loss_curve import LossCurve
from transformers import get_cosine_schedule_with_warmup


class ClipEncoders(Protocol):
    """What retrieval reads of an open_clip CLIP model (open_clip ships no type information)."""

    def eval(self) -> object: ...

    def encode_image(self, image: torch.Tensor) -> torch.Tensor: ...

    def encode_text(self, text: torch.Tensor) -> torch.Tensor: ...


def encode_images(preprocess: Callable, images: Sequence[Image.Image]) -> torch.Tensor:
    return torch.stack([preprocess(image) for image in images])


def pretrain_clip(
    model: torch.nn.Module,
    tokenizer: Callable,
    pixels: torch.Tensor,
    references: Sequence[Sequence[str]],
    steps: int,
    batch_size: int = 128,
    learning_rate: float = 1e-3,
    seed: int = 0,
) -> list[float]:
    """Train both towers in place on (image, caption) pairs; returns the loss curve.

    Args:
        pixels: preprocessed images (N, 3, H, W), aligned with `references`.
        references: several captions per image; each step draws one at random (augmentation).
    """
    rng = random.Random(seed)
    torch.manual_seed(seed)
    loss_fn = ClipLoss()
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.1)
    scheduler = get_cosine_schedule_with_warmup(optimizer, steps // 10, steps)
    model.train()
    curve = LossCurve(window=25, total_steps=steps)
    for step in tqdm(range(steps), desc="pretrain CLIP", unit="step"):
        rows = rng.sample(range(len(references)), k=min(batch_size, len(references)))
        tokens = tokenizer([rng.choice(references[r]) for r in rows])
        image_features, text_features, logit_scale = model(pixels[torch.tensor(rows)], tokens)[:3]
        loss = loss_fn(image_features, text_features, logit_scale)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        curve.add(loss.item())
    model.eval()
    return curve.points


@torch.no_grad()
def retrieval_recall_at_1(model: ClipEncoders, tokenizer: Callable, pixels: torch.Tensor, captions: Sequence[str]) -> float:
    """Zero-shot image -> caption retrieval recall@1 among the given pairs (0-1).

    A retrieved caption counts as correct when its text equals the image's own caption, since
    simple scenes can share a caption word for word.
    """
    model.eval()
    image = torch.nn.functional.normalize(model.encode_image(pixels), dim=-1)
    text = torch.nn.functional.normalize(model.encode_text(tokenizer(list(captions))), dim=-1)
    best = (image @ text.T).argmax(dim=1).tolist()
    return sum(captions[j] == captions[i] for i, j in enumerate(best)) / len(captions)


def chance_recall_at_1(captions: Sequence[str]) -> float:
    """Expected recall@1 of a random ranking, with duplicate captions counted as hits."""
    counts: dict[str, int] = {}
    for caption in captions:
        counts[caption] = counts.get(caption, 0) + 1
    return sum(counts[c] for c in captions) / len(captions) ** 2
