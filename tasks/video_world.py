"""Short videos of the shapes world: a scene whose objects move in straight lines.

A :class:`VideoClip` is a first-frame :class:`~tasks.world.Scene` plus one
motion per object (``left``, ``right``, ``up``, ``down`` or ``still``). One or
two objects move, by :data:`TRAVEL` of the image side over the clip, and never
leave the image; moving objects may pass over others (later ones are drawn on
top). Frames are :data:`FPS` per second, so a clip of 8 frames lasts 4 s.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from PIL import Image

from tasks.render import render_objects
from tasks.world import HELD_OUT_PAIRS, Scene, SceneObject, sample_scene, with_held_out_pair

__all__ = ["DIRECTIONS", "FPS", "TRAVEL", "VideoClip", "sample_clip"]

DIRECTIONS: tuple[str, ...] = ("left", "right", "up", "down")
FPS = 2.0
TRAVEL = 0.3
_STEP = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1), "still": (0, 0)}


@dataclass(frozen=True)
class VideoClip:
    """A moving scene.

    Attributes:
        scene: The objects at the first frame.
        motions: One of :data:`DIRECTIONS` or ``"still"`` per object.
        n_frames: Number of frames, at least 2.
    """

    scene: Scene
    motions: tuple[str, ...]
    n_frames: int

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.n_frames / FPS

    def movers(self) -> tuple[tuple[SceneObject, str], ...]:
        """(object, direction) of every moving object, in scene order."""
        return tuple((o, m) for o, m in zip(self.scene.objects, self.motions) if m != "still")

    def objects_at(self, frame: int) -> tuple[SceneObject, ...]:
        """The objects as drawn in ``frame`` (0-based)."""
        t = frame / (self.n_frames - 1)
        out = []
        for obj, motion in zip(self.scene.objects, self.motions):
            dx, dy = _STEP[motion]
            out.append(replace(obj, x=obj.x + dx * TRAVEL * t, y=obj.y + dy * TRAVEL * t))
        return tuple(out)

    def render(self, size: int) -> list[Image.Image]:
        """Every frame as a ``size`` x ``size`` RGB image."""
        return [render_objects(self.objects_at(f), size) for f in range(self.n_frames)]


def _room(obj: SceneObject, direction: str) -> bool:
    dx, dy = _STEP[direction]
    x, y = obj.x + dx * TRAVEL, obj.y + dy * TRAVEL
    return obj.radius <= x <= 1 - obj.radius and obj.radius <= y <= 1 - obj.radius


def sample_clip(rng: random.Random, n_frames: int, held_out: bool) -> VideoClip:
    """Draw a clip whose first frame is an in- or out-of-distribution scene.

    Args:
        rng: Source of randomness; it is advanced.
        n_frames: Frames in the clip, at least 2.
        held_out: Give one object a held-out colour-shape pair (OOD split);
            otherwise no object has one.

    Returns:
        A clip with one or two moving objects.
    """
    while True:
        scene = sample_scene(rng, forbidden_pairs=HELD_OUT_PAIRS)
        if held_out:
            scene = with_held_out_pair(scene, rng)
        options = [[d for d in DIRECTIONS if _room(o, d)] for o in scene.objects]
        movable = [i for i, dirs in enumerate(options) if dirs]
        if movable:
            break
    n_movers = min(len(movable), rng.choice((1, 1, 2)))
    chosen = rng.sample(movable, n_movers)
    motions = tuple(rng.choice(options[i]) if i in chosen else "still" for i in range(len(scene.objects)))
    return VideoClip(scene, motions, n_frames)
