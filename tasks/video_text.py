"""Text about a :class:`~tasks.video_world.VideoClip`: subtitles, 5-way questions, captions.

* Subtitles: two speakers; one line points at an object ("look at the blue
  square"), the others are small talk, as in TV dialogue.
* Questions (TVQA style, five answers, the correct index uniform):
  ``direction`` "which way does the red circle move?"; ``mover`` "which object
  moves up?"; ``subtitle`` "which way does the shape anna points out move?"
  (needs the subtitles and the frames); ``count`` "how many objects move?".
* Captions (TVC style): five varied descriptions of what moves where.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from tasks.captions import object_phrase
from tasks.gqa_questions import describe_uniquely
from tasks.video_world import DIRECTIONS, VideoClip
from tasks.world import COLOURS, SHAPES, SceneObject

__all__ = ["N_CHOICES", "QUESTION_KINDS", "VideoQuestion", "ask_video", "caption_clip", "question_kind", "subtitles_for"]

N_CHOICES = 5
_SPEAKERS = ("anna", "ben", "carla", "dev")
_SMALL_TALK = (
    "did you hear that?",
    "i think it is going to rain.",
    "we should leave soon.",
    "this is taking forever.",
    "can you pass me the water?",
    "i told you so.",
)
_MOTION_WORDS = {"left": "to the left", "right": "to the right", "up": "up", "down": "down", "still": "nowhere"}
_COUNT_CHOICES = ("one", "two", "three", "four", "none")
QUESTION_KINDS = ("direction", "mover", "subtitle", "count")


@dataclass(frozen=True)
class VideoQuestion:
    """A five-way question: the text, the answers and the correct index."""

    kind: str
    question: str
    choices: tuple[str, ...]
    answer_idx: int


def subtitles_for(clip: VideoClip, rng: random.Random) -> tuple[str, SceneObject, list[dict]]:
    """Subtitle lines for a clip, the speaker whose line names an object, and that object.

    Returns:
        (pointing speaker, the object named, ``[{text, start, end}]`` in time order).
    """
    speakers = rng.sample(_SPEAKERS, 2)
    target = clip.scene.objects[rng.randrange(len(clip.scene.objects))]
    pointing = f"{speakers[0]}: look at the {target.colour} {target.shape}."
    lines = [pointing] + [f"{speakers[1]}: {t}" for t in rng.sample(_SMALL_TALK, 2)]
    rng.shuffle(lines)
    step = clip.duration / len(lines)
    subs = [{"text": t, "start": round(i * step, 2), "end": round((i + 1) * step, 2)} for i, t in enumerate(lines)]
    return speakers[0], target, subs


def _five_way(rng: random.Random, kind: str, question: str, answer: str, pool: list[str]) -> VideoQuestion:
    distractors = rng.sample(sorted(set(pool) - {answer}), N_CHOICES - 1)
    idx = rng.randrange(N_CHOICES)
    choices = distractors[:idx] + [answer] + distractors[idx:]
    return VideoQuestion(kind, question, tuple(choices), idx)


def _direction_pool() -> list[str]:
    return [_MOTION_WORDS[d] for d in (*DIRECTIONS, "still")]


def _object_distractors(clip: VideoClip, answer: str, rng: random.Random) -> list[str]:
    present = sorted({f"the {o.colour} {o.shape}" for o in clip.scene.objects} - {answer})
    # Objects in the clip that do not move are the hard distractors; absent
    # colour-shape pairs fill the rest.
    absent = sorted({f"the {c} {s}" for c in COLOURS for s in SHAPES} - set(present) - {answer})
    return present[: N_CHOICES - 1] + rng.sample(absent, N_CHOICES - 1 - min(len(present), N_CHOICES - 1))


def ask_video(clip: VideoClip, rng: random.Random, pointed: SceneObject | None, speaker: str) -> VideoQuestion:
    """Draw one question about the clip with a uniformly chosen kind.

    Args:
        clip: The clip.
        rng: Source of randomness; it is advanced.
        pointed: The object the pointing subtitle line names.
        speaker: The speaker of that line.

    Returns:
        The question with five answers.
    """
    kind = rng.choice(QUESTION_KINDS)
    if kind == "subtitle" and pointed is not None:
        motion = clip.motions[clip.scene.objects.index(pointed)]
        return _five_way(rng, kind, f"which way does the shape {speaker} points out move?", _MOTION_WORDS[motion], _direction_pool())
    if kind == "mover":
        movers = clip.movers()
        obj, direction = movers[rng.randrange(len(movers))]
        if sum(1 for _, d in movers if d == direction) == 1:
            answer = f"the {obj.colour} {obj.shape}"
            distractors = _object_distractors(clip, answer, rng)
            return _five_way(rng, kind, f"which object moves {_MOTION_WORDS[direction]}?", answer, distractors)
    if kind == "count":
        n = len(clip.movers())
        return _five_way(rng, kind, "how many objects move?", _COUNT_CHOICES[n - 1], list(_COUNT_CHOICES))
    options = [(o, m, d) for o, m in zip(clip.scene.objects, clip.motions) if (d := describe_uniquely(clip.scene, o))]
    if not options:  # indistinguishable objects: fall back to counting
        n = len(clip.movers())
        return _five_way(rng, "count", "how many objects move?", _COUNT_CHOICES[n - 1], list(_COUNT_CHOICES))
    obj, motion, description = options[rng.randrange(len(options))]
    return _five_way(rng, "direction", f"which way does the {description} move?", _MOTION_WORDS[motion], _direction_pool())


def question_kind(question: str) -> str | None:
    """The kind of a generated question, read back from its template (None: not generated here)."""
    if question.startswith("which way does the shape ") and question.endswith(" points out move?"):
        return "subtitle"
    if question.startswith("which way does the "):
        return "direction"
    if question.startswith("which object moves "):
        return "mover"
    if question == "how many objects move?":
        return "count"
    return None


def caption_clip(clip: VideoClip, rng: random.Random, n: int = 5) -> list[str]:
    """``n`` distinct descriptions of the clip's motion, TVC style."""
    movers = clip.movers()
    still = [o for o, m in zip(clip.scene.objects, clip.motions) if m == "still"]
    captions: list[str] = []
    for attempt in range(20 * n):
        with_size = rng.random() < 0.5
        verb = rng.choice(("moves", "slides", "glides", "travels"))
        parts = [f"{object_phrase(o, with_size)} {verb} {_MOTION_WORDS[d]}" for o, d in movers]
        text = " and ".join(parts)
        style = rng.randrange(3)
        if style == 1 and still:
            text += (
                " while "
                + " and ".join(object_phrase(o, with_size) for o in still)
                + " "
                + ("stays still" if len(still) == 1 else "stay still")
            )
        elif style == 2:
            text = rng.choice(("in this clip ", "in the video ", "here ")) + text
        caption = text + "."
        if caption not in captions:
            captions.append(caption)
        if len(captions) == n:
            break
    return captions
