"""Warm starts: the paper's configurations, adapted to the backbone and the budget.

The paper's presets fix sizes for base-size models (a reduction factor of 8 on d_model 768).
Copied as they are onto a small backbone they are far larger relative to it (a single adapter
with factor 8 is 6% of the embedded tiny T5, where the paper's is 4.18%), and the Hyperformer's
fixed 512-d hypernetwork alone is a quarter of that model. What carries over between backbones
is the *relative* size, so a warm start keeps the preset's structure (method, sharing) and
picks, among the space's choices for the preset's size parameters, the ones whose trainable %
on this backbone is nearest (on a log scale) to the paper's (PAPER.md §6), within the budget.

Presets without a published % (multiple and half-shared adapters, multiple LoRA) ran with the
sizes of their single-sharing sibling; their target is what those sizes give with their own
sharing mode, brought within the budget the same way.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from core.counts import ParameterCount
from models.petl.presets import RUN_PRESETS, RunPreset
from core.budget import Budget
from search.space_file import Choices, SearchSpace

__all__ = ["WarmStart", "adapted_warm_starts", "warm_start_order", "warm_start_params"]


def warm_start_order() -> tuple[str, ...]:
    """The paper's configurations, strongest first (PAPER.md §6: each preset's
    `warm_start_rank`), so a short study trains the most informative ones; full fine-tuning is
    the reference trial and not a warm start."""
    ranked = [(preset.warm_start_rank, preset.name) for preset in RUN_PRESETS.values() if preset.warm_start_rank is not None]
    return tuple(name for _, name in sorted(ranked, key=lambda pair: pair[0]))


# A preset whose own sizes the space cannot reach aims at the paper's single adapter.
_FALLBACK_PCT = 4.18

# Searched parameters that are not sizes: they are kept at the preset's value (or default).
_NOT_SIZES = ("sharing", "learning_rate", "learning_rate_scale", "alpha", "dropout", "shared_rule")

Measure = Callable[[Mapping[str, Any]], ParameterCount]  # Optuna params -> exact count


@dataclass(frozen=True)
class WarmStart:
    """One adapted preset, ready to enqueue.

    Attributes:
        name: the run preset's name.
        params: complete Optuna params of the space.
        trainable_pct: its trainable % on this backbone and tasks.
        target_pct: the relative size it was matched to.
    """

    name: str
    params: dict[str, Any]
    trainable_pct: float
    target_pct: float


def warm_start_params(space: SearchSpace) -> list[tuple[str, dict[str, Any]]]:
    """The paper's configurations with their own sizes, as Optuna params of this space.

    Presets whose values the space cannot reach are left out (no adaptation, no budget): what
    `adapted_warm_starts` starts from.
    """
    found = []
    for name in warm_start_order():
        preset = RUN_PRESETS[name]
        params = space.fixed_params(preset.method, _values(preset))
        if params is not None:
            found.append((name, params))
    return found


def adapted_warm_starts(space: SearchSpace, measure: Measure, budget: Budget) -> tuple[list[WarmStart], list[str]]:
    """The warm starts of a study, each preset resized to the paper's relative size.

    Args:
        space: the study's search space.
        measure: exact parameter count of a complete set of Optuna params.
        budget: configurations over it are never picked.

    Returns:
        (warm starts in `warm_start_order()`, names of presets left out with the reason).
    """
    chosen: dict[str, dict[str, Any]] = {}  # preset -> size values it was given (over budget too)
    starts, skipped = [], []
    for name in warm_start_order():
        preset = RUN_PRESETS[name]
        candidates = _candidates(space, preset)
        if not candidates:
            skipped.append(f"{name} (the space cannot reach its method or sharing mode)")
            continue
        counted = [(sizes, params, measure(params)) for sizes, params in candidates]
        target = _target(name, preset, space, measure, chosen)
        nearest = min(counted, key=lambda c: _distance(c[2].trainable_pct, target, c[0], preset))
        chosen[name] = nearest[0]
        fitting = [c for c in counted if budget.allows(c[2])]
        if not fitting:
            smallest = min(c[2].trainable_pct for c in counted)
            skipped.append(f"{name} (its smallest size in the space is {smallest:.2f}% trainable, over the budget)")
            continue
        sizes, params, count = min(fitting, key=lambda c: _distance(c[2].trainable_pct, target, c[0], preset))
        starts.append(WarmStart(name, params, count.trainable_pct, target))
    return starts, skipped


def _values(preset: RunPreset) -> dict[str, Any]:
    return {**preset.method_params, "sharing": preset.sharing.value}


def _size_choices(space: SearchSpace, preset: RunPreset) -> dict[str, tuple[Any, ...]]:
    """The preset's size parameters the space searches as choices, with those choices."""
    searched = space.methods[preset.method].params
    return {
        name: parameter.values
        for name, parameter in searched.items()
        if isinstance(parameter, Choices) and name in preset.method_params and name not in _NOT_SIZES
    }


def _candidates(space: SearchSpace, preset: RunPreset) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(size values, Optuna params) of every size the space offers the preset, structure kept."""
    if preset.method not in space.methods:
        return []
    choices = _size_choices(space, preset)
    found = []
    for combination in itertools.product(*choices.values()):
        sizes = dict(zip(choices, combination))
        params = space.fixed_params(preset.method, {**_values(preset), **sizes})
        if params is not None:
            found.append((sizes, params))
    return found


def _target(name: str, preset: RunPreset, space: SearchSpace, measure: Measure, chosen: Mapping[str, dict]) -> float:
    if preset.paper_trainable_pct is not None:
        return preset.paper_trainable_pct
    sibling = preset.size_sibling
    if sibling is not None and sibling in chosen:
        params = space.fixed_params(preset.method, {**_values(preset), **chosen[sibling]})
        if params is not None:
            return measure(params).trainable_pct
    # No sibling to copy: the preset's own sizes define its relative size.
    params = space.fixed_params(preset.method, _values(preset))
    return measure(params).trainable_pct if params is not None else _FALLBACK_PCT


def _distance(pct: float, target: float, sizes: Mapping[str, Any], preset: RunPreset) -> tuple[float, int, float]:
    """Nearest on a log scale; ties go to the preset's own values, then to the smaller size."""
    changed = sum(preset.method_params.get(k) != v for k, v in sizes.items())
    return (round(abs(math.log(max(pct, 1e-9) / target)), 6), changed, pct)
