"""The logits scorer for fixed answer sets, scheduled evaluation and bf16 autocast."""

from __future__ import annotations

import random

import pytest
import torch

from models.build import build_vl_model
from models.config import ConfigError, TrainingConfig, TrialConfig
from training.batches import Collator
from training.environment import prepare_environment
from training.evaluate import generate_answers
from training.precision import resolve_precision
from training.trial import run_trial


@pytest.fixture(scope="module")
def nlvr_env(data_dir):
    return prepare_environment(data_dir, "tiny-clip+tiny-t5", ("nlvr2",))


@pytest.fixture(scope="module")
def model_and_collator(nlvr_env):
    config = TrialConfig(backbone="tiny-clip+tiny-t5", tasks=("nlvr2",), method="full_ft")
    model, tokenizer = build_vl_model(config, nlvr_env.location)
    model.eval()
    return model, Collator(tokenizer, nlvr_env.features, 24)


def test_choice_score_is_the_teacher_forced_log_likelihood(nlvr_env, model_and_collator):
    model, collator = model_and_collator
    examples = nlvr_env.tasks["nlvr2"].evaluation[:4]
    batch = collator.choices(examples)
    scores = model.score_choices(choice_labels=batch.choice_labels, choice_example=batch.choice_example, **batch.model_inputs())
    assert scores.shape == (8,) and torch.all(scores < 0)
    for row, (n, choice) in enumerate([(n, c) for n in range(4) for c in ("true", "false")]):
        single = collator.inputs(examples[n : n + 1])
        labels = collator._labels([choice], max_length=None)
        mean_loss = model(labels=labels, **single.model_inputs())
        n_tokens = int((labels != -100).sum())
        assert scores[row].item() == pytest.approx(-mean_loss.item() * n_tokens, rel=1e-4, abs=1e-4)


def test_nlvr2_answers_are_always_one_of_its_choices(nlvr_env, model_and_collator):
    model, collator = model_and_collator
    answers = generate_answers(
        model, collator, nlvr_env.tasks["nlvr2"].evaluation[:20], "nlvr2", 8, 6, torch.device("cpu"), show_progress=False
    )
    assert len(answers) == 20 and set(answers.values()) <= {"true", "false"}


def test_scheduled_evaluations_are_recorded_and_can_stop_the_trial(nlvr_env):
    config = TrialConfig(
        backbone="tiny-clip+tiny-t5",
        tasks=("nlvr2",),
        method="adapter",
        training=TrainingConfig(steps=7, batch_size=4, eval_every=3, eval_sample=10),
    )
    seen = []
    outcome = run_trial(config, nlvr_env, show_progress=False, on_evaluation=lambda step, scores: seen.append(step))
    assert seen == [3, 6] and [step for step, _ in outcome.evaluations] == [3, 6]
    assert all(set(scores) == {"nlvr2"} for _, scores in outcome.evaluations)

    class Pruned(Exception):
        pass

    def stop(step, scores):
        raise Pruned(step)

    with pytest.raises(Pruned):
        run_trial(config, nlvr_env, show_progress=False, on_evaluation=stop)


def test_bf16_autocast_trains_on_cpu(nlvr_env):
    config = TrialConfig(
        backbone="tiny-clip+tiny-t5",
        tasks=("nlvr2",),
        method="adapter",
        training=TrainingConfig(steps=3, batch_size=4, eval_batch_size=64, precision="bf16"),
    )
    outcome = run_trial(config, nlvr_env, show_progress=False)
    assert all(torch.isfinite(torch.tensor(outcome.losses or [0.0])))
    assert 0 <= outcome.task_scores["nlvr2"] <= 100


def test_precision_auto_is_fp32_on_cpu_and_unknown_values_are_rejected():
    assert resolve_precision("auto", torch.device("cpu")) == "fp32"
    with pytest.raises(ConfigError, match="training.precision must be one of"):
        TrialConfig.from_dict({"backbone": "b", "tasks": ["vqa"], "method": "adapter", "training": {"precision": "fp8"}})


def test_candidates_are_truncated_like_training_targets(nlvr_env, model_and_collator):
    # Scoring "false" in full against a model trained on its truncation would always pick "true".
    _, collator = model_and_collator
    examples = nlvr_env.tasks["nlvr2"].evaluation[:2]
    batch = collator.choices(examples, max_target_tokens=3)
    trained_on = collator.training(examples, random.Random(0), 3).labels
    assert batch.choice_labels.shape[1] <= 3 and trained_on.shape[1] <= 3
    assert batch.choice_labels[0].tolist() == collator._labels(["true"], 3)[0].tolist()
    assert nlvr_env.tasks["nlvr2"].max_target_tokens >= max(len(collator.tokenizer(choice).input_ids) for choice in ("true", "false")), (
        "NLVR2's target length must fit both answers whole"
    )
