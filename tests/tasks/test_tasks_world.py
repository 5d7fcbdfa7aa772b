"""The toy world and its renderer: determinism, layout rules, pixels."""

from __future__ import annotations

import random

import numpy as np
import pytest

from tasks import Scene, SceneObject, render_scene, sample_scene
from tasks.render import BACKGROUND_RGB, COLOUR_RGB
from tasks.world import COLOURS, MAX_OBJECTS, MIN_OBJECTS, SHAPES, SIZES


def test_same_seed_same_scene_for_both_generator_kinds() -> None:
    assert sample_scene(random.Random(7)) == sample_scene(random.Random(7))
    assert sample_scene(np.random.default_rng(7)) == sample_scene(np.random.default_rng(7))
    assert len({sample_scene(random.Random(s)) for s in range(20)}) == 20


def test_sampled_scenes_follow_the_rules() -> None:
    rng = random.Random(0)
    scenes = [sample_scene(rng) for _ in range(300)]
    assert {len(s.objects) for s in scenes} == set(range(MIN_OBJECTS, MAX_OBJECTS + 1))
    objects = [o for s in scenes for o in s.objects]
    assert {o.shape for o in objects} == set(SHAPES)
    assert {o.colour for o in objects} == set(COLOURS)
    assert {o.size for o in objects} == set(SIZES)
    for scene in scenes:  # Scene.__post_init__ already rejects overlap; check anyway
        objs = scene.objects
        assert not any(a.overlaps(b) for i, a in enumerate(objs) for b in objs[i + 1 :])


def test_invalid_objects_and_scenes_are_rejected_with_the_rule() -> None:
    with pytest.raises(ValueError, match=r"colour='pink' is not one of"):
        SceneObject("circle", "pink", "small", 0.5, 0.5)
    with pytest.raises(ValueError, match=r"x=0\.01 puts a large object outside the image"):
        SceneObject("circle", "red", "large", 0.01, 0.5)
    a = SceneObject("circle", "red", "large", 0.3, 0.3)
    with pytest.raises(ValueError, match="objects 0 and 1 of the Scene overlap"):
        Scene((a, SceneObject("square", "blue", "small", 0.35, 0.35)))
    with pytest.raises(ValueError, match="a Scene holds 1-4 objects, but got 0"):
        Scene(())


def test_scene_counts_by_attribute() -> None:
    scene = Scene(
        (
            SceneObject("circle", "red", "large", 0.2, 0.2),
            SceneObject("circle", "blue", "small", 0.8, 0.2),
            SceneObject("square", "red", "small", 0.5, 0.8),
        )
    )
    assert scene.count() == 3
    assert scene.count(shape="circle") == 2
    assert scene.count(colour="red", size="small") == 1
    assert scene.count(shape="triangle") == 0


def test_render_draws_each_shape_in_its_colour_on_the_background() -> None:
    scene = Scene(
        (
            SceneObject("square", "red", "large", 0.25, 0.25),
            SceneObject("circle", "green", "large", 0.75, 0.25),
            SceneObject("triangle", "blue", "large", 0.5, 0.75),
        )
    )
    image = render_scene(scene)
    assert image.mode == "RGB" and image.size == (64, 64)
    px = image.load()
    assert px is not None
    assert px[16, 16] == COLOUR_RGB["red"]
    assert px[48, 16] == COLOUR_RGB["green"]
    assert px[32, 50] == COLOUR_RGB["blue"]
    # A square fills its box corner, a circle does not; a triangle's top corners are empty.
    assert px[16 - 9, 16 - 9] == COLOUR_RGB["red"]
    assert px[48 - 9, 16 - 9] == BACKGROUND_RGB
    assert px[32 - 9, 48 - 9] == BACKGROUND_RGB
    assert px[0, 63] == BACKGROUND_RGB


def test_render_is_deterministic_and_sized() -> None:
    scene = sample_scene(random.Random(3))
    assert render_scene(scene).tobytes() == render_scene(scene).tobytes()
    assert render_scene(scene, 128).size == (128, 128)
    with pytest.raises(ValueError, match=r"at least 16 px.*size=8"):
        render_scene(scene, 8)
