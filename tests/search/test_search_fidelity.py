"""Multi-fidelity: rungs score trials on the way, only the best 1/eta of a rung (by non-dominated
sorting) go on, and the saved compute is counted; rungs never change what a trial that runs to
the end scores."""

from __future__ import annotations

import dataclasses

import optuna
import pytest
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState, create_trial

from models.config import TrainingConfig
from core.budget import parse_budget
from search.fidelity import (
    PEERS,
    matched_by_finished,
    RUNG_LOSS_PREFIX,
    RUNG_PREFIX,
    STEPS_PLANNED_ATTR,
    STEPS_RUN_ATTR,
    TRAINABLE_PCT_ATTR,
    Fidelity,
    RungJudge,
    RungPruned,
    best_by_fronts,
    rung_population,
    saved_compute,
    with_rungs,
)
from search import launch
from search.objective import WARM_START_ATTR, Objective
from search.space import SpaceDefaults, config_from_point
from search.space_file import parse_space
from storage import init_schema, load_results, make_engine
from training.trial import run_trial

STEPS = 40
RUNGS = (6, 20)  # 2 rungs over 40 steps, eta 3: scored after steps 40 / 2 / 3 and 40 / 2
RUNG = RUNGS[0]


def frozen(number: int, pct: float, rungs: dict[int, float], state=TrialState.COMPLETE, method="adapter", methods=("adapter",), **attrs):
    """A stored trial of `method` (the search space's method parameter has the choices `methods`)."""
    trial = create_trial(
        state=state,
        values=[0.0, pct] if state == TrialState.COMPLETE else None,
        params={"method": method},
        distributions={"method": CategoricalDistribution(methods)},
        user_attrs={TRAINABLE_PCT_ATTR: pct, **{f"{RUNG_PREFIX}{s}": v for s, v in rungs.items()}, **attrs},
    )
    trial.number = number
    return trial


def test_rungs_end_at_a_third_of_the_steps_and_are_spaced_geometrically_before():
    assert Fidelity().rung_steps(225) == (25, 75) and Fidelity().measure == "loss" and Fidelity().eval_sample == 32
    assert Fidelity(rungs=3).rung_steps(225) == (8, 25, 75)
    assert Fidelity(rungs=2, reduction=2, last=0.5).rung_steps(100) == (25, 50)
    assert Fidelity(rungs=0).rung_steps(225) == ()
    assert Fidelity(rungs=2).rung_steps(5) == (1,), "a rung that would come before step 1 is dropped"
    assert (launch.DEFAULT_RUNGS, launch.DEFAULT_RUNG_MEASURE) == (Fidelity().rungs, Fidelity().measure), (
        "search.launch's default is the rule's"
    )
    assert launch.DEFAULT_RUNG_PEERS == Fidelity().peers == "method" and set(launch.RUNG_PEERS) == set(PEERS)
    assert Fidelity.for_study(2, "loss", "method") == Fidelity()
    score = Fidelity.for_study(1, "score", "all")  # what studies launched before the held-out loss ranked by, as then
    assert (score.rung_steps(225), score.eval_sample, score.margin, score.peers) == ((112,), 64, 1.0, "all")
    with pytest.raises(ValueError, match="peers must be one of"):
        Fidelity(peers="family")


def _rung_judged(earlier: list, method: str, fidelity: Fidelity) -> None:
    """Judge a new `method` trial at the first rung, after the `earlier` trials (no training)."""
    methods = CategoricalDistribution(("adapter", "compacter"))
    study = optuna.create_study(directions=["maximize", "minimize"])
    for trial in earlier:
        study.add_trial(trial)
    study.enqueue_trial({"method": method})
    trial = study.ask({"method": methods})
    assert trial.params["method"] == method
    RungJudge(trial, 1.0, fidelity)(RUNG, {"vqa": 2.0})


def test_a_rung_ranks_a_trial_against_its_own_method_unless_told_every_trial():
    """Three adapter trials far ahead on held-out loss stop a fourth adapter trial, but not a
    compacter trial: methods learn at different speeds, so by default each is halved on its own."""
    ahead = [frozen(n, 0.0, {}, methods=("adapter", "compacter"), **{f"{RUNG_LOSS_PREFIX}{RUNG}": 0.01}) for n in range(3)]
    fidelity = Fidelity(rungs=2, eval_sample=16, measure="loss", last=0.5)
    with pytest.raises(RungPruned, match="not among the best 1/3 of the 4 adapter trials measured there"):
        _rung_judged(ahead, "adapter", fidelity)
    _rung_judged(ahead, "compacter", fidelity)  # its only peer at the rung is itself: it goes on
    with pytest.raises(RungPruned, match="not among the best 1/3 of the 4 trials measured there"):
        _rung_judged(ahead, "compacter", dataclasses.replace(fidelity, peers="all"))


