"""The pretraining corpus: scenes of the generated world, disjoint from every downstream split.

The scenes come from `tasks.pretraining_corpus` (its own random streams, no held-out colour-
shape pairs, and, given the benchmark's root, no scene or image that the benchmark holds).
Each scene gets five reference captions (for CLIP, one drawn per step) and the LM's text adds
a question about the scene, never its answer.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from tasks import pretraining_corpus as world_pairs
from tasks.captions import caption_scene
from tasks.vqa_questions import ask


@dataclass(frozen=True)
class Corpus:
    """Aligned images and their 5 reference captions, plus the LM's text (captions and questions)."""

    images: list[Image.Image]
    references: list[list[str]]
    texts: list[str]


def pretraining_corpus(n_scenes: int, seed: int = 0, image_size: int = 64, exclude_root: Path | None = None) -> Corpus:
    # The seed string keeps this package's old name (models.pretrain): a new one would draw other
    # captions and questions, and so build other backbones than before.
    rng = random.Random(f"models.pretrain:{seed}")
    images, references, texts = [], [], []
    for pair in world_pairs(seed=seed, n=n_scenes, image_size=image_size, exclude_root=exclude_root):
        captions = [pair.caption] + caption_scene(pair.scene, rng, 4)
        images.append(pair.image)
        references.append(captions)
        texts.extend(captions)
        texts.append(ask(pair.scene, rng).question)
    return Corpus(images, references, texts)
