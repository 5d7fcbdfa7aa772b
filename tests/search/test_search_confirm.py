"""search.confirm on a real Optuna study and results table; the trials' scores come from a table
instead of training (seconds, not minutes): the end-to-end test trains real confirmation seeds.

The objective below writes the rows the search's objective writes (a configuration with its
training seed, `replicate_of` from the trial's attributes), so what is tested is the choice of
what to confirm, the rounds, and how the export reads the result.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import optuna
import pytest
import yaml

from core.budget import parse_budget
from core.seeds import by_configuration
from search import export
from search.confirmation import confirm_study, confirmation_targets
from search.objective import REFERENCE_ATTR, REPLICATE_ATTR, SEED_ATTR
from search.progress import trained
from search.study_runner import run_until_target
from storage import TrialRecord, init_schema, load_results, make_engine, record_trial

STUDY = "confirm"
TOTAL = 100_000
# (configuration, seed) -> score. "a" leads on its first seed but averages 55; "b" averages 57.5.
SCORES = {
    **{("ref", 0): 80.0, ("ref", 1): 78.0, ("ref", 2): 79.0},
    **{("a", 0): 60.0, ("a", 1): 50.0, ("a", 2): 52.0},
    **{("b", 0): 58.0, ("b", 1): 57.0, ("b", 2): 59.0},
}
SIZES = {"ref": 100.0, "a": 1.0, "b": 0.5}


@pytest.fixture
def study(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    engine = make_engine(url)
    init_schema(engine)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=STUDY, storage=url, directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(0)
    )

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        reference = bool(trial.user_attrs.get(REFERENCE_ATTR))
        name = "ref" if reference else trial.suggest_categorical("name", ["a", "b"])
        seed = int(trial.user_attrs.get(SEED_ATTR, 0))
        score, pct = SCORES[(name, seed)], SIZES[name]
        record = TrialRecord(
            study_name=STUDY,
            trial_number=trial.number,
            status="complete",
            method="full_ft" if reference else "lora",
            config={"name": name, "training": {"seed": seed}},
            trainable_params=int(pct / 100 * TOTAL),
            total_params=TOTAL,
            score=score,
            replicate_of=trial.user_attrs.get(REPLICATE_ATTR),
        )
        record_trial(engine, record)
        return score, pct

    study.enqueue_trial({}, user_attrs={REFERENCE_ATTR: True})
    study.enqueue_trial({"name": "a"})
    study.enqueue_trial({"name": "b"})
    run_until_target(study, objective, 3, None)
    yield study, objective, engine, url
    engine.dispose()


def test_the_lead_is_confirmed_until_the_best_by_mean_has_its_seeds(study) -> None:
    study, objective, engine, _ = study
    budget = parse_budget("2%")
    # A search trial left queued (a warm start the search did not reach) waits for a relaunch:
    # the confirmation seeds, queued after it, are trained first and it stays queued.
    study.enqueue_trial({"name": "b"})
    queued = confirm_study(study, objective, engine, budget, seeds=2)
    # Round 1: the reference and "a" (best on one seed); "a" falls to 55, so round 2 confirms
    # "b" (58 on one seed), which stays ahead at 57.5; round 3 finds nothing left to do.
    assert queued == [(0, 1), (1, 1), (2, 1)]
    results = load_results(engine, STUDY)
    replicates = results[results["replicate_of"].notna()]
    assert [int(n) for n in replicates["replicate_of"]] == [0, 1, 2]
    assert [c["training"]["seed"] for c in replicates["config"]] == [1, 1, 1]
    configs = by_configuration(results)
    assert list(configs["score"]) == [79.0, 55.0, 57.5] and list(configs["seeds"]) == [2, 2, 2]
    # Confirmation seeds are not searched trials: the study's goal of 3 is still met, and
    # confirming again finds every seed in place.
    assert sum(trained(t) for t in study.get_trials()) == 3
    assert [t.state for t in study.get_trials() if "replicate_of" not in t.user_attrs][3:] == [optuna.trial.TrialState.WAITING]
    assert run_until_target(study, objective, 3, None) == 0
    assert confirm_study(study, objective, engine, budget, seeds=2) == []


def test_spare_workers_confirm_the_runner_up_in_the_same_round(study) -> None:
    study, objective, engine, _ = study
    # Three workers: round 1 confirms the reference and "a", and "b" (the runner-up within the
    # budget) on the worker that would otherwise wait; when "a" falls to 55, "b" already has
    # its seeds and no second round is needed: 3 trials, 1 round instead of 2.
    rounds = []
    queued = confirm_study(study, objective, engine, parse_budget("2%"), seeds=2, slots=3, on_queued=rounds.append)
    assert queued == [(0, 1), (1, 1), (2, 1)] and rounds == [3]
    configs = by_configuration(load_results(engine, STUDY))
    assert list(configs["score"]) == [79.0, 55.0, 57.5] and list(configs["seeds"]) == [2, 2, 2]


def test_a_round_that_fills_its_workers_adds_no_runner_up(study) -> None:
    study, objective, engine, _ = study
    rounds = []
    queued = confirm_study(study, objective, engine, parse_budget("2%"), seeds=2, slots=2, on_queued=rounds.append)
    assert queued == [(0, 1), (1, 1), (2, 1)] and rounds == [2, 1], "as with one worker: the reference and the best fill round 1"


def test_more_seeds_and_the_whole_front(study) -> None:
    study, objective, engine, _ = study
    configs = by_configuration(load_results(engine, STUDY))
    budget = parse_budget("2%")
    assert confirmation_targets(configs, budget, "best") == [0, 1]
    assert confirmation_targets(configs, budget, "front") == [0, 1, 2]
    queued = confirm_study(study, objective, engine, budget, seeds=3, scope="front")
    assert sorted(queued) == [(0, 1), (0, 2), (1, 1), (1, 2), (2, 1), (2, 2)]


def test_seeds_outside_the_range_are_refused(study) -> None:
    study, objective, engine, _ = study
    with pytest.raises(ValueError, match="seeds must be 1 to 10, got 0"):
        confirm_study(study, objective, engine, parse_budget("2%"), seeds=0)
    assert confirm_study(study, objective, engine, parse_budget("2%"), seeds=1) == []


def test_the_export_chooses_by_mean_and_says_when_the_order_is_within_noise(study, tmp_path: Path, capsys) -> None:
    study, objective, engine, url = study
    confirm_study(study, objective, engine, parse_budget("2%"), seeds=2)
    out = tmp_path / "best.yaml"
    assert export.export(study=STUDY, storage=url, budget_text="2%", out=out) == 0
    recipe = yaml.safe_load(out.read_text())
    assert recipe["source"]["trial_number"] == 2  # "b": 57.5 over two seeds beats "a"'s 55
    assert recipe["expected"]["score"] == pytest.approx(57.5) and recipe["expected"]["seeds"] == 2
    assert recipe["expected"]["score_std"] == pytest.approx(0.7071, abs=1e-4)
    assert recipe["expected"]["seed_scores"] == {"0": 58.0, "1": 57.0}
    printed = capsys.readouterr().out
    assert "trial 2 (lora, 0.50% trainable, score 57.5 ± 0.7 (2 seeds))" in printed
    # 57.5 against 55.0 is 2.5 points, less than "a"'s seed standard deviation of 7.1.
    assert "Note: trials 2 and 1, the best two within the budget, differ by 2.5 points" in printed
    assert "(7.1)" in printed


def test_the_next_round_waits_for_a_seed_that_another_worker_trains(tmp_path: Path) -> None:
    """Two workers: the launcher trains one seed of round 1, a local worker (a thread here, with
    real heartbeats) the other, slowly. "a" leads on one seed and falls to 55 on its second,
    which leaves "c" (57.8, one seed) ahead of "b" (57.5 on two): round 2 must wait for the
    other worker's seed of "a" and then confirm "c", or the search ends with an unconfirmed
    best. Before the wait, round 2 ranked while that seed still trained (its worker alive),
    found "a" still ahead with its seed under way, and ended confirmation."""
    from search.liveness import LIVENESS_ATTR, study_storage

    scores = {("a", 0): 60.0, ("a", 1): 50.0, ("b", 0): 58.0, ("b", 1): 57.0, ("c", 0): 57.8, ("c", 1): 57.0}
    sizes = {"a": 1.0, "b": 0.5, "c": 0.8}
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    engine = make_engine(url)
    init_schema(engine)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=STUDY, storage=url, directions=["maximize", "minimize"])
    study.set_user_attr(LIVENESS_ATTR, {"heartbeat_interval": 1, "grace_period": 20})
    slow_worker_started = threading.Event()

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        name = trial.suggest_categorical("name", ["a", "b", "c"])
        seed = int(trial.user_attrs.get(SEED_ATTR, 0))
        if threading.current_thread() is not threading.main_thread():
            slow_worker_started.set()
            time.sleep(3.5)  # three heartbeats: alive, and still training when the launcher's own seed is done
        record = TrialRecord(
            study_name=STUDY, trial_number=trial.number, status="complete", method="lora",
            config={"name": name, "training": {"seed": seed}}, trainable_params=int(sizes[name] / 100 * TOTAL),
            total_params=TOTAL, score=scores[(name, seed)], replicate_of=trial.user_attrs.get(REPLICATE_ATTR),
        )  # fmt: skip
        record_trial(engine, record)
        return scores[(name, seed)], sizes[name]

    for name in "abc":
        study.enqueue_trial({"name": name})
    run_until_target(study, objective, 3, None)
    workers: list[threading.Thread] = []

    def local_worker(queued: int) -> None:
        """Like search.launch's helpers: a worker process on the study, on heartbeat storage."""
        if workers:
            return
        on_heartbeats = optuna.load_study(study_name=STUDY, storage=study_storage(url, engine, STUDY))
        workers.append(threading.Thread(target=run_until_target, args=(on_heartbeats, objective, 0, None)))
        workers[0].start()
        assert slow_worker_started.wait(30), "the local worker took the round's first seed"

    queued = confirm_study(study, objective, engine, parse_budget("2%"), seeds=2, slots=2, on_queued=local_worker)
    workers[0].join()
    # Round 1: "a" (the other worker, slowly) and the runner-up "b" (here); round 2: "c".
    assert queued == [(0, 1), (1, 1), (2, 1)]
    configs = by_configuration(load_results(engine, STUDY)).set_index("trial_number")
    assert list(configs["seeds"]) == [2, 2, 2] and configs.loc[2, "score"] == pytest.approx(57.4)
    engine.dispose()
