"""Draw a :class:`~tasks.world.Scene` as a small RGB image.

Flat colours on a plain light-grey background and no anti-aliasing: the point
is a task that is learnable from pixels at 64x64, not photo-realism.
"""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image, ImageDraw

from tasks.world import COLOURS, Scene, SceneObject

__all__ = ["BACKGROUND_RGB", "COLOUR_RGB", "render_objects", "render_scene"]

BACKGROUND_RGB: tuple[int, int, int] = (224, 224, 224)
# Saturated and far apart in RGB so that even neighbouring hues (the annotators'
# near misses) stay separable after CLIP's resize and normalisation.
COLOUR_RGB: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "orange": (250, 140, 0),
    "yellow": (235, 215, 0),
    "green": (30, 160, 50),
    "blue": (30, 70, 230),
    "purple": (140, 40, 180),
}
assert set(COLOUR_RGB) == set(COLOURS), "every world colour needs an RGB value"

_MIN_IMAGE_SIZE = 16  # below this a small object is under 3 px across


def _draw_object(draw: ImageDraw.ImageDraw, obj: SceneObject, side: int) -> None:
    cx, cy, r = obj.x * side, obj.y * side, obj.radius * side
    fill = COLOUR_RGB[obj.colour]
    if obj.shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
    elif obj.shape == "square":
        draw.rectangle((cx - r, cy - r, cx + r, cy + r), fill=fill)
    else:  # triangle, apex up, inscribed in the same box as the other shapes
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fill)


def render_scene(scene: Scene, size: int = 64) -> Image.Image:
    """Render a scene to a square RGB image.

    Rendering is a pure function of ``scene`` and ``size``: the same inputs give
    the same pixels.

    Args:
        scene: What to draw.
        size: Side of the square image in pixels.

    Returns:
        A ``size`` x ``size`` PIL image in mode ``"RGB"``.

    Raises:
        ValueError: If ``size`` is below 16 pixels.
    """
    return render_objects(scene.objects, size)


def render_objects(objects: Sequence[SceneObject], size: int = 64) -> Image.Image:
    """Render objects in order, later ones on top: a video frame may overlap them.

    Args:
        objects: What to draw, back to front.
        size: Side of the square image in pixels.

    Returns:
        A ``size`` x ``size`` PIL image in mode ``"RGB"``.

    Raises:
        ValueError: If ``size`` is below 16 pixels.
    """
    if size < _MIN_IMAGE_SIZE:
        raise ValueError(
            f"image size must be at least {_MIN_IMAGE_SIZE} px so small objects stay visible, but got size={size}; pass a larger size."
        )
    image = Image.new("RGB", (size, size), BACKGROUND_RGB)
    draw = ImageDraw.Draw(image)
    for obj in objects:
        _draw_object(draw, obj, size)
    return image