def test_a_rung_keeps_its_best_third_by_fronts_with_the_smallest_trial_on_the_first():
    population = {
        0: (50.0, 4.0),
        1: (45.0, 4.0),  # dominated by 0
        2: (30.0, 0.1),  # the lowest score but one, and nobody is smaller: first front
        3: (45.0, 4.5),  # dominated by 0
        4: (40.0, 4.0),  # dominated by 0 and 1
        5: (20.0, 3.0),  # dominated by 2, smaller and 10 points ahead
    }
    # Second front {1, 3, 5}: its ends 3 and 5 have infinite crowding distance; 3 scores more.
    assert best_by_fronts(population, 3, margin=1.0) == [0, 2, 3]
    assert {n for n in population if Fidelity().goes_on(n, population)} == {0, 2}, "6 trials: the best ceil(6 / 3) = 2"


def test_the_last_front_is_cut_by_crowding_distance_keeping_its_ends():
    front = {0: (50.0, 4.0), 1: (48.0, 3.0), 2: (40.0, 2.0), 3: (30.0, 0.1)}  # none dominates another
    assert best_by_fronts(front, 2, margin=1.0) == [0, 3]
    assert best_by_fronts(front, 3, margin=1.0) == [0, 3, 2]  # 2 is the more isolated of the middle two


def test_a_rung_with_too_few_trials_stops_nobody():
    population = {0: (90.0, 0.1), 1: (10.0, 5.0), 2: (20.0, 5.0)}
    assert all(Fidelity().goes_on(n, population) for n in population)
    population[3] = (15.0, 5.0)
    assert not Fidelity().goes_on(1, population) and Fidelity().goes_on(0, population)


def test_a_trial_level_with_a_finished_one_no_larger_is_matched():
    population = {
        0: (-2.50, 2.0),  # finished
        1: (-2.51, 3.0),  # level with 0 within 0.02 nats, larger: matched by 0
        2: (-2.45, 3.0),  # 0.05 nats better than 0: it may end ahead, not matched
        3: (-2.50, 1.0),  # level with 0 but smaller: it could widen the front, not matched
        4: (-2.60, 2.5),  # worse than 0 and larger: matched
    }
    finished = [0]
    assert matched_by_finished(1, population, finished, margin=0.02) == [0]
    assert matched_by_finished(2, population, finished, margin=0.02) == []
    assert matched_by_finished(3, population, finished, margin=0.02) == []
    assert matched_by_finished(4, population, finished, margin=0.02) == [0]
    assert matched_by_finished(0, population, finished, margin=0.02) == [], "a finished trial never matches itself"
    assert matched_by_finished(1, population, [], margin=0.02) == [], "only finished trials match: a running one may still stop"


def test_a_score_within_the_margin_does_not_dominate():
    population = {0: (50.0, 1.0), 1: (49.5, 1.0), 2: (49.2, 2.0), 3: (10.0, 3.0)}
    assert sorted(best_by_fronts(population, 3, margin=1.0)) == [0, 1, 2]
    assert sorted(best_by_fronts(population, 3, margin=0.0)) == [0, 1, 2]  # the next front fills the third place
    assert best_by_fronts(population, 1, margin=0.0) == [0]


def test_saved_compute_counts_the_steps_stopped_trials_did_not_run():
    trials = [
        frozen(0, 1.0, {}, **{STEPS_PLANNED_ATTR: 400}),
        frozen(1, 1.0, {}, state=TrialState.PRUNED, **{STEPS_PLANNED_ATTR: 400, STEPS_RUN_ATTR: 100}),
        frozen(2, 1.0, {}, state=TrialState.PRUNED),  # a duplicate configuration: never trained, not counted
    ]
    saved = saved_compute(trials)
    assert (saved.stopped, saved.steps_run, saved.steps_planned) == (1, 500, 800)
    assert "1 trials stopped" in saved.describe() and "38% saved" in saved.describe()


