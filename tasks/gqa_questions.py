"""GQA-style compositional questions about a :class:`~tasks.world.Scene`.

Five kinds, after GQA's structural types:

* ``relate`` (query): "what color is the object left of the square?" -> a colour
  or shape; exactly one object must stand clearly in that relation;
* ``verify`` (verify): "is the red circle above the triangle?" -> yes/no, balanced;
* ``choose`` (choose): "is the circle to the left or to the right of the blue
  object?" -> left/right or above/below;
* ``compare`` (compare): "are the circle and the square the same color?" -> yes/no;
* ``query`` (query): "what size is the green object?" -> an attribute; the
  fallback that every scene can answer.

Objects are referred to by the shortest description that picks out exactly
one of them. A relation holds when the centres differ by more than
:data:`MARGIN` of the image side; questions whose answer would hinge on a
smaller difference are never asked. Answers are single lowercase words, already
normalised for the GQA metric.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from tasks.world import Scene, SceneObject

__all__ = ["GQA_KINDS", "MARGIN", "GQASpec", "ask_gqa", "describe_uniquely"]

GQA_KINDS: tuple[str, ...] = ("relate", "verify", "choose", "compare", "query")
MARGIN = 0.1
# relation -> (axis, sign): obj is <relation> ref when sign * (obj - ref) > MARGIN.
_RELATIONS = {"left of": ("x", -1), "right of": ("x", 1), "above": ("y", -1), "below": ("y", 1)}
_OPPOSITE = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}
_ATTRIBUTES = {"color": "colour", "shape": "shape", "size": "size"}


@dataclass(frozen=True)
class GQASpec:
    """A question, its kind and its answer (a single normalised word)."""

    kind: str
    question: str
    answer: str


def describe_uniquely(scene: Scene, obj: SceneObject, avoid: str | None = None) -> str | None:
    """The shortest noun phrase that picks out ``obj`` alone, or None.

    Args:
        scene: The scene ``obj`` is in.
        obj: The object to describe.
        avoid: An attribute (``"colour"``, ``"shape"``, ``"size"``) the
            description must not name, because the question asks for it.

    Returns:
        E.g. ``"square"``, ``"red object"``, ``"large blue circle"``.
    """
    options = [
        ("shape",),
        ("colour",),
        ("colour", "shape"),
        ("size", "shape"),
        ("size", "colour"),
        ("size", "colour", "shape"),
    ]
    for attrs in options:
        if avoid in attrs:
            continue
        if scene.count(**{a: getattr(obj, a) for a in attrs}) == 1:
            words = [getattr(obj, a) for a in ("size", "colour") if a in attrs]
            return " ".join(words + [obj.shape if "shape" in attrs else "object"])
    return None


def _offset(obj: SceneObject, ref: SceneObject, relation: str) -> float:
    axis, sign = _RELATIONS[relation]
    return sign * (getattr(obj, axis) - getattr(ref, axis))


def _ask_relate(scene: Scene, rng: random.Random) -> GQASpec | None:
    options = []
    for ref in scene.objects:
        ref_desc = describe_uniquely(scene, ref)
        for relation in _RELATIONS:
            others = [o for o in scene.objects if o is not ref]
            hits = [o for o in others if _offset(o, ref, relation) > MARGIN]
            clear = all(o in hits or _offset(o, ref, relation) < 0 for o in others)
            if len(hits) == 1 and clear and ref_desc is not None:
                for question_attr in ("color", "shape"):
                    options.append((hits[0], relation, ref_desc, question_attr))
    if not options:
        return None
    target, relation, ref_desc, attr = options[rng.randrange(len(options))]
    return GQASpec("relate", f"what {attr} is the object {relation} the {ref_desc}?", getattr(target, _ATTRIBUTES[attr]))


def _clear_pairs(scene: Scene, axis_relations: tuple[str, ...]) -> list[tuple[str, str, str]]:
    """(description a, relation that holds, description b) for well-separated pairs."""
    pairs = []
    for a in scene.objects:
        for b in scene.objects:
            da, db = describe_uniquely(scene, a), describe_uniquely(scene, b)
            if a is b or da is None or db is None:
                continue
            for relation in axis_relations:
                if _offset(a, b, relation) > MARGIN:
                    pairs.append((da, relation, db))
    return pairs


def _ask_verify(scene: Scene, rng: random.Random) -> GQASpec | None:
    pairs = _clear_pairs(scene, tuple(_RELATIONS))
    if not pairs:
        return None
    a, relation, b = pairs[rng.randrange(len(pairs))]
    truth = rng.random() < 0.5
    asked = relation if truth else _OPPOSITE[relation]
    return GQASpec("verify", f"is the {a} {asked} the {b}?", "yes" if truth else "no")


def _ask_choose(scene: Scene, rng: random.Random) -> GQASpec | None:
    pairs = _clear_pairs(scene, tuple(_RELATIONS))
    if not pairs:
        return None
    a, relation, b = pairs[rng.randrange(len(pairs))]
    if relation in ("left of", "right of"):
        question = f"is the {a} to the left or to the right of the {b}?"
        answer = relation.split()[0]
    else:
        first, second = ("above", "below") if rng.random() < 0.5 else ("below", "above")
        question, answer = f"is the {a} {first} or {second} the {b}?", relation
    return GQASpec("choose", question, answer)


def _ask_compare(scene: Scene, rng: random.Random) -> GQASpec | None:
    by_answer: dict[str, list[str]] = {"yes": [], "no": []}
    objs = scene.objects
    for i, a in enumerate(objs):
        for b in objs[i + 1 :]:
            for attr in ("color", "shape"):
                da = describe_uniquely(scene, a, avoid=_ATTRIBUTES[attr])
                db = describe_uniquely(scene, b, avoid=_ATTRIBUTES[attr])
                if da is None or db is None or da == db:
                    continue
                same = getattr(a, _ATTRIBUTES[attr]) == getattr(b, _ATTRIBUTES[attr])
                by_answer["yes" if same else "no"].append(f"are the {da} and the {db} the same {attr}?")
    # Answer first, so "no" (5 times likelier by chance) does not dominate.
    answers = [a for a in ("yes", "no") if by_answer[a]]
    if not answers:
        return None
    answer = answers[rng.randrange(len(answers))]
    return GQASpec("compare", rng.choice(by_answer[answer]), answer)


def _ask_query(scene: Scene, rng: random.Random) -> GQASpec:
    attr = rng.choice(sorted(_ATTRIBUTES))
    options = [(o, d) for o in scene.objects if (d := describe_uniquely(scene, o, avoid=_ATTRIBUTES[attr])) is not None]
    if options:
        obj, description = options[rng.randrange(len(options))]
        return GQASpec("query", f"what {attr} is the {description}?", getattr(obj, _ATTRIBUTES[attr]))
    # Only identical-looking objects: no object can be singled out, so count them.
    obj = scene.objects[rng.randrange(len(scene.objects))]
    questions = {
        "how many objects are there?": len(scene.objects),
        f"how many {obj.shape}s are there?": scene.count(shape=obj.shape),
        f"how many {obj.colour} objects are there?": scene.count(colour=obj.colour),
    }
    question = rng.choice(sorted(questions))
    return GQASpec("query", question, str(questions[question]))


_ASKERS = {"relate": _ask_relate, "verify": _ask_verify, "choose": _ask_choose, "compare": _ask_compare}


def ask_gqa(scene: Scene, rng: random.Random, exclude: frozenset[str] = frozenset()) -> GQASpec:
    """Draw one question, preferring the compositional kinds.

    A kind is chosen uniformly among ``relate``, ``verify``, ``choose`` and
    ``compare``; when the scene cannot support it, the others are tried in
    random order and ``query`` is the last resort.

    Args:
        scene: The scene the question is about.
        rng: Source of randomness; it is advanced.
        exclude: Question texts already asked about this image.

    Returns:
        The question and its answer.

    Raises:
        RuntimeError: If no new question is found in 50 tries.
    """
    for _ in range(50):
        kinds = list(_ASKERS)
        rng.shuffle(kinds)
        spec = None
        for kind in kinds:
            spec = _ASKERS[kind](scene, rng)
            if spec is not None:
                break
        if spec is None:
            spec = _ask_query(scene, rng)
        if spec.question not in exclude:
            return spec
    raise RuntimeError(f"could not draw a new GQA question after 50 tries ({len(exclude)} already asked); ask fewer per image.")
