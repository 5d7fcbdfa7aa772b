"""Image-caption pairs from the shapes world for VL pretraining, disjoint from mini-VL.

How disjointness is guaranteed:

1. Scenes come from their own random streams (``tasks.pretraining:<seed>:<n>``),
   never from the streams of :mod:`tasks.benchmark` or :mod:`tasks.vqa_generate`,
   and ids are ``pretrain_<n>``, so no id is shared with any split.
2. No pretraining scene has a held-out colour-shape pair
   (:data:`~tasks.world.HELD_OUT_PAIRS`), so the out-of-distribution test
   splits stay out of distribution for a pretrained model too.
3. Given ``exclude_root`` (a generated benchmark), every candidate whose scene
   equals a benchmark scene, or whose rendered pixels equal a benchmark image
   or video frame, is skipped. Random positions make an equal scene nearly
   impossible, but one small object can land on the same pixels, so the
   pixel check is what makes the guarantee exact.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from tasks.captions import caption_scene
from tasks.errors import DatasetError
from tasks.render import render_scene
from tasks.world import HELD_OUT_PAIRS, Scene, sample_scene

__all__ = ["PretrainingPair", "pretraining_corpus"]

_NAMESPACE = "tasks.pretraining"


@dataclass(frozen=True)
class PretrainingPair:
    """One pretraining example.

    Attributes:
        pair_id: ``pretrain_<n>``.
        scene: The ground truth.
        image: The rendered image.
        caption: One COCO-style caption of the scene.
    """

    pair_id: str
    scene: Scene
    image: Image.Image
    caption: str


def _digest(image: Image.Image) -> str:
    return hashlib.sha256(image.convert("RGB").tobytes() + repr(image.size).encode()).hexdigest()


def _benchmark_exclusions(root: Path) -> tuple[set[tuple], set[str]]:
    path = root / "scenes.json"
    if not path.is_file():
        raise DatasetError(f"{path} does not exist; exclude_root must be a benchmark from tasks.generate_benchmark.")
    truth = json.loads(path.read_text(encoding="utf-8"))
    scenes = {tuple(map(tuple, objs)) for objs in truth["images"].values()}
    scenes |= {tuple(map(tuple, v["objects"])) for v in truth["videos"].values()}
    pixels = set()
    for image_path in [*(root / "images").glob("*.png"), *(root / "videos").glob("*/frame_*.png")]:
        with Image.open(image_path) as image:
            pixels.add(_digest(image))
    return scenes, pixels


def pretraining_corpus(seed: int = 0, n: int = 1000, image_size: int = 64, exclude_root: Path | None = None) -> list[PretrainingPair]:
    """Draw ``n`` image-caption pairs, disjoint from every downstream split.

    Args:
        seed: Seed of every random choice.
        n: Number of pairs.
        image_size: Side of the square images in pixels, >= 16.
        exclude_root: A generated benchmark whose scenes and pixels must not
            reappear (see the module docstring); ``None`` skips that check.

    Returns:
        The pairs, in id order; the same arguments give the same pairs.

    Raises:
        ValueError: If ``n`` is negative.
        DatasetError: If ``exclude_root`` has no ``scenes.json``.
    """
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be an int >= 0, but got {n!r}.")
    scenes, pixels = _benchmark_exclusions(Path(exclude_root)) if exclude_root is not None else (set(), set())
    pairs: list[PretrainingPair] = []
    attempt = 0
    while len(pairs) < n:
        rng = random.Random(f"{_NAMESPACE}:{seed}:{attempt}")
        attempt += 1
        scene = sample_scene(rng, forbidden_pairs=HELD_OUT_PAIRS)
        image = render_scene(scene, image_size)
        key = tuple((o.shape, o.colour, o.size, o.x, o.y) for o in scene.objects)
        if key in scenes or _digest(image) in pixels:
            continue
        caption = caption_scene(scene, rng, 1)[0]
        pairs.append(PretrainingPair(f"pretrain_{len(pairs)}", scene, image, caption))
    return pairs
