"""Questions agree with their scenes; simulated annotators disagree realistically."""

from __future__ import annotations

import random
import re
from collections import Counter

from tasks import normalize_answer, sample_scene
from tasks.vqa_annotators import N_ANNOTATORS, simulate_answers, soft_label
from tasks.vqa_questions import ask
from tasks.world import Scene


def _check(scene: Scene, question: str, answer: str) -> None:
    """Re-derive the answer from the question text and the scene."""
    if m := re.fullmatch(r"what color is the (?:(small|large) )?(\w+)\?", question):
        [obj] = scene.matching(size=m[1], shape=m[2])
        assert answer == obj.colour
    elif m := re.fullmatch(r"what shape is the (?:(small|large) )?(\w+) object\?", question):
        [obj] = scene.matching(size=m[1], colour=m[2])
        assert answer == obj.shape
    elif question == "how many objects are there?":
        assert answer == str(len(scene.objects))
    elif m := re.fullmatch(r"how many (\w+)s are there\?", question):
        assert answer == str(scene.count(shape=m[1]))
    elif m := re.fullmatch(r"how many (\w+) objects are there\?", question):
        assert answer == str(scene.count(colour=m[1]))
    elif m := re.fullmatch(r"is there an? (\w+) (\w+)\?", question):
        assert answer == ("yes" if scene.count(colour=m[1], shape=m[2]) else "no")
    else:
        raise AssertionError(f"unexpected question {question!r}")


def test_every_answer_follows_from_the_scene() -> None:
    rng = random.Random(0)
    kinds: Counter[str] = Counter()
    for _ in range(400):
        scene = sample_scene(rng)
        spec = ask(scene, rng)
        _check(scene, spec.question, spec.answer)
        assert normalize_answer(spec.answer) == spec.answer
        kinds[spec.kind] += 1
    assert set(kinds) == {"color", "shape", "count", "exist"}
    assert min(kinds.values()) > 60  # kinds are drawn roughly uniformly


def test_annotators_mostly_agree_and_sometimes_disagree() -> None:
    rng = random.Random(1)
    disagreements = surface_forms = 0
    for _ in range(300):
        spec = ask(sample_scene(rng), rng)
        raw = simulate_answers(spec, rng)
        assert len(raw) == N_ANNOTATORS
        texts = [a.answer for a in raw]
        assert texts.count(spec.answer) >= 5  # a perfect model can always score 100
        normalised = [normalize_answer(t) for t in texts]
        disagreements += any(n != spec.answer for n in normalised)
        surface_forms += any(t != spec.answer and n == spec.answer for t, n in zip(texts, normalised, strict=True))
    assert 100 < disagreements < 250
    assert surface_forms > 50


def test_soft_label_scores_min_one_count_over_three() -> None:
    raw = ["red"] * 6 + ["Red."] + ["orange"] * 2 + ["purple"]
    # red: 7 annotators -> 1.0; orange: 2 -> 2/3; purple: 1 -> 1/3
    assert soft_label(raw) == {"red": 1.0, "orange": 2 / 3, "purple": 1 / 3}
    assert list(soft_label(raw)) == ["red", "orange", "purple"]
