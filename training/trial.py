"""Run one configuration end to end: count, build, train, evaluate."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from transformers import PreTrainedTokenizerBase

from models.build import build_vl_model
from models.config import TrialConfig
from models.params import ParameterCount, count_parameters
from models.vl_model import VLSeq2Seq
from training.batches import Collator
from training.environment import TrialEnvironment
from training.evaluate import generate_answers
from training.loop import train


@dataclass
class TrialOutcome:
    """What a finished trial produced.

    Attributes:
        score: the paper's aggregate: the average of the task scores (0-100).
        task_scores: official metric per task.
        params: trainable and total parameters by the paper's definition.
        train_seconds: wall time of training and evaluation.
        losses: the training-loss curve (one point per 20 steps).
    """

    score: float
    task_scores: dict[str, float]
    params: ParameterCount
    train_seconds: float
    losses: list[float] = field(default_factory=list)
    model: VLSeq2Seq | None = None
    tokenizer: PreTrainedTokenizerBase | None = None


def count_trial_parameters(config: TrialConfig, env: TrialEnvironment) -> ParameterCount:
    """Exact counts without allocating weights (meta device), before any training."""
    model, _ = build_vl_model(config, env.location, meta=True)
    return count_parameters(model)


def run_trial(config: TrialConfig, env: TrialEnvironment, show_progress: bool = True) -> TrialOutcome:
    """Build, train and score a configuration on the environment's tasks."""
    start = time.perf_counter()
    model, tokenizer = build_vl_model(config, env.location)
    model.to(env.device)
    params = count_parameters(model)
    training = config.training
    collator = Collator(tokenizer, env.features, training.max_source_tokens)
    tasks = {name: env.tasks[name] for name in config.tasks}
    result = train(
        model, collator, {name: task.train for name, task in tasks.items()}, training, env.device,
        {name: task.max_target_tokens for name, task in tasks.items()}, show_progress,
    )
    losses = result.losses
    task_scores = score_model(model, tokenizer, config, env, show_progress)
    score = sum(task_scores.values()) / len(task_scores)
    return TrialOutcome(score, task_scores, params, time.perf_counter() - start, losses, model, tokenizer)


def score_model(
    model: VLSeq2Seq, tokenizer: PreTrainedTokenizerBase, config: TrialConfig, env: TrialEnvironment, show_progress: bool = True
) -> dict[str, float]:
    """Each task's official metric on its evaluation split."""
    training = config.training
    collator = Collator(tokenizer, env.features, training.max_source_tokens)
    scores = {}
    for name in config.tasks:
        task = env.tasks[name]
        predictions = generate_answers(
            model, collator, task.evaluation, name, training.eval_batch_size, task.max_target_tokens, env.device,
            show_progress=show_progress,
        )
        scores[name] = task.score(predictions)
    return scores
