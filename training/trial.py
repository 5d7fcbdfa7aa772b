"""Run one configuration end to end: count, build, train, evaluate."""

from __future__ import annotations

import dataclasses
import logging
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable

from transformers import PreTrainedTokenizerBase

from models.build import build_vl_model
from models.config import TrialConfig
from models.params import ParameterCount, breakdown, count_parameters, parameter_report
from models.vl_model import VLSeq2Seq
from training.batches import Collator
from training.checkpoints import CheckpointPlan
from training.environment import TrialEnvironment
from training.evaluate import generate_answers
from training.loop import train
from training.memory import PeakMemory
from training.trial_threads import trial_threads
from training.validation_loss import example_losses

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrialOutcome:
    """What a finished trial produced, as plain values (the trained model is not part of it).

    Attributes:
        score: the paper's aggregate: the average of the task scores (0-100).
        task_scores: official metric per task.
        params: trainable and total parameters by the paper's definition.
        train_seconds: wall time of training and evaluation.
        losses: the training-loss curve (one point per 20 steps).
        evaluations: (step, task -> value on a validation sample) of each scheduled evaluation:
            scores, or held-out losses under `training.eval_measure` "loss" (`evaluation_measure`).
        peak_memory_mb: memory the trial added at its peak (training.memory), when measurable.
        evaluate_seconds: the part of `train_seconds` spent scoring (scheduled and final).
        param_breakdown: component -> {"trainable": n, "total": n} (the results row's
            `param_breakdown`), or None for a model the accounting does not know.
    """

    score: float
    task_scores: dict[str, float]
    params: ParameterCount
    train_seconds: float
    losses: list[float] = field(default_factory=list)
    evaluations: list[tuple[int, dict[str, float]]] = field(default_factory=list)
    peak_memory_mb: float | None = None
    evaluate_seconds: float = 0.0
    param_breakdown: dict[str, dict[str, int]] | None = None
    evaluation_measure: str = "score"  # what `evaluations` hold: models.config.EVAL_MEASURES


@dataclass(frozen=True)
class TrainedTrial:
    """A finished trial with the model it trained, for callers that go on using the model."""

    outcome: TrialOutcome
    model: VLSeq2Seq
    tokenizer: PreTrainedTokenizerBase
    # The final scoring's predictions, by task then example key: the search split's (all of
    # it outside a search), so that a production run need not predict that split again.
    predictions: dict[str, dict] = field(default_factory=dict)


def count_trial_parameters(config: TrialConfig, env: TrialEnvironment, with_clip: bool = False) -> ParameterCount:
    """Exact counts without allocating weights (meta device), before any training.

    Args:
        with_clip: add CLIP's grid path (trainable as `config.freeze.visual_encoder` says) to
            the paper's definition, which leaves CLIP out.
    """
    if with_clip:
        return parameter_report(config, env.location).with_clip
    model, _ = build_vl_model(config, env.location, meta=True)
    return count_parameters(model)


def run_trial(
    config: TrialConfig,
    env: TrialEnvironment,
    show_progress: bool = True,
    on_evaluation: Callable[[int, dict[str, float]], None] | None = None,
) -> TrialOutcome:
    """Build, train and score a configuration on the environment's tasks; the model is let go.

    Args:
        on_evaluation: called after each scheduled evaluation (`config.training.eval_every`)
            with the step and the task scores on a validation sample; it may raise to stop the
            trial (Optuna pruning).
    """
    return train_trial(config, env, show_progress, on_evaluation).outcome


def train_trial(
    config: TrialConfig,
    env: TrialEnvironment,
    show_progress: bool = True,
    on_evaluation: Callable[[int, dict[str, float]], None] | None = None,
    checkpoints: CheckpointPlan | None = None,
    evaluation_predictions: list[tuple[int, dict[str, dict]]] | None = None,
    evaluation_losses: list[tuple[int, dict[str, dict]]] | None = None,
) -> TrainedTrial:
    """`run_trial`, keeping the trained model and its tokenizer (to save, or score again).

    Args:
        checkpoints: a production run's checkpoints and resume (training.loop.train); None in searches.
        evaluation_predictions: when given, each scheduled evaluation appends (step, task ->
            example key -> answer), so that a benchmark can score any part of the sample.
        evaluation_losses: the same with each example's held-out loss (training.validation_loss).
    """
    # A fixed thread count on CPU: the same score on any machine (training.trial_threads).
    with trial_threads(env.device), PeakMemory(env.device) as memory:
        trained = _train_and_score(config, env, show_progress, on_evaluation, checkpoints, evaluation_predictions, evaluation_losses)
    return dataclasses.replace(trained, outcome=dataclasses.replace(trained.outcome, peak_memory_mb=memory.megabytes))


def _param_breakdown(model: VLSeq2Seq) -> dict[str, dict[str, int]] | None:
    try:
        return {name: {"trainable": c.trainable, "total": c.total} for name, c in breakdown(model).items()}
    except ValueError as error:  # a layout the accounting does not know: keep the trial's result
        log.warning("no parameter breakdown for this trial: %s", error)
        return None


