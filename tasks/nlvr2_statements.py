"""NLVR2-style statements about a pair of scenes, with their truth values.

The statements say what one named image or both images contain ("the left
image contains a red object", "both images contain a triangle"), so the
statement says which image to read and both images matter. Each template is
a function that draws its own parameters; :func:`make_statement` draws a
statement of a requested template with a requested truth value. The
benchmark asks every template equally often and with both labels equally
often, so neither the wording nor the template betrays the label: only the
images do.
"""

from __future__ import annotations

import random
from typing import Callable

from tasks.world import COLOURS, SHAPES, Scene

__all__ = ["TEMPLATES", "candidate_statements", "make_statement"]

Template = Callable[[Scene, Scene, random.Random], tuple[str, bool]]


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _sides(left: Scene, right: Scene, rng: random.Random) -> tuple[str, Scene, str, Scene]:
    if rng.random() < 0.5:
        return "left", left, "right", right
    return "right", right, "left", left


def _side_colour(left: Scene, right: Scene, rng: random.Random) -> tuple[str, bool]:
    side, scene, _, _ = _sides(left, right, rng)
    colour = rng.choice(COLOURS)
    return f"the {side} image contains {_article(colour)} {colour} object.", scene.count(colour=colour) > 0


def _side_shape(left: Scene, right: Scene, rng: random.Random) -> tuple[str, bool]:
    side, scene, _, _ = _sides(left, right, rng)
    shape = rng.choice(SHAPES)
    return f"the {side} image contains {_article(shape)} {shape}.", scene.count(shape=shape) > 0


def _each_colour(left: Scene, right: Scene, rng: random.Random) -> tuple[str, bool]:
    colour = rng.choice(COLOURS)
    return (
        f"each image contains at least one {colour} object.",
        left.count(colour=colour) > 0 and right.count(colour=colour) > 0,
    )


def _both_shape(left: Scene, right: Scene, rng: random.Random) -> tuple[str, bool]:
    shape = rng.choice(SHAPES)
    truth = left.count(shape=shape) > 0 and right.count(shape=shape) > 0
    return f"both images contain {_article(shape)} {shape}.", truth


# name -> template; the benchmark cycles through them in this order. Statements about what
# each image contains, alone or in both: the embedded tiny backbone learns these from the
# true/false signal alone within a few thousand steps, where counting ("exactly two
# triangles"), comparisons ("more red objects in the left image") and exclusive-or ("exactly
# one image contains ...") stayed at chance after 1,500 (BENCHMARKS.md).
TEMPLATES: dict[str, Template] = {
    "side_colour": _side_colour,
    "side_shape": _side_shape,
    "each_colour": _each_colour,
    "both_shape": _both_shape,
}


def candidate_statements(left: Scene, right: Scene, rng: random.Random) -> list[tuple[str, bool]]:
    """One statement of every template about the pair, each with its truth value.

    Args:
        left: The scene of ``img0``.
        right: The scene of ``img1``.
        rng: Source of randomness; it is advanced.

    Returns:
        (statement, truth) pairs, in :data:`TEMPLATES` order.
    """
    return [template(left, right, rng) for template in TEMPLATES.values()]


def make_statement(left: Scene, right: Scene, rng: random.Random, truth: bool, template: str | None = None) -> str | None:
    """A statement about the pair whose truth value is ``truth``, or None.

    Only the template's parameters are redrawn (a few times) until the truth value
    matches; the caller draws a new pair on None.

    Args:
        left: The scene of ``img0``.
        right: The scene of ``img1``.
        rng: Source of randomness; it is advanced.
        truth: The wanted label.
        template: A key of :data:`TEMPLATES`; None tries every template in random order.

    Returns:
        The statement, or None when the template (every template, without one) did not
        reach ``truth`` for this pair.

    Raises:
        KeyError: An unknown template name.
    """
    if template is not None and template not in TEMPLATES:
        raise KeyError(f"unknown NLVR2 template {template!r}; known: {sorted(TEMPLATES)}")
    names = [template] if template is not None else rng.sample(sorted(TEMPLATES), len(TEMPLATES))
    for name in names:
        for _ in range(8):
            statement, value = TEMPLATES[name](left, right, rng)
            if value == truth:
                return statement
    return None
