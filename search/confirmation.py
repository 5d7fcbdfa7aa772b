"""Confirmation seeds: re-train a study's best configurations with more seeds, to measure noise.

A configuration's score moves by a few points from seed to seed, so the single score a search
ranks trials by favours lucky draws. After its trials, `search.launch` trains the full
fine-tuning reference and the best configuration within the budget again with the next seeds
(`--confirm-seeds K` seeds each, its own included; `--confirm front` does every configuration
on the Pareto front). Each seed is a trial and a results row of its own, `replicate_of` naming
the trial it repeats; `core.seeds.by_configuration` reads them as one point, mean ± standard
deviation.

Ranking by mean can crown a configuration that still has one seed (the confirmed best's mean
fell below it); confirmation then goes on with that one, for at most :data:`MAX_ROUNDS` rounds,
so the best within the budget is, whenever the rounds allow, a confirmed one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy import Engine

from core.budget import Budget
from core.pareto import best_within_budget, pareto_front, ranked_within_budget
from core.seeds import by_configuration, seed_of, seeds_wanted
from search.objective import REFERENCE_ATTR, REPLICATE_ATTR, SEED_ATTR
from search.confirmation_limits import DEFAULT_SEEDS, MAX_SEEDS, SCOPES
from search.liveness import fail_dead_trials, study_liveness
from search.queue_order import owed_first

log = logging.getLogger(__name__)

# Rounds of "confirm the best by mean, if it has too few seeds": each round confirms the
# configurations that lead then; three rounds settle a lead that changes twice.
MAX_ROUNDS = 3
_PENDING = (TrialState.WAITING, TrialState.RUNNING)


def confirmation_targets(configs: pd.DataFrame, budget: Budget, scope: str) -> list[int]:
    """The trials whose configurations a study confirms: the full fine-tuning reference, the
    best within `budget` by mean score, and with scope "front" every configuration on the front.

    Args:
        configs: `core.seeds.by_configuration` of the study's results.
        budget: The study's budget.
        scope: "best" or "front".

    Returns:
        Trial numbers, each once, reference first.
    """
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}, got {scope!r}")
    complete = configs[configs["status"] == "complete"]
    targets: list[int] = []
    reference = complete[complete["method"] == "full_ft"]
    if not reference.empty:
        targets.append(int(reference["trial_number"].min()))
    best = best_within_budget(configs, max_pct=budget.max_pct, max_params=budget.count)
    if best is not None:
        targets.append(int(best["trial_number"]))
    if scope == "front":
        targets.extend(int(n) for n in pareto_front(configs)["trial_number"])
    return list(dict.fromkeys(targets))


def runners_up(configs: pd.DataFrame, budget: Budget, targets: Iterable[int]) -> list[int]:
    """The configurations within `budget` after the targets, best mean score first: those a
    round trains beside its targets when workers would otherwise wait (`confirm_study`'s `slots`).

    The next round confirms whichever of them takes the lead once a target's mean falls; trained
    now, on workers that would idle through the round, they cost the round no time.
    """
    chosen = set(targets)
    ranked = ranked_within_budget(configs, max_pct=budget.max_pct, max_params=budget.count)
    return [int(n) for n in ranked["trial_number"] if int(n) not in chosen]


def missing_seeds(results: pd.DataFrame, trials: Iterable[FrozenTrial], number: int, seeds: int) -> list[int]:
    """The seeds trial `number`'s configuration still lacks: not scored, not queued, not training.

    A seed whose trial failed is missing again, so the next round queues it once more.
    """
    rows = results[(results["trial_number"] == number)]
    if rows.empty:
        return []
    base = seed_of(rows.iloc[0]["config"])
    if base is None:
        return []
    replicate_of = pd.to_numeric(results["replicate_of"], errors="coerce") if "replicate_of" in results else None
    repeats = results[replicate_of == number] if replicate_of is not None else results.iloc[0:0]
    have = {seed_of(config) for config in repeats[repeats["status"] == "complete"]["config"]} | {base}
    have |= {int(t.user_attrs[SEED_ATTR]) for t in trials if t.user_attrs.get(REPLICATE_ATTR) == number and t.state in _PENDING}
    return [seed for seed in seeds_wanted(base, seeds) if seed not in have]


def enqueue_confirmations(study: optuna.Study, results: pd.DataFrame, targets: Iterable[int], seeds: int) -> list[tuple[int, int]]:
    """Queue one trial per missing seed of each target; returns ``(trial, seed)`` of each queued."""
    trials = study.get_trials(deepcopy=False)
    by_number = {t.number: t for t in trials}
    queued = []
    for number in targets:
        original = by_number.get(number)
        if original is None:
            continue
        attrs: dict[str, Any] = {REPLICATE_ATTR: number}
        if original.user_attrs.get(REFERENCE_ATTR):
            attrs[REFERENCE_ATTR] = True
        for seed in missing_seeds(results, trials, number, seeds):
            # The original's parameters rebuild its configuration; the objective swaps the seed.
            study.enqueue_trial(dict(original.params), user_attrs={**attrs, SEED_ATTR: seed})
            queued.append((number, seed))
    return queued


def _seconds_left(deadline: float | None) -> float | None:
    return None if deadline is None else deadline - time.monotonic()


def _await_round(study: optuna.Study, deadline: float | None) -> bool:
    """Wait until no confirmation seed is still training on another worker: the next round ranks
    by every seed's score (a lead may change on one still training), and the search ends with the
    best within the budget confirmed. This process ran out of queued seeds while a local worker
    or another machine trains the last ones; run_until_target only waits until those are known
    alive, not until they finish.

    Returns:
        Whether a seed is queued again (its worker died and was released as dead), to train here.
    """
    interval = min(1.0, float(study_liveness(study).heartbeat_interval))
    waiting_for: list[int] = []
    while True:
        pending = [t for t in study.get_trials(deepcopy=False) if REPLICATE_ATTR in t.user_attrs and t.state in _PENDING]
        if any(t.state == TrialState.WAITING for t in pending):
            return True
        left = _seconds_left(deadline)
        if not pending or (left is not None and left <= 0):
            return False
        if [t.number for t in pending] != waiting_for:
            waiting_for = [t.number for t in pending]
            log.info("waiting for confirmation trials %s on other workers: the next round ranks by their scores", waiting_for)
        time.sleep(interval if left is None else min(interval, left))
        fail_dead_trials(study)  # a dead worker's seed is failed and queued again (search.liveness)


def confirm_study(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], Any],
    engine: Engine,
    budget: Budget,
    *,
    seeds: int = DEFAULT_SEEDS,
    scope: str = "best",
    time_limit: float | None = None,
    on_queued: Callable[[int], None] | None = None,
    slots: int = 1,
) -> list[tuple[int, int]]:
    """Train the missing confirmation seeds of the study's reference and best configurations.

    Args:
        study: The study (its storage shared with any other worker, which helps train the seeds).
        objective: The study's objective (wrapped by the worker guard where there is one).
        engine: The results database.
        budget: The study's budget.
        seeds: Seeds per confirmed configuration, its own included (1: nothing to do).
        scope: "best" (reference and best within budget) or "front" (every front configuration too).
        time_limit: Stop starting confirmation trials after this many seconds.
        on_queued: Called with the number of trials each round queued, before this process trains
            them (`search.launch` starts its local workers again there, to train them in parallel).
        slots: Trials that train at once (the launcher's workers). A round that confirms fewer
            tops up with the runners-up's missing seeds (:func:`runners_up`), so that no worker
            waits out the round idle: on the 2-core default study the lead changed after round 1
            and a third round trained one trial while the other core idled.

    Returns:
        ``(trial, seed)`` of every confirmation queued, in order.
    """
    from search.study_runner import run_until_target
    from storage import load_results

    if not 1 <= seeds <= MAX_SEEDS:
        raise ValueError(f"seeds must be 1 to {MAX_SEEDS}, got {seeds}")
    done: list[tuple[int, int]] = []
    if seeds == 1:
        return done
    owed_first(study)  # before the search trials still queued (warm starts kept for a relaunch)
    deadline = None if time_limit is None else time.monotonic() + time_limit
    for round_number in range(1, MAX_ROUNDS + 1):
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            log.warning("the time limit ended confirmation after %d round(s); python -m search.confirm goes on", round_number - 1)
            break
        results = load_results(engine, study.study_name)
        configs = by_configuration(results)
        targets = confirmation_targets(configs, budget, scope)
        queued = enqueue_confirmations(study, results, targets, seeds)
        if not queued:
            break
        for runner_up in runners_up(configs, budget, targets):
            if len(queued) >= slots:
                break
            queued += enqueue_confirmations(study, results, [runner_up], min(seeds, 1 + slots - len(queued)))
        log.info(
            "confirming %s with %d seeds each (round %d): %d more trial(s)",
            ", ".join(f"trial {n}" for n in dict.fromkeys(n for n, _ in queued)),
            seeds,
            round_number,
            len(queued),
        )
        done.extend(queued)
        if on_queued is not None:
            on_queued(len(queued))
        run_until_target(study, objective, target=0, time_limit=remaining, engine=engine)
        while _await_round(study, deadline):  # a seed's worker died and its seed is queued again: train it here
            run_until_target(study, objective, target=0, time_limit=_seconds_left(deadline), engine=engine)
    else:
        results = load_results(engine, study.study_name)
        best = best_within_budget(by_configuration(results), max_pct=budget.max_pct, max_params=budget.count)
        if best is not None and int(best["seeds"]) < seeds:
            log.warning(
                "after %d rounds the best within the budget, trial %d, has %d seed(s): the lead kept changing; "
                "python -m search.confirm goes on where this stopped",
                MAX_ROUNDS,
                int(best["trial_number"]),
                int(best["seeds"]),
            )
    return done