def test_rungs_do_not_change_the_result_of_a_trial_that_runs_to_the_end(env):
    training = TrainingConfig(steps=STEPS, seed=3)
    config = config_from_point(
        {"method": "adapter", "params": {"reduction_factor": 16}, "freeze": {}, "optimizer": "adamw"},
        SpaceDefaults(backbone="tiny-clip+tiny-t5", tasks=("vqa",), training=training),
    )
    plain = run_trial(config, env, show_progress=False)
    seen = []
    scored = run_trial(
        dataclasses.replace(config, training=with_rungs(config.training, Fidelity(rungs=2, eval_sample=16, measure="score", last=0.5))),
        env,
        show_progress=False,
        on_evaluation=lambda step, scores: seen.append(step),
    )
    assert seen == list(RUNGS)
    assert scored.losses == plain.losses and scored.task_scores == plain.task_scores


def _adapter_trial_after(env, data_dir, name: str, earlier: list, fidelity: Fidelity):
    """A study of the `earlier` trials, then one real adapter trial (6 steps) under `fidelity`."""
    space = parse_space({"methods": {"adapter": {"reduction_factor": [16]}}, "optimizer": ["adamw"]})
    defaults = SpaceDefaults(backbone="tiny-clip+tiny-t5", tasks=("vqa",), training=TrainingConfig(steps=STEPS), space=space)
    url = f"sqlite:///{data_dir / f'{name}.db'}"
    engine = make_engine(url)
    init_schema(engine)
    study = optuna.create_study(study_name=name, storage=url, directions=["maximize", "minimize"])
    for trial in earlier:
        study.add_trial(trial)
    study.optimize(Objective(env, defaults, parse_budget("5%"), engine, name, fidelity=fidelity), n_trials=1, catch=(Exception,))
    return study, engine


@pytest.fixture(scope="module")
def stopped_study(env, data_dir):
    """Three earlier trials that scored 100 at the first rung with no trainable parameters, then a
    real adapter trial: whatever it learns in 6 steps, it is not among the best third there."""
    earlier = [frozen(number, 0.0, {RUNG: 100.0}) for number in range(3)]
    return _adapter_trial_after(env, data_dir, "fidelity", earlier, Fidelity(rungs=2, eval_sample=16, measure="score", last=0.5))


def test_a_dominated_trial_stops_at_the_first_rung_and_is_recorded_with_the_reason(stopped_study):
    study, engine = stopped_study
    stopped = study.trials[-1]
    assert stopped.state == TrialState.PRUNED
    assert stopped.user_attrs[STEPS_RUN_ATTR] == RUNG and stopped.user_attrs[STEPS_PLANNED_ATTR] == STEPS
    assert stopped.user_attrs[f"{RUNG_PREFIX}{RUNG}"] < 100.0
    row = load_results(engine, "fidelity").set_index("trial_number").loc[stopped.number]
    assert row["status"] == "pruned"
    assert f"stopped at step {RUNG}" in row["error"] and "not among the best 1/3 of the 4 adapter trials measured there" in row["error"]
    assert "3 lead it by more than 1 points with no more trainable parameters: #0 (100.0), #1 (100.0), #2 (100.0)" in row["error"]
    saved = saved_compute(study.trials)
    assert (saved.stopped, saved.steps_run, saved.steps_planned) == (1, RUNG, STEPS)


def test_a_warm_start_runs_to_the_end_even_when_dominated_at_a_rung(stopped_study, env):
    """The paper's configurations are the front's points of comparison, one per family: the
    same dominated adapter, enqueued as a warm start, is scored at every rung and completes."""
    study, engine = stopped_study
    space = parse_space({"methods": {"adapter": {"reduction_factor": [16]}}, "optimizer": ["adamw"]})
    defaults = SpaceDefaults(backbone="tiny-clip+tiny-t5", tasks=("vqa",), training=TrainingConfig(steps=STEPS), space=space)
    study.enqueue_trial({"method": "adapter", "adapter.reduction_factor": 16}, user_attrs={WARM_START_ATTR: "single-adapter"})
    objective = Objective(
        env, defaults, parse_budget("5%"), engine, "fidelity", fidelity=Fidelity(rungs=2, eval_sample=16, measure="score", last=0.5)
    )
    study.optimize(objective, n_trials=1, catch=(Exception,))
    warm = study.trials[-1]
    assert warm.state == TrialState.COMPLETE, warm.user_attrs
    assert [f"{RUNG_PREFIX}{s}" in warm.user_attrs for s in RUNGS] == [True] * 2
    assert warm.user_attrs[f"{RUNG_PREFIX}{RUNG}"] < 100.0  # dominated there, yet not stopped


