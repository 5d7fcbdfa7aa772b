"""NLVR2-style statements about a pair of scenes, with their truth values.

The statements compare or quantify over the two images ("there are more red
objects in the left image than in the right image", "exactly one image
contains a triangle"), so both images must be read. :func:`make_statement`
draws a statement with a requested truth value, which lets the generator
balance the labels exactly.
"""

from __future__ import annotations

import random

from tasks.world import COLOURS, SHAPES, Scene

__all__ = ["candidate_statements", "make_statement"]

_NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _shapes(n: int, shape: str) -> str:
    return f"{_NUMBER_WORDS[n]} {shape}{'' if n == 1 else 's'}"


def candidate_statements(left: Scene, right: Scene, rng: random.Random) -> list[tuple[str, bool]]:
    """A varied set of statements about the pair, each with its truth value.

    Numbers are drawn next to the true counts, so true and false statements
    look alike and the model has to count.

    Args:
        left: The scene of ``img0``.
        right: The scene of ``img1``.
        rng: Source of randomness; it is advanced.

    Returns:
        (statement, truth) pairs, in a fixed template order.
    """
    sides = {"left": left, "right": right}
    shape, colour = rng.choice(SHAPES), rng.choice(COLOURS)
    side = rng.choice(("left", "right"))
    other = "right" if side == "left" else "left"
    true_n = sides[side].count(shape=shape)
    n = max(1, true_n + rng.choice((-1, 0, 0, 1)))
    total = len(left.objects) + len(right.objects)
    total_claim = max(2, total + rng.choice((-1, 0, 0, 1)))
    in_left = left.count(colour=colour, shape=shape) > 0
    in_right = right.count(colour=colour, shape=shape) > 0
    with_shape = [s.count(shape=shape) > 0 for s in (left, right)]
    return [
        (f"the {side} image contains exactly {_shapes(n, shape)}.", true_n == n),
        (
            f"there are more {colour} objects in the {side} image than in the {other} image.",
            sides[side].count(colour=colour) > sides[other].count(colour=colour),
        ),
        (f"both images contain {_article(colour)} {colour} {shape}.", in_left and in_right),
        (f"exactly one image contains {_article(shape)} {shape}.", sum(with_shape) == 1),
        (f"there are {_NUMBER_WORDS[total_claim]} objects in total.", total == total_claim),
        (
            f"each image contains at least one {colour} object.",
            left.count(colour=colour) > 0 and right.count(colour=colour) > 0,
        ),
        (
            f"the {side} image has more objects than the {other} image.",
            len(sides[side].objects) > len(sides[other].objects),
        ),
    ]


def make_statement(left: Scene, right: Scene, rng: random.Random, truth: bool) -> str | None:
    """A statement about the pair whose truth value is ``truth``, or None.

    The template is chosen first and only its parameters are redrawn until
    the truth value matches, so each template appears with both labels and
    the wording alone does not betray the label.

    Args:
        left: The scene of ``img0``.
        right: The scene of ``img1``.
        rng: Source of randomness; it is advanced.
        truth: The wanted label.

    Returns:
        The statement, or None when no template reached ``truth`` (rare; draw
        a new pair).
    """
    n_templates = len(candidate_statements(left, right, random.Random(0)))
    order = list(range(n_templates))
    rng.shuffle(order)
    for template in order:
        for _ in range(8):
            statement, value = candidate_statements(left, right, rng)[template]
            if value == truth:
                return statement
    return None
