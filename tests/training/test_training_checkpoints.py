"""Checkpoints in the loop: a resumed run equals the uninterrupted one; accumulation, schedules, keep-best."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from models.build import build_vl_model
from models.config import TrainingConfig, TrialConfig
from models.petl import get_method
from training.batches import Collator
from training.checkpoints import CheckpointPlan, plan_checkpoints, read_state
from training.loop import lr_at, make_scheduler, train


class _Killed(Exception):
    """Stands for a process dying after a step (the subprocess test kills one for real)."""


def _setup(env, **training):
    config = TrialConfig(
        backbone="tiny-clip+tiny-t5",
        tasks=("vqa",),
        method="adapter",
        freeze=get_method("adapter").freeze,
        training=dataclasses.replace(TrainingConfig(steps=6, batch_size=4), **training),
    )
    model, tokenizer = build_vl_model(config, env.location)
    return model, Collator(tokenizer, env.features, 24), config


def _train(env, model, collator, config, **kwargs):
    return train(model, collator, {"vqa": env.tasks["vqa"].train}, config.training, torch.device("cpu"), {"vqa": 6}, False, **kwargs)


def _trainable(model) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize(
    "training",
    [{}, {"grad_accumulation": 2, "lr_schedule": "cosine"}, {"lr_schedule": "constant", "task_sampling": "round_robin"}],
    ids=["defaults", "accumulation-cosine", "constant"],
)
def test_resuming_from_a_checkpoint_ends_with_the_uninterrupted_weights(env, tmp_path, training):
    model, collator, config = _setup(env, **training)
    whole = _train(env, model, collator, config)
    expected = _trainable(model)

    plan = CheckpointPlan(tmp_path / "checkpoints", config.to_dict(), every=2)

    def die_at_step_3(step: int, loss: float) -> None:
        if step == 3:  # after step 3, before its (unscheduled) checkpoint: the latest is step 2's
            raise _Killed

    model, collator, config = _setup(env, **training)
    with pytest.raises(_Killed):
        _train(env, model, collator, config, checkpoints=plan, on_step=die_at_step_3)
    assert read_state(plan.latest)["step"] == 2

    model, collator, config = _setup(env, **training)  # a fresh process: fresh weights and generators
    torch.manual_seed(1234)  # whatever the process did before must not matter
    resumed = _train(env, model, collator, config, checkpoints=dataclasses.replace(plan, resume=True))
    got = _trainable(model)
    assert got.keys() == expected.keys()
    assert all(torch.equal(got[name], expected[name]) for name in expected), "the resumed run must be bit-exact"
    assert resumed.losses == whole.losses
    assert read_state(plan.latest)["step"] == config.training.steps  # the last step is checkpointed too


def test_a_resume_refuses_another_configuration_and_a_missing_checkpoint(env, tmp_path):
    model, collator, config = _setup(env, steps=2)
    with pytest.raises(ValueError, match="no checkpoint to continue from"):
        plan_checkpoints(tmp_path, config.to_dict(), resume=True)
    plan = plan_checkpoints(tmp_path, config.to_dict(), every=1)
    _train(env, model, collator, config, checkpoints=plan)
    other = dataclasses.replace(config, training=dataclasses.replace(config.training, learning_rate=0.5))
    with pytest.raises(ValueError, match=r"training\.learning_rate: checkpoint 0\.001, now 0\.5.*another --out"):
        plan_checkpoints(tmp_path, other.to_dict(), resume=True)
    with pytest.raises(ValueError, match="pass --resume"):
        plan_checkpoints(tmp_path, config.to_dict())
    assert plan_checkpoints(tmp_path, config.to_dict(), resume=True).resume


def _no_dropout(model) -> None:
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
        elif isinstance(getattr(module, "dropout", None), float):  # T5's attention: a rate, applied functionally
            module.dropout = 0.0


def _first_step_gradients(env, **training) -> tuple[float, dict[str, torch.Tensor]]:
    model, collator, config = _setup(env, steps=1, grad_clip=1e9, **training)
    _no_dropout(model)  # dropout masks of two half batches differ from one mask of the whole
    seen: dict = {}

    def keep(step: int, loss: float) -> None:
        seen.update(loss=loss, grads={name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None})

    _train(env, model, collator, config, on_step=keep)
    return seen["loss"], seen["grads"]


def test_two_accumulated_micro_batches_give_the_gradient_of_one_double_batch(env):
    loss_accumulated, accumulated = _first_step_gradients(env, batch_size=4, grad_accumulation=2)
    loss_double, double = _first_step_gradients(env, batch_size=8)
    assert loss_accumulated == pytest.approx(loss_double, rel=1e-3)
    assert accumulated.keys() == double.keys() and double
    # The same examples and targets; only padding (per micro-batch) moves the floats a little. A
    # loss not divided by K would double the gradient, one micro-batch alone would halve half of it.
    difference = torch.cat([(accumulated[name] - double[name]).flatten() for name in double]).norm()
    size = torch.cat([double[name].flatten() for name in double]).norm()
    assert difference / size < 1e-3


def test_the_schedules_follow_transformers_and_lr_at():
    parameter = torch.nn.Parameter(torch.zeros(1))
    for schedule in ("linear", "cosine", "constant"):
        config = TrainingConfig(learning_rate=1.0, steps=20, warmup_ratio=0.1, lr_schedule=schedule)
        optimizer = torch.optim.AdamW([parameter], lr=1.0)
        scheduler = make_scheduler(optimizer, config)
        for step in range(config.steps + 1):
            assert optimizer.param_groups[0]["lr"] == pytest.approx(lr_at(step, config)), (schedule, step)
            optimizer.step()
            scheduler.step()
    cosine = TrainingConfig(learning_rate=1.0, steps=20, warmup_ratio=0.1, lr_schedule="cosine")
    assert lr_at(2, cosine) == 1.0 and lr_at(11, cosine) == pytest.approx(0.5) and lr_at(20, cosine) == pytest.approx(0.0)
    assert lr_at(15, dataclasses.replace(cosine, lr_schedule="constant")) == 1.0
    assert math.isclose(lr_at(11, dataclasses.replace(cosine, lr_schedule="linear")), 0.5)


def test_keep_best_ends_with_the_weights_of_the_best_evaluation(env, tmp_path):
    model, collator, config = _setup(env, eval_every=2)
    scripted = {2: {"vqa": 30.0}, 4: {"vqa": 90.0}, 6: {"vqa": 50.0}}
    weights_at = {}

    def evaluate(step: int) -> dict[str, float]:
        weights_at[step] = _trainable(model)
        return scripted[step]

    plan = CheckpointPlan(tmp_path / "checkpoints", config.to_dict(), keep_best=True)
    result = _train(env, model, collator, config, evaluate=evaluate, checkpoints=plan)
    assert result.evaluations == sorted(scripted.items())  # the final weights are evaluated too, to compete
    best = read_state(plan.best)
    assert best["score"] == max(s["vqa"] for s in scripted.values()) and best["step"] == 4
    got = _trainable(model)
    assert all(torch.equal(got[name], weights_at[4][name]) for name in got)
    assert not all(torch.equal(got[name], weights_at[6][name]) for name in got)
    assert not plan.latest.exists()  # no --checkpoint-every: only the best is kept


def test_defaults_leave_the_stored_config_as_before():
    config = TrialConfig(backbone="tiny-clip+tiny-t5", tasks=("vqa",), method="adapter")
    training = config.to_dict()["training"]
    assert "grad_accumulation" not in training and "lr_schedule" not in training
    changed = dataclasses.replace(config, training=TrainingConfig(grad_accumulation=2, lr_schedule="cosine"))
    assert changed.to_dict()["training"]["grad_accumulation"] == 2
    assert TrialConfig.from_dict(changed.to_dict()) == changed and TrialConfig.from_dict(config.to_dict()) == config


def test_bad_production_options_are_named():
    problems = " ".join(TrainingConfig(grad_accumulation=0, lr_schedule="step").problems())
    assert "grad_accumulation must be an integer >= 1" in problems and "lr_schedule must be one of" in problems
    assert "cannot be combined with optimizer 'sam'" in " ".join(TrainingConfig(grad_accumulation=2, optimizer="sam").problems())


def test_the_evaluation_measure_is_named_and_kept_out_of_production_evaluations():
    assert "eval_measure must be one of ['score', 'loss'], got 'bleu'" in " ".join(TrainingConfig(eval_measure="bleu").problems())
    refused = " ".join(TrainingConfig(eval_measure="loss", eval_every=50).problems())
    assert "eval_measure 'loss' cannot be combined with eval_every=50" in refused and "use eval_measure 'score'" in refused
    assert TrainingConfig(eval_measure="loss", steps=40, eval_at=(10,)).problems() == []
    assert "eval_measure" not in TrialConfig("tiny-clip+tiny-t5", ("vqa",), "adapter").to_dict()["training"], "left out at its default"
