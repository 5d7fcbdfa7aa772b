"""The optimisation loop: schedule, determinism and failing fast on a non-finite loss."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from models.build import build_vl_model
from models.config import TrainingConfig, TrialConfig
from models.petl import get_method
from training.batches import Collator
from training.loop import NonFiniteLossError, lr_at, train


def test_linear_warmup_then_linear_decay():
    config = TrainingConfig(learning_rate=1.0, steps=100, warmup_ratio=0.1)
    assert lr_at(0, config) == 0.0
    assert lr_at(5, config) == pytest.approx(0.5)
    assert lr_at(10, config) == pytest.approx(1.0)
    assert lr_at(55, config) == pytest.approx(0.5)
    assert lr_at(100, config) == 0.0


def _setup(env, **training):
    config = TrialConfig(
        backbone="tiny-clip+tiny-t5",
        tasks=("vqa",),
        method="adapter",
        freeze=get_method("adapter").freeze,
        training=dataclasses.replace(TrainingConfig(steps=5, batch_size=8), **training),
    )
    model, tokenizer = build_vl_model(config, env.location)
    return model, Collator(tokenizer, env.features, 24), config.training


def test_same_seed_gives_the_same_losses(env):
    runs = []
    for _ in range(2):
        model, collator, training = _setup(env)
        runs.append(
            train(model, collator, {"vqa": env.tasks["vqa"].train}, training, torch.device("cpu"), {"vqa": 6}, show_progress=False).losses
        )
    assert runs[0] == runs[1]


def test_non_finite_loss_fails_the_trial_with_the_step(env):
    model, collator, training = _setup(env)
    with torch.no_grad():
        model.visual_embedding.feat_proj[0].weight.fill_(float("nan"))
    with pytest.raises(NonFiniteLossError, match="step 1"):
        train(model, collator, {"vqa": env.tasks["vqa"].train}, training, torch.device("cpu"), {"vqa": 6}, show_progress=False)


def test_round_robin_gives_every_task_the_same_number_of_steps(env):
    seen = []
    model, collator, training = _setup(env, steps=6, task_sampling="round_robin")
    small = env.tasks["vqa"].train[:5]  # a task 100x smaller than VQA still gets every other step
    train(
        model,
        collator,
        {"vqa": env.tasks["vqa"].train, "small": small},
        training,
        torch.device("cpu"),
        {"vqa": 6, "small": 6},
        show_progress=False,
        on_step=lambda step, loss: seen.append(model.task_context.active),
    )
    assert seen == ["vqa", "small"] * 3


def test_sam_steps_from_the_gradient_at_the_perturbed_point(env):
    runs = {}
    for optimizer in ("adamw", "sam"):
        model, collator, training = _setup(env, steps=3, optimizer=optimizer, sam_rho=0.5)
        losses = []
        train(
            model,
            collator,
            {"vqa": env.tasks["vqa"].train},
            training,
            torch.device("cpu"),
            {"vqa": 6},
            show_progress=False,
            on_step=lambda step, loss: losses.append(loss),
        )
        runs[optimizer] = losses
    assert runs["sam"][0] == pytest.approx(runs["adamw"][0])  # same start, same first batch
    assert runs["sam"][1:] != pytest.approx(runs["adamw"][1:])  # a different update
    assert all(torch.isfinite(torch.tensor(runs["sam"])))
