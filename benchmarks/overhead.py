"""Framework overhead: a trial's wall time against a plain PyTorch loop doing the same work.

    python benchmarks/overhead.py [--quick] [--steps 30] [--rounds 4] [--data-dir data]

Trial arm: `training.trial.train_trial`, the body of `run_trial` as a search runs it (build,
count, the training loop with its task sampling, progress bar, loss curve and memory peak, then
scoring), keeping the trained model for the check below. Plain arm: the same model built the
same way, a hand-written loop with the same recipe (AdamW, linear warm-up and decay, gradient
clipping) on the same Collator batches in the same order, then the same scoring function. Both
arms run on the trial's torch thread count (`training.trial_threads`), whatever `--threads`
says, so that neither gets more cores. The benchmark fails unless both arms end with bit-equal
trainable weights and the same scores: equal weights fail on any difference in the work (a
batch, a learning rate, a step), where the scores of a 30-step model (VQA 0.00) would not. Both
score the first 64 VQA validation questions, so scoring, identical in both arms, does not drown
the difference. Arms alternate round by round; medians are compared.
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import torch

from common import Section, benchmark_arguments, interleaved, median, positive_int, print_section, table, target, timed

BACKBONE = "tiny-clip+tiny-t5"
EVAL_EXAMPLES = 64
TRIAL_ARM, PLAIN_ARM = "trial (train_trial)", "plain PyTorch loop"


@dataclasses.dataclass(frozen=True)
class ArmResult:
    """What an arm ends with, to check that both arms did the same work."""

    scores: dict[str, float]
    weights: dict[str, torch.Tensor]  # the trainable parameters after the last step


def trainable_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}


def plain_trial(config, env) -> ArmResult:
    """What a researcher would write by hand for the same trial.

    It draws the same batches in the same order as the trial's loop (shuffled epochs from the
    seed, then each batch's targets from the same generator), so both arms train the same model
    and score the same answers: only the bookkeeping around the same kernels differs. Without
    that, the two models answer differently, and greedy decoding of answers of other lengths
    moved the comparison by 0.5 s either way.
    """
    from transformers import get_linear_schedule_with_warmup

    from models.build import build_vl_model
    from training.batches import Collator
    from training.trial import score_model

    training = config.training
    model, tokenizer = build_vl_model(config, env.location)
    model.task_context.active = "vqa"
    task = env.tasks["vqa"]
    collator = Collator(tokenizer, env.features, training.max_source_tokens)
    params = [p for p in model.parameters() if p.requires_grad]
    # Fused, as the trial's loop: the comparison is of the bookkeeping around the same kernels.
    optimizer = torch.optim.AdamW(params, lr=training.learning_rate, eps=training.adam_eps, weight_decay=training.weight_decay, fused=True)
    schedule = get_linear_schedule_with_warmup(optimizer, int(training.warmup_ratio * training.steps), training.steps)
    rng = random.Random(training.seed)
    torch.manual_seed(training.seed)
    order: list[int] = []
    model.train()
    for _ in range(training.steps):
        examples = []
        for _ in range(training.batch_size):
            if not order:  # a new epoch in a new shuffled order
                order = list(range(len(task.train)))
                rng.shuffle(order)
                order.reverse()
            examples.append(task.train[order.pop()])
        batch = collator.training(examples, rng, task.max_target_tokens)
        loss = (model(**batch.model_inputs(), labels=batch.labels) * batch.weights).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, training.grad_clip)
        optimizer.step()
        schedule.step()
    model.eval()
    return ArmResult(score_model(model, tokenizer, config, env, show_progress=False), trainable_weights(model))


def check_same_work(trial: ArmResult, plain: ArmResult) -> None:
    """Raise unless both arms ended with bit-equal trainable weights and equal scores.

    Raises:
        AssertionError: naming the first parameters that differ, or the scores.
    """
    if trial.weights.keys() != plain.weights.keys():
        raise AssertionError(f"the arms trained other parameters: {sorted(trial.weights.keys() ^ plain.weights.keys())[:5]}")
    differing = [name for name in trial.weights if not torch.equal(trial.weights[name], plain.weights[name])]
    if differing:
        raise AssertionError(f"the arms did not do the same work: {len(differing)} trained tensors differ, e.g. {differing[:3]}")
    if trial.scores != plain.scores:
        raise AssertionError(f"the arms did not do the same work: scores {trial.scores} against {plain.scores}")


def run(data_dir: Path, quick: bool = False, steps: int | None = None, rounds: int | None = None) -> Section:
    from models.config import TrainingConfig, TrialConfig
    from models.petl import get_method
    from training.environment import prepare_environment
    from training.trial import train_trial
    from training.trial_threads import trial_threads

    steps = steps or (4 if quick else 30)
    rounds = rounds or (2 if quick else 4)
    env = prepare_environment(data_dir, BACKBONE, ("vqa",))
    task = env.tasks["vqa"]
    env = dataclasses.replace(env, tasks={"vqa": task.limited(EVAL_EXAMPLES)})
    # Round-robin over one task is the same schedule as proportional sampling, without the
    # random draw per step that a hand-written single-task loop would not make.
    training = TrainingConfig(steps=steps, learning_rate=5e-3, task_sampling="round_robin")
    config = TrialConfig(BACKBONE, ("vqa",), "adapter", freeze=get_method("adapter").freeze, training=training)
    ends: dict[str, ArmResult] = {}

    def trial_arm() -> None:
        # train_trial is run_trial keeping the model, whose weights the check below compares.
        trained = train_trial(config, env, show_progress=False)
        ends["trial"] = ArmResult(trained.outcome.task_scores, trainable_weights(trained.model))

    def plain_arm() -> None:
        with trial_threads(env.device):  # the thread count the trial arm runs on, not --threads
            ends["plain"] = plain_trial(config, env)

    times = interleaved({TRIAL_ARM: lambda: timed(trial_arm), PLAIN_ARM: lambda: timed(plain_arm)}, rounds)
    check_same_work(ends["trial"], ends["plain"])
    trial, plain = median(times[TRIAL_ARM]), median(times[PLAIN_ARM])
    overhead = (trial - plain) / trial
    rows = [[name, f"{median(v):.2f}", ", ".join(f"{x:.2f}" for x in v)] for name, v in times.items()]
    body = table(["arm", "median wall time (s)", "rounds (s)"], rows) + (
        f"\n\nOverhead of the framework: **{100 * overhead:.1f}%** of the trial's wall time "
        f"(adapter on VQA, {steps} steps of batch 32, scoring {EVAL_EXAMPLES} validation questions, {rounds} "
        "alternating rounds, both on the trial's torch thread count). Both arms train on the same batches "
        f"and end with bit-equal trainable weights and the same scores (VQA {ends['trial'].scores['vqa']:.2f}), "
        "so they do the same work. A negative figure means the "
        "difference is below the machine's noise."
    )
    return Section(
        title="Framework overhead: a trial against a plain PyTorch loop",
        command="python benchmarks/overhead.py" + (" --quick" if quick else ""),
        body=body,
        figures={"overhead_fraction": overhead, "trial_s": trial, "plain_s": plain},
        targets=[target("framework overhead, fraction of trial time", overhead, at_most=0.05)],
    )


def main() -> None:
    args = benchmark_arguments(
        __doc__,
        ("--steps", {"type": positive_int, "default": None, "help": "training steps per trial (default 30, quick 4)"}),
        ("--rounds", {"type": positive_int, "default": None, "help": "alternating rounds (default 4, quick 2)"}),
    )
    print_section(run(args.data_dir, args.quick, args.steps, args.rounds))


if __name__ == "__main__":
    main()