def test_a_rung_measured_by_held_out_loss_ranks_the_lower_loss_first():
    fidelity = Fidelity(measure="loss")
    assert fidelity.ranked({"vqa": 1.5, "gqa": 2.5}) == -2.0 and fidelity.value_text(-2.0) == "2.000"
    trials = [frozen(n, 1.0, {}, **{f"{RUNG_LOSS_PREFIX}{RUNG}": loss}) for n, loss in enumerate([0.5, 0.9, 0.7, 1.2])]
    population = rung_population(trials, RUNG, "loss")
    assert population == {0: (-0.5, 1.0), 1: (-0.9, 1.0), 2: (-0.7, 1.0), 3: (-1.2, 1.0)}
    assert rung_population(trials, RUNG, "score") == {}, "a score rung never reads a loss rung's values"
    assert [n for n in population if fidelity.goes_on(n, population)] == [0, 2]
    with pytest.raises(ValueError, match="measure must be one of"):
        Fidelity(measure="accuracy")


def test_rungs_by_held_out_loss_do_not_change_the_result_of_a_trial_that_runs_to_the_end(env):
    training = TrainingConfig(steps=STEPS, seed=3)
    config = config_from_point(
        {"method": "adapter", "params": {"reduction_factor": 16}, "freeze": {}, "optimizer": "adamw"},
        SpaceDefaults(backbone="tiny-clip+tiny-t5", tasks=("vqa",), training=training),
    )
    plain = run_trial(config, env, show_progress=False)
    seen: list[tuple[int, dict[str, float]]] = []
    measured = run_trial(
        dataclasses.replace(config, training=with_rungs(config.training, Fidelity(rungs=2, eval_sample=16, measure="loss", last=0.5))),
        env,
        show_progress=False,
        on_evaluation=lambda step, values: seen.append((step, values)),
    )
    assert [step for step, _ in seen] == list(RUNGS)
    assert seen[1][1]["vqa"] < seen[0][1]["vqa"], "the held-out loss falls as the trial learns"
    assert measured.losses == plain.losses and measured.task_scores == plain.task_scores
    assert measured.evaluation_measure == "loss" and measured.evaluations == seen


def test_a_trial_behind_on_held_out_loss_stops_at_the_first_rung(env, data_dir):
    # A held-out loss of 0.01 with no trainable parameters: nothing learns that in 6 steps.
    earlier = [frozen(number, 0.0, {}, **{f"{RUNG_LOSS_PREFIX}{RUNG}": 0.01}) for number in range(3)]
    fidelity = Fidelity(rungs=2, eval_sample=16, measure="loss", last=0.5)
    study, engine = _adapter_trial_after(env, data_dir, "fidelity-loss", earlier, fidelity)
    stopped = study.trials[-1]
    assert stopped.state == TrialState.PRUNED and stopped.user_attrs[STEPS_RUN_ATTR] == RUNG
    assert stopped.user_attrs[f"{RUNG_LOSS_PREFIX}{RUNG}"] > 0.01
    error = load_results(engine, "fidelity-loss").set_index("trial_number").loc[stopped.number]["error"]
    assert f"stopped at step {RUNG}: held-out loss" in error and "non-dominated sorting on rung held-out loss" in error
    assert "3 lead it by more than 0.02 nats with no more trainable parameters: #0 (0.010)" in error


def test_a_trial_level_with_a_finished_smaller_one_stops_even_when_asha_would_promote_it(env, data_dir):
    """One finished trial with no trainable parameters and a held-out loss nothing reaches in 6
    steps: on a rung of two trials successive halving promotes everyone, but the new trial could
    at best finish level with the finished one, so it stops and says why."""
    earlier = [frozen(0, 0.0, {}, **{f"{RUNG_LOSS_PREFIX}{RUNG}": 0.01})]
    fidelity = Fidelity(rungs=2, eval_sample=16, measure="loss", last=0.5)
    study, engine = _adapter_trial_after(env, data_dir, "fidelity-matched", earlier, fidelity)
    stopped = study.trials[-1]
    assert stopped.state == TrialState.PRUNED and stopped.user_attrs[STEPS_RUN_ATTR] == RUNG
    error = load_results(engine, "fidelity-matched").set_index("trial_number").loc[stopped.number]["error"]
    assert f"stopped at step {RUNG}: held-out loss" in error and "does not beat trial #0's 0.010 there by more than 0.02 nats" in error
    assert "#0 finished with no more trainable parameters (0.00% against" in error and "at best finish level with it" in error
