"""The held-out loss a rung can rank trials by: each target scored, weighted as training weights it."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from models.build import build_vl_model
from models.config import TrainingConfig, TrialConfig
from models.petl import get_method
from training.batches import Collator
from training.loop import train
from training.validation_loss import example_losses

CPU = torch.device("cpu")


def _model(env):
    config = TrialConfig(
        backbone="tiny-clip+tiny-t5",
        tasks=("vqa",),
        method="adapter",
        freeze=get_method("adapter").freeze,
        training=TrainingConfig(steps=30, batch_size=16, learning_rate=5e-3),
    )
    model, tokenizer = build_vl_model(config, env.location)
    return model, Collator(tokenizer, env.features, 24), config.training


def _losses(model, collator, examples, batch_size=7):
    return example_losses(model, collator, examples, "vqa", batch_size, 6, CPU)


def test_an_examples_loss_is_the_weighted_mean_of_its_targets_losses(env):
    model, collator, _ = _model(env)
    example = next(e for e in env.tasks["vqa"].evaluation if len(e.targets) >= 2)
    alone = [_losses(model, collator, [dataclasses.replace(example, targets=(t,), weights=(1.0,))])[example.key] for t in example.targets]
    expected = sum(w * loss for w, loss in zip(example.weights, alone)) / sum(example.weights)
    assert _losses(model, collator, [example])[example.key] == pytest.approx(expected, rel=1e-5)
    # Weights move it: all the weight on the first target gives that target's loss.
    first_only = dataclasses.replace(example, weights=(1.0,) + (0.0,) * (len(example.targets) - 1))
    assert _losses(model, collator, [first_only])[example.key] == pytest.approx(alone[0], rel=1e-5)


def test_losses_do_not_depend_on_the_batch_size_and_training_lowers_them(env):
    model, collator, training = _model(env)
    examples = env.tasks["vqa"].evaluation[:40]
    before = _losses(model, collator, examples, batch_size=7)
    assert set(before) == {e.key for e in examples}
    # Other batches pad the source text to other lengths, which moves a loss by up to 0.2% (measured).
    assert _losses(model, collator, examples, batch_size=64) == pytest.approx(before, rel=1e-2)
    train(model, collator, {"vqa": env.tasks["vqa"].train}, training, CPU, {"vqa": 6}, show_progress=False)
    after = _losses(model, collator, examples)
    assert sum(after.values()) < 0.8 * sum(before.values()), "30 steps of training must lower the held-out loss"
