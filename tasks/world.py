"""A deterministic, seeded toy visual world: scenes of 1-4 coloured shapes.

A :class:`Scene` is the ground truth behind the mini VQA task
(:mod:`tasks.vqa_generate`): questions are answered from the scene and
:mod:`tasks.render` draws the same scene, so every answer can be read off the
pixels. Positions are fractions of the image side, so one scene renders at any
resolution.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

__all__ = [
    "COLOURS",
    "HELD_OUT_PAIRS",
    "MAX_OBJECTS",
    "MIN_OBJECTS",
    "SHAPES",
    "SIZES",
    "SIZE_RADIUS",
    "RandomSource",
    "Scene",
    "SceneObject",
    "sample_scene",
    "with_held_out_pair",
]

SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
# Hue order around the colour wheel: adjacent entries are the "near miss"
# colours a careless annotator confuses (see tasks.vqa_annotators).
COLOURS: tuple[str, ...] = ("red", "orange", "yellow", "green", "blue", "purple")
SIZES: tuple[str, ...] = ("small", "large")
MIN_OBJECTS, MAX_OBJECTS = 1, 4
# (colour, shape) combinations kept out of every in-distribution split and the
# pretraining corpus; only the out-of-distribution test splits show them. One
# per shape and colour, so every colour and every shape is still seen in training.
HELD_OUT_PAIRS: frozenset[tuple[str, str]] = frozenset({("red", "triangle"), ("green", "circle"), ("blue", "square")})

# Half-extent of an object's bounding box as a fraction of the image side.
# Large is ~1.8x small so size stays unambiguous at 64x64 (about 6 px vs 10 px).
SIZE_RADIUS: dict[str, float] = {"small": 0.09, "large": 0.16}
# Free space kept between bounding boxes so shapes never touch, even after the
# renderer rounds to whole pixels.
_GAP = 0.04
_PLACEMENT_TRIES = 200
_SCENE_TRIES = 100

RandomSource = random.Random | np.random.Generator
_T = TypeVar("_T")


@dataclass(frozen=True)
class SceneObject:
    """One shape in a scene.

    Attributes:
        shape: One of :data:`SHAPES`.
        colour: One of :data:`COLOURS`.
        size: One of :data:`SIZES`.
        x: Centre, as a fraction of the image width (0 = left edge).
        y: Centre, as a fraction of the image height (0 = top edge).
    """

    shape: str
    colour: str
    size: str
    x: float
    y: float

    def __post_init__(self) -> None:
        problems = []
        for field, value, allowed in (
            ("shape", self.shape, SHAPES),
            ("colour", self.colour, COLOURS),
            ("size", self.size, SIZES),
        ):
            if value not in allowed:
                problems.append(f"{field}={value!r} is not one of {allowed}")
        if not problems:
            r = self.radius
            for axis, coord in (("x", self.x), ("y", self.y)):
                if not r <= coord <= 1 - r:
                    problems.append(f"{axis}={coord!r} puts a {self.size} object outside the image; it must lie in [{r}, {1 - r}]")
        if problems:
            raise ValueError("invalid SceneObject: " + "; ".join(problems) + ".")

    @property
    def radius(self) -> float:
        """Half-extent of the bounding box, as a fraction of the image side."""
        return SIZE_RADIUS[self.size]

    def overlaps(self, other: SceneObject) -> bool:
        """Whether the two bounding boxes (plus the safety gap) intersect.

        Every shape is drawn inside its box, so disjoint boxes mean the shapes
        never overlap, whatever their kinds.
        """
        reach = self.radius + other.radius + _GAP
        return abs(self.x - other.x) < reach and abs(self.y - other.y) < reach


@dataclass(frozen=True)
class Scene:
    """An image's content: 1-4 non-overlapping objects.

    Attributes:
        objects: The objects, in drawing order.
    """

    objects: tuple[SceneObject, ...]

    def __post_init__(self) -> None:
        n = len(self.objects)
        if not MIN_OBJECTS <= n <= MAX_OBJECTS:
            raise ValueError(f"a Scene holds {MIN_OBJECTS}-{MAX_OBJECTS} objects, but got {n}; pass a tuple of that many SceneObjects.")
        for i in range(n):
            for j in range(i + 1, n):
                if self.objects[i].overlaps(self.objects[j]):
                    raise ValueError(f"objects {i} and {j} of the Scene overlap ({self.objects[i]} vs {self.objects[j]}); move them apart.")

    def matching(self, *, shape: str | None = None, colour: str | None = None, size: str | None = None) -> tuple[SceneObject, ...]:
        """The objects with every given attribute (``None`` matches anything).

        Args:
            shape: Required shape, or ``None``.
            colour: Required colour, or ``None``.
            size: Required size, or ``None``.

        Returns:
            The matching objects, in scene order.
        """
        return tuple(
            o
            for o in self.objects
            if (shape is None or o.shape == shape) and (colour is None or o.colour == colour) and (size is None or o.size == size)
        )

    def count(self, *, shape: str | None = None, colour: str | None = None, size: str | None = None) -> int:
        """Number of objects with every given attribute; see :meth:`matching`."""
        return len(self.matching(shape=shape, colour=colour, size=size))


def _uniform(rng: RandomSource, low: float, high: float) -> float:
    # One call per draw on both generator kinds keeps a seed's stream stable.
    if isinstance(rng, np.random.Generator):
        return float(rng.uniform(low, high))
    return rng.uniform(low, high)


def _pick(rng: RandomSource, options: Sequence[_T]) -> _T:
    if isinstance(rng, np.random.Generator):
        return options[int(rng.integers(len(options)))]
    return options[rng.randrange(len(options))]


def _place(rng: RandomSource, placed: list[SceneObject], forbidden: frozenset[tuple[str, str]]) -> SceneObject | None:
    shape, colour, size = _pick(rng, SHAPES), _pick(rng, COLOURS), _pick(rng, SIZES)
    while (colour, shape) in forbidden:  # no draw at all when nothing is forbidden
        shape, colour = _pick(rng, SHAPES), _pick(rng, COLOURS)
    r = SIZE_RADIUS[size]
    for _ in range(_PLACEMENT_TRIES):
        candidate = SceneObject(shape, colour, size, _uniform(rng, r, 1 - r), _uniform(rng, r, 1 - r))
        if not any(candidate.overlaps(other) for other in placed):
            return candidate
    return None


def sample_scene(rng: RandomSource, forbidden_pairs: frozenset[tuple[str, str]] = frozenset()) -> Scene:
    """Draw a random scene: 1-4 objects with uniform shape, colour and size.

    Positions come from rejection sampling, so objects never overlap. The result
    depends only on the generator's state: the same seed gives the same scene.

    Args:
        rng: A ``random.Random`` or a ``numpy.random.Generator``; it is advanced.
        forbidden_pairs: ``(colour, shape)`` combinations no object may have
            (e.g. :data:`HELD_OUT_PAIRS`); an empty set leaves the random stream
            exactly as it was before this argument existed.

    Returns:
        The sampled scene.

    Raises:
        RuntimeError: If no non-overlapping layout is found (does not happen
            with the built-in sizes; four large objects fill under half the image).
    """
    for _ in range(_SCENE_TRIES):
        n = _pick(rng, range(MIN_OBJECTS, MAX_OBJECTS + 1))
        placed: list[SceneObject] = []
        while len(placed) < n:
            obj = _place(rng, placed, forbidden_pairs)
            if obj is None:
                break  # crowded layout: start the scene again
            placed.append(obj)
        else:
            return Scene(tuple(placed))
    raise RuntimeError(f"could not place non-overlapping objects after {_SCENE_TRIES} tries; SIZE_RADIUS is too large for the image.")


def with_held_out_pair(scene: Scene, rng: random.Random, pairs: frozenset[tuple[str, str]] = HELD_OUT_PAIRS) -> Scene:
    """``scene`` with one random object recoloured and reshaped to a held-out pair.

    Every shape is drawn inside the same bounding box, so the change never
    creates an overlap.

    Args:
        scene: An in-distribution scene.
        rng: Source of randomness; it is advanced.
        pairs: The ``(colour, shape)`` combinations to draw from.

    Returns:
        The new scene, with at least one object of a pair in ``pairs``.
    """
    index = rng.randrange(len(scene.objects))
    colour, shape = sorted(pairs)[rng.randrange(len(pairs))]
    old = scene.objects[index]
    new = SceneObject(shape, colour, old.size, old.x, old.y)
    return Scene(scene.objects[:index] + (new,) + scene.objects[index + 1 :])
