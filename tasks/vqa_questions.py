"""Questions about a :class:`~tasks.world.Scene`, with their true answers.

Four kinds, mirroring common VQA v2 question types:

* ``color``: "what color is the large square?" (the object is described
  uniquely without its colour) -> a colour;
* ``shape``: "what shape is the red object?" -> a shape;
* ``count``: "how many circles are there?", "how many blue objects are
  there?", "how many objects are there?" -> a digit 0-4;
* ``exist``: "is there a blue triangle?" -> "yes"/"no", balanced, with most
  "no" questions reusing a colour or shape that is in the image so that the
  model has to bind colour to shape.

Answers are already in the normalised form of the official VQA metric.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from tasks.world import COLOURS, SHAPES, Scene, SceneObject

__all__ = ["QUESTION_KINDS", "QuestionSpec", "ask"]

QUESTION_KINDS: tuple[str, ...] = ("color", "shape", "count", "exist")
# (question_type, answer_type) as the official annotation files spell them.
_TYPES: dict[str, tuple[str, str]] = {
    "color": ("what color is the", "other"),
    "shape": ("what shape is the", "other"),
    "count": ("how many", "number"),
    "exist": ("is there a", "yes/no"),  # also for "is there an ...": one type per kind
}
_HARD_NEGATIVE_P = 0.7


@dataclass(frozen=True)
class QuestionSpec:
    """A question about a scene and its true (normalised) answer.

    Attributes:
        kind: One of :data:`QUESTION_KINDS`.
        question: The question text, lowercase, ending in "?".
        answer: The true answer, already normalised.
        question_type: VQA question type, e.g. ``"how many"``.
        answer_type: ``"yes/no"``, ``"number"`` or ``"other"``.
    """

    kind: str
    question: str
    answer: str
    question_type: str
    answer_type: str


def _spec(kind: str, question: str, answer: str) -> QuestionSpec:
    question_type, answer_type = _TYPES[kind]
    return QuestionSpec(kind, question, answer, question_type, answer_type)


def _unique_descriptions(scene: Scene, *, with_colour: bool) -> list[tuple[SceneObject, str]]:
    """Descriptions that pick out exactly one object, naming colour or shape.

    A colour question must not name the colour and a shape question must not
    name the shape, so each uses the other attribute, plus size when needed.
    """
    found = []
    for obj in scene.objects:
        if with_colour:
            head, plain = f"{obj.colour} object", scene.count(colour=obj.colour)
            sized = scene.count(colour=obj.colour, size=obj.size)
        else:
            head, plain = obj.shape, scene.count(shape=obj.shape)
            sized = scene.count(shape=obj.shape, size=obj.size)
        if plain == 1:
            found.append((obj, head))
        if sized == 1:  # also when the plain form is unique: adds phrasing variety
            found.append((obj, f"{obj.size} {head}"))
    return found


def _ask_color(scene: Scene, rng: random.Random) -> QuestionSpec | None:
    options = _unique_descriptions(scene, with_colour=False)
    if not options:
        return None
    obj, description = options[rng.randrange(len(options))]
    return _spec("color", f"what color is the {description}?", obj.colour)


def _ask_shape(scene: Scene, rng: random.Random) -> QuestionSpec | None:
    options = _unique_descriptions(scene, with_colour=True)
    if not options:
        return None
    obj, description = options[rng.randrange(len(options))]
    return _spec("shape", f"what shape is the {description}?", obj.shape)


def _ask_count(scene: Scene, rng: random.Random) -> QuestionSpec:
    # Pick the answer first, uniformly among those the scene allows, then a
    # question with that answer: asking about a random attribute would make
    # "1" the answer to almost half of all count questions.
    by_answer: dict[int, list[str]] = {len(scene.objects): ["how many objects are there?"]}
    for shape in SHAPES:
        by_answer.setdefault(scene.count(shape=shape), []).append(f"how many {shape}s are there?")
    for colour in COLOURS:
        by_answer.setdefault(scene.count(colour=colour), []).append(f"how many {colour} objects are there?")
    answer = rng.choice(sorted(by_answer))
    return _spec("count", rng.choice(by_answer[answer]), str(answer))


def _ask_exist(scene: Scene, rng: random.Random) -> QuestionSpec:
    present = {(o.colour, o.shape) for o in scene.objects}
    if rng.random() < 0.5:
        colour, shape = sorted(present)[rng.randrange(len(present))]
        answer = "yes"
    else:
        absent = [(c, s) for c in COLOURS for s in SHAPES if (c, s) not in present]
        hard = [(c, s) for c, s in absent if any(c == pc or s == ps for pc, ps in present)]
        pool = hard if hard and rng.random() < _HARD_NEGATIVE_P else absent
        colour, shape = pool[rng.randrange(len(pool))]
        answer = "no"
    article = "an" if colour[0] in "aeiou" else "a"
    return _spec("exist", f"is there {article} {colour} {shape}?", answer)


_ASKERS = {"color": _ask_color, "shape": _ask_shape, "count": _ask_count, "exist": _ask_exist}


def ask(scene: Scene, rng: random.Random, exclude: frozenset[str] = frozenset()) -> QuestionSpec:
    """Draw one question about ``scene`` with a uniformly chosen kind.

    If the chosen kind cannot be asked (no object has a unique description),
    the remaining kinds are tried in random order; ``count`` and ``exist`` can
    always be asked.

    Args:
        scene: The scene the question is about.
        rng: Source of randomness; it is advanced.
        exclude: Question texts to avoid (those already asked about the image).

    Returns:
        The question and its answer.

    Raises:
        RuntimeError: If every drawable question is in ``exclude``.
    """
    for _ in range(50):  # resample on a repeat; distinct questions are plentiful
        kinds = list(QUESTION_KINDS)
        rng.shuffle(kinds)
        spec: QuestionSpec | None = None
        for kind in kinds:
            spec = _ASKERS[kind](scene, rng)
            if spec is not None:
                break
        if spec is not None and spec.question not in exclude:
            return spec
    raise RuntimeError(f"could not draw a new question after 50 tries ({len(exclude)} already asked); ask fewer questions per image.")
