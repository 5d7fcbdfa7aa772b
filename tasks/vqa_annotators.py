"""Simulated human answers: 10 annotators per question, as in VQA v2.

Most annotators give the true answer. Up to three give a *near miss* (a
neighbouring colour, a count off by one, a flipped yes/no, a looser shape word)
and up to two type the truth with a *surface variation* ("Red.", "two",
"a square", "Yes!") that the official normalisation maps back to the truth.
At least five therefore type the exact truth, so a perfect model can still
score 100 under the official metric, which gives ground truth only its
punctuation step (see :mod:`tasks.metrics.vqa_accuracy`).
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

from tasks.metrics.vqa_accuracy import normalize_answer
from tasks.vqa_questions import QuestionSpec
from tasks.world import COLOURS

__all__ = ["N_ANNOTATORS", "RawAnswer", "simulate_answers", "soft_label"]

N_ANNOTATORS = 10
# How many annotators give a near miss / a surface variation of the truth.
# Rare disagreement keeps the majority-answer baseline low: a wrong "yes" only
# earns credit on a "no" question when annotators flipped.
_NEAR_MISS_WEIGHTS = {0: 0.5, 1: 0.3, 2: 0.15, 3: 0.05}
_SURFACE_WEIGHTS = {0: 0.5, 1: 0.35, 2: 0.15}
_NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five")
_SHAPE_CONFUSIONS = {
    "circle": ("oval", "round"),
    "square": ("rectangle", "box"),
    "triangle": ("pyramid", "triangular"),
}


@dataclass(frozen=True)
class RawAnswer:
    """One annotator's answer as it would appear in the annotation file.

    Attributes:
        answer: The text as typed.
        confidence: ``"yes"`` or ``"maybe"`` (VQA's ``answer_confidence``).
    """

    answer: str
    confidence: str


def _weighted(rng: random.Random, weights: dict[int, float]) -> int:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _near_miss(spec: QuestionSpec, rng: random.Random) -> str:
    truth = spec.answer
    if spec.kind == "color":
        i = COLOURS.index(truth)
        return COLOURS[(i + rng.choice((-1, 1))) % len(COLOURS)]
    if spec.kind == "shape":
        return rng.choice(_SHAPE_CONFUSIONS[truth])
    if spec.kind == "count":
        n = int(truth)
        return str(n + 1 if n == 0 else n + rng.choice((-1, 1)))
    return "no" if truth == "yes" else "yes"


def _surface_variant(spec: QuestionSpec, rng: random.Random) -> str:
    truth = spec.answer
    forms = [truth.capitalize(), truth + ".", truth.capitalize() + "."]
    if spec.kind == "count":
        word = _NUMBER_WORDS[int(truth)]
        forms += [word, word.capitalize()]
    elif spec.kind == "shape":
        forms += [f"a {truth}", f"A {truth}", f"the {truth}"]
    elif spec.kind == "exist":
        forms += [truth + "!", truth.capitalize() + "!"]
    return rng.choice(forms)


def simulate_answers(spec: QuestionSpec, rng: random.Random) -> tuple[RawAnswer, ...]:
    """Draw the 10 raw annotator answers for a question.

    Args:
        spec: The question and its true answer.
        rng: Source of randomness; it is advanced.

    Returns:
        10 answers in annotator order (``answer_id`` 1..10).
    """
    n_miss = _weighted(rng, _NEAR_MISS_WEIGHTS)
    n_surface = _weighted(rng, _SURFACE_WEIGHTS)
    roles = ["miss"] * n_miss + ["surface"] * n_surface
    roles += ["truth"] * (N_ANNOTATORS - len(roles))
    rng.shuffle(roles)
    answers = []
    for role in roles:
        if role == "miss":  # unsure annotators say so half the time
            answers.append(RawAnswer(_near_miss(spec, rng), rng.choice(("yes", "maybe"))))
        elif role == "surface":
            answers.append(RawAnswer(_surface_variant(spec, rng), "yes"))
        else:
            answers.append(RawAnswer(spec.answer, "maybe" if rng.random() < 0.1 else "yes"))
    return tuple(answers)


def soft_label(answers: tuple[RawAnswer, ...] | list[str]) -> dict[str, float]:
    """Soft target scores of the normalised answers (the ``label`` field).

    An answer given by ``c`` of the 10 annotators (after
    :func:`~tasks.metrics.normalize_answer`) scores ``min(1, c / 3)``: three
    agreeing annotators make an answer fully correct, as in the VQA metric.

    Args:
        answers: The raw answers, as :class:`RawAnswer` or plain strings.

    Returns:
        answer -> score, highest score first, ties in alphabetical order so the
        JSON is deterministic.
    """
    texts = [a.answer if isinstance(a, RawAnswer) else a for a in answers]
    counts = Counter(normalize_answer(t) for t in texts)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return {answer: min(1.0, c / 3) for answer, c in ranked}
