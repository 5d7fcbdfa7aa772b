"""COCO-style reference captions for a :class:`~tasks.world.Scene`.

Like COCO's five annotators, the references of one image agree on the content
and differ in wording: each uses a different template, object order (left to
right, largest first, or any) and amount of detail (with or without sizes).
Every caption names every object's colour and shape, so a model that reads the
image can match all references.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from tasks.world import Scene, SceneObject

__all__ = ["N_REFERENCES", "caption_scene", "object_phrase"]

N_REFERENCES = 5
_COUNT_WORDS = ("", "one", "two", "three", "four")


def object_phrase(obj: SceneObject, with_size: bool) -> str:
    """``"a large red circle"``, ``"an orange square"``; the article agrees."""
    words = ([obj.size] if with_size else []) + [obj.colour, obj.shape]
    return ("an " if words[0][0] in "aeiou" else "a ") + " ".join(words)


def _join(phrases: Sequence[str]) -> str:
    if len(phrases) == 1:
        return phrases[0]
    return ", ".join(phrases[:-1]) + " and " + phrases[-1]


def _templates(n: int) -> list[str]:
    things = "shape" if n == 1 else "shapes"
    count = _COUNT_WORDS[n]
    return [
        "{list} on a gray background.",
        f"{count} {things} on a plain background: {{list}}.",
        "a picture of {list}.",
        "there " + ("is" if n == 1 else "are") + " {list} in the image.",
        "an image showing {list}.",
        f"a simple drawing with {count} {things}: {{list}}.",
    ]


def caption_scene(scene: Scene, rng: random.Random, n: int = N_REFERENCES) -> list[str]:
    """Draw ``n`` distinct reference captions for a scene.

    Args:
        scene: The scene to describe.
        rng: Source of randomness; it is advanced.
        n: Number of references, at most 6 (one per template).

    Returns:
        The captions, lowercase, each ending with a period.
    """
    templates = _templates(len(scene.objects))
    rng.shuffle(templates)
    captions: list[str] = []
    for template in templates[:n]:
        objects = list(scene.objects)
        order = rng.choice(("left-to-right", "largest-first", "any"))
        if order == "left-to-right":
            objects.sort(key=lambda o: o.x)
        elif order == "largest-first":
            objects.sort(key=lambda o: (o.size != "large", o.x))
        else:
            rng.shuffle(objects)
        with_size = rng.random() < 0.5
        text = _join([object_phrase(o, with_size) for o in objects])
        if order == "left-to-right" and len(objects) > 1 and "{list}." in template:
            text += " from left to right"
        captions.append(template.format(list=text))
    return captions
