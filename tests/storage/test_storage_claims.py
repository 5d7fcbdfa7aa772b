"""Claiming a configuration: no two trials of a study train the same one, even when they race."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable

import pytest
from sqlalchemy import Engine

from storage import TrialRecord, claim_trial, load_results, make_engine, record_trial

CONFIG = {"method": "lora", "method_params": {"rank": 4}, "tasks": ["vqa"]}


def _running(make_record: Callable[..., TrialRecord], number: int, config: dict = CONFIG, **extra) -> TrialRecord:
    return make_record(number, status="running", method="lora", config=config, finished_at=None, worker=f"host:{100 + number}", **extra)


def test_a_free_configuration_is_claimed_as_running(engine: Engine, make_record) -> None:
    assert claim_trial(engine, _running(make_record, 0)) is None
    row = load_results(engine, "study-a").iloc[0]
    assert (row["trial_number"], row["status"], row["config"]) == (0, "running", CONFIG)


def test_a_configuration_being_trained_is_not_claimed_again(engine: Engine, make_record) -> None:
    assert claim_trial(engine, _running(make_record, 0)) is None
    holder = claim_trial(engine, _running(make_record, 1))
    assert holder == (0, "running", "host:100")
    assert load_results(engine, "study-a")["trial_number"].tolist() == [0], "nothing is written for a refused claim"


def test_a_trained_configuration_is_not_claimed_again(engine: Engine, make_record) -> None:
    record_trial(engine, make_record(3, status="complete", method="lora", config=CONFIG))
    assert claim_trial(engine, _running(make_record, 4)) == (3, "complete", None)


def test_failed_pruned_and_infeasible_trials_and_other_studies_hold_nothing(engine: Engine, make_record) -> None:
    record_trial(engine, make_record(0, status="failed", method="lora", config=CONFIG, error="loss became nan"))
    record_trial(engine, make_record(1, status="pruned", method="lora", config=CONFIG, error="dominated at rung 1"))
    record_trial(engine, make_record(2, status="infeasible", method="lora", config=CONFIG, error="over budget"))
    record_trial(engine, make_record(0, study_name="study-b", status="complete", method="lora", config=CONFIG))
    assert claim_trial(engine, _running(make_record, 3)) is None


def test_other_configurations_do_not_block_a_claim(engine: Engine, make_record) -> None:
    assert claim_trial(engine, _running(make_record, 0)) is None
    other = {**CONFIG, "method_params": {"rank": 8}}
    assert claim_trial(engine, _running(make_record, 1, config=other)) is None


def test_a_retry_ignores_the_dead_attempt_it_replaces(engine: Engine, make_record) -> None:
    # The dead worker's row may still read "running" when its retry starts on another worker.
    assert claim_trial(engine, _running(make_record, 0)) is None
    assert claim_trial(engine, _running(make_record, 5), ignore=[0]) is None
    assert claim_trial(engine, _running(make_record, 6)) == (0, "running", "host:100")


def test_a_repeated_claim_of_the_same_trial_succeeds(engine: Engine, make_record) -> None:
    # What a retry after a dropped connection does when the first attempt had committed.
    assert claim_trial(engine, _running(make_record, 0)) is None
    assert claim_trial(engine, _running(make_record, 0)) is None
    assert len(load_results(engine, "study-a")) == 1


def test_only_running_rows_are_claims(engine: Engine, make_record) -> None:
    with pytest.raises(ValueError, match="claim_trial records a 'running' row, but got status 'complete'; use record_trial"):
        claim_trial(engine, make_record(0, status="complete", method="lora", config=CONFIG))


def _claim_in_process(url: str, number: int, start: multiprocessing.synchronize.Barrier, won: multiprocessing.Queue) -> None:
    engine = make_engine(url)
    record = TrialRecord("study-a", number, "running", "lora", CONFIG, trainable_params=4_180, total_params=100_000)
    start.wait()
    won.put((number, claim_trial(engine, record) is None))
    engine.dispose()


def test_workers_racing_for_one_configuration_leave_exactly_one_claim(engine: Engine, storage_url: str) -> None:
    context = multiprocessing.get_context("spawn")
    start, won = context.Barrier(6), context.Queue()
    racers = [context.Process(target=_claim_in_process, args=(storage_url, n, start, won)) for n in range(6)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(timeout=120)
    assert all(racer.exitcode == 0 for racer in racers), [racer.exitcode for racer in racers]
    results = dict(won.get(timeout=5) for _ in racers)
    winners = [n for n, claimed in results.items() if claimed]
    assert len(winners) == 1, results
    rows = load_results(engine, "study-a")
    assert rows["trial_number"].tolist() == winners and rows["status"].tolist() == ["running"]
