"""Task-agnostic text examples: every task is text generation (PAPER.md §1)."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class TextExample:
    """One model input and its possible targets.

    Attributes:
        key: the task's id for the example (e.g. the VQA question_id).
        img_ids: the images the example sees (two for NLVR2).
        source: the encoder text, task prefix included.
        targets: target texts; training samples one of them in proportion to `weights`
            and weights the loss by the sampled target's weight (the VL-T5 VQA recipe).
        weights: one weight per target.
        choices: the fixed answer set when the task has one (NLVR2 "true"/"false", multiple
            choice "a0".."a4"); evaluation then picks the most likely choice instead of
            generating freely (PAPER.md §1: NLVR2 compares the logits of "true" and "false").
    """

    key: int | str
    img_ids: tuple[str, ...]
    source: str
    targets: tuple[str, ...]
    weights: tuple[float, ...]
    choices: tuple[str, ...] = ()

    def sample_target(self, rng: random.Random) -> tuple[str, float]:
        target = rng.choices(self.targets, weights=self.weights, k=1)[0]
        return target, self.weights[self.targets.index(target)]