def _train_and_score(
    config: TrialConfig,
    env: TrialEnvironment,
    show_progress: bool,
    on_evaluation,
    checkpoints: CheckpointPlan | None = None,
    evaluation_predictions: list[tuple[int, dict[str, dict]]] | None = None,
    evaluation_losses: list[tuple[int, dict[str, dict]]] | None = None,
) -> TrainedTrial:
    start = time.perf_counter()
    model, tokenizer = build_vl_model(config, env.location)
    assert tokenizer is not None, "build_vl_model gives a tokenizer off the meta device"
    model.to(env.device)
    params = count_parameters(model)
    training = config.training
    collator = Collator(tokenizer, env.features, training.max_source_tokens, pixels=model.visual_encoder is not None)
    tasks = {name: env.tasks[name] for name in config.tasks}
    if model.visual_encoder is not None and env.features.pixels is not None:  # CLIP trains: it reads pixels every step
        table = env.features.pixels
        table.preload([i for task in tasks.values() for e in task.train for i in e.img_ids if i in table.image_paths])

    evaluating = 0.0

    def evaluate(step: int) -> dict[str, float]:
        nonlocal evaluating
        began = time.perf_counter()
        answers: dict[str, dict] | None = None if evaluation_predictions is None or training.eval_measure == "loss" else {}
        if training.eval_measure == "loss":
            losses = held_out_losses(model, tokenizer, config, env, sample=training.eval_sample)
            values = {task: statistics.fmean(by_key.values()) for task, by_key in losses.items()}
        else:
            values = score_model(model, tokenizer, config, env, show_progress=False, sample=training.eval_sample, predictions=answers)
        evaluating += time.perf_counter() - began
        if evaluation_predictions is not None and answers is not None:
            evaluation_predictions.append((step, answers))
        if evaluation_losses is not None:
            evaluation_losses.append((step, held_out_losses(model, tokenizer, config, env, sample=training.eval_sample)))
        if on_evaluation is not None:
            on_evaluation(step, values)
        return values

    result = train(
        model,
        collator,
        {name: task.train for name, task in tasks.items()},
        training,
        env.device,
        {name: task.max_target_tokens for name, task in tasks.items()},
        show_progress,
        max_source_tokens={name: task.max_source_tokens for name, task in tasks.items() if task.max_source_tokens},
        evaluate=evaluate,
        task_weights={name: task.sampling_weight for name, task in tasks.items() if task.sampling_weight != 1.0},
        checkpoints=checkpoints,
    )
    began = time.perf_counter()
    predictions: dict[str, dict] = {}
    task_scores = score_model(model, tokenizer, config, env, show_progress, predictions=predictions)
    evaluating += time.perf_counter() - began
    score = sum(task_scores.values()) / len(task_scores)
    outcome = TrialOutcome(
        score,
        task_scores,
        params,
        time.perf_counter() - start,
        result.losses,
        result.evaluations,
        evaluate_seconds=evaluating,
        param_breakdown=_param_breakdown(model),
        evaluation_measure=training.eval_measure,
    )
    return TrainedTrial(outcome, model, tokenizer, predictions)


def held_out_losses(
    model: VLSeq2Seq, tokenizer: PreTrainedTokenizerBase, config: TrialConfig, env: TrialEnvironment, sample: int | None = None
) -> dict[str, dict[int | str, float]]:
    """Task -> example key -> teacher-forced loss on the split a search scores (its first `sample` examples)."""
    training = config.training
    collator = Collator(tokenizer, env.features, training.max_source_tokens, pixels=model.visual_encoder is not None)
    losses = {}
    with trial_threads(env.device):
        for name in config.tasks:
            task = env.tasks[name]
            examples = _search_examples(task, env)[:sample]
            losses[name] = example_losses(
                model,
                collator,
                examples,
                name,
                training.eval_batch_size,
                task.max_target_tokens,
                env.device,
                max_source_tokens=task.max_source_tokens,
                precision=training.precision,
            )
    return losses


def _search_examples(task, env: TrialEnvironment) -> list:
    """The examples a search scores a task on: its search split, at most `search_examples` of them."""
    examples = task.splits[task.search_split].examples
    return examples[: task.search_examples] if env.for_search and task.search_examples else examples


def score_model(
    model: VLSeq2Seq,
    tokenizer: PreTrainedTokenizerBase,
    config: TrialConfig,
    env: TrialEnvironment,
    show_progress: bool = True,
    sample: int | None = None,
    split: str | None = None,
    predictions: dict[str, dict] | None = None,
) -> dict[str, float]:
    """Each task's official metric on an evaluation split.

    Args:
        sample: score only the first `sample` examples (scheduled evaluations).
        split: "val", "test", ...; None: the split searches score on, with at most the task's
            `search_examples` in a search environment (`env.for_search`).
        predictions: filled with each task's predictions (example key -> text) when given.

    Raises:
        KeyError: a task without `split` (a JSONL task without a test file).
    """
    with trial_threads(env.device):  # a rescoring (search.evaluate) gives the trial's own answers
        return _score_tasks(model, tokenizer, config, env, show_progress, sample, split, predictions)


def _score_tasks(
    model: VLSeq2Seq,
    tokenizer: PreTrainedTokenizerBase,
    config: TrialConfig,
    env: TrialEnvironment,
    show_progress: bool,
    sample: int | None,
    split: str | None,
    predictions: dict[str, dict] | None,
) -> dict[str, float]:
    training = config.training
    collator = Collator(tokenizer, env.features, training.max_source_tokens, pixels=model.visual_encoder is not None)
    scores = {}
    for name in config.tasks:
        task = env.tasks[name]
        examples = task.splits[split].examples if split else _search_examples(task, env)
        if sample is not None:
            examples = examples[:sample]
        answers = generate_answers(
            model,
            collator,
            examples,
            name,
            training.eval_batch_size,
            task.max_target_tokens,
            env.device,
            show_progress=show_progress,
            max_source_tokens=task.max_source_tokens,
            precision=training.precision,
        )
        scores[name] = task.splits[split or task.search_split].score(answers)
        if predictions is not None:
            predictions[name] = answers
    return scores
