"""One model trained on several tasks at once, against each task's majority-answer baseline.

    python benchmarks/multitask.py [--tasks vqa,gqa,nlvr2,caption] [--method full_ft] [--steps 1500] [--backbone NAME]
        [--task-sampling proportional|round_robin] [--eval-every N] [--frame-grid N]

Trains a single model multi-task on the generated benchmark with the embedded pretrained
backbone (the paper's recipe: proportional task sampling, single-task steps, task prefixes),
scores every task with its official metric on the validation split, and prints each score
next to the majority baseline and next to the score of the same model when every example
sees another example's images or video (shuffled visual inputs): the gap is what the model
reads from the pixels rather than from the text. The average is the paper's aggregate. With
TVQA, a second table splits its accuracy by kind of generated question.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import time
from collections import defaultdict
from pathlib import Path

from common import data_folder, generated_tasks, positive_int

from models.backbones.presets import DEFAULT_BACKBONE
from models.config import TrainingConfig, TrialConfig
from models.petl import get_method
from search.space import base_learning_rate
from tasks.baselines import video_qa_answer_prior
from tasks.video_text import question_kind
from training import visual_inputs
from training.batches import Collator
from training.environment import TrialEnvironment, prepare_environment
from training.evaluate import generate_answers
from training.task_readers import TASK_PREFIXES
from training.trial import TrainedTrial, train_trial


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--tasks", type=generated_tasks, default="vqa,gqa,nlvr2,caption")
    parser.add_argument("--method", default="full_ft")
    parser.add_argument("--steps", type=positive_int, default=1500)
    parser.add_argument("--batch-size", type=positive_int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-every", type=int, default=0)
    parser.add_argument("--task-sampling", choices=("proportional", "round_robin"), default="proportional")
    parser.add_argument("--data-dir", type=data_folder, default=Path("data"))
    parser.add_argument("--backbone", default=DEFAULT_BACKBONE, help=f"embedded backbone preset (default {DEFAULT_BACKBONE})")
    parser.add_argument(
        "--frame-grid",
        type=int,
        default=visual_inputs.FRAME_GRID,
        help="side of each video frame's pooled grid (1: one mean-pooled token per frame)",
    )
    args = parser.parse_args()
    tasks = args.tasks
    visual_inputs.FRAME_GRID = args.frame_grid  # read when the video table is built
    env = prepare_environment(args.data_dir.resolve(), args.backbone, tasks)
    spec = get_method(args.method)
    training = TrainingConfig(
        learning_rate=base_learning_rate(args.method, args.backbone),
        steps=args.steps,
        batch_size=args.batch_size,
        seed=args.seed,
        eval_every=args.eval_every,
        task_sampling=args.task_sampling,
    )
    config = TrialConfig(args.backbone, tasks, args.method, freeze=spec.freeze, training=training)
    start = time.perf_counter()
    trained = train_trial(
        config, env, on_evaluation=lambda step, scores: print(f"  step {step}: " + ", ".join(f"{t} {s:.1f}" for t, s in scores.items()))
    )
    outcome = trained.outcome
    minutes = (time.perf_counter() - start) / 60
    print(
        f"{args.method} on {'+'.join(tasks)}, {args.steps} steps x batch {args.batch_size}, "
        f"{args.task_sampling} task sampling, lr {training.learning_rate:g}, seed {args.seed}, {args.backbone}: {minutes:.1f} min, "
        f"{outcome.params.trainable_pct:.2f}% trainable"
    )
    shuffled = {name: shuffled_visual_score(trained, env, config, name) for name in tasks}
    print("| task | metric | score | shuffled visual inputs | majority baseline | score / baseline |")
    print("|---|---|---:|---:|---:|---:|")
    for name in tasks:
        score, baseline = outcome.task_scores[name], env.tasks[name].majority_baseline
        metric = {"caption": "CIDEr", "tvc": "CIDEr", "yc2c": "CIDEr"}.get(name, "accuracy")
        ratio = f"{score / baseline:.2f}x" if baseline else "n/a"
        print(f"| {name} | {metric} | {score:.1f} | {shuffled[name]:.1f} | {baseline:.1f} | {ratio} |")
    mean_baseline = sum(env.tasks[t].majority_baseline for t in tasks) / len(tasks)
    mean_shuffled = sum(shuffled.values()) / len(tasks)
    ratio = outcome.score / mean_baseline
    print(f"| average | | {outcome.score:.1f} | {mean_shuffled:.1f} | {mean_baseline:.1f} | {ratio:.2f}x |")
    if "tvqa" in tasks:
        print_video_question_kinds(trained, env, config)


def print_video_question_kinds(trained: TrainedTrial, env: TrialEnvironment, config: TrialConfig) -> None:
    """TVQA accuracy per kind of generated question, next to the answer prior on the same questions.

    The prior (the baseline's rule) picks the offered choice most often right in training, so a
    kind at its prior is answered from the question's wording, not from the video.
    """
    task = env.tasks["tvqa"]
    predictions = _answers(trained, env, config, "tvqa", task.evaluation)
    prior_pick = video_qa_answer_prior((e.choices, e.choices.index(e.targets[0])) for e in task.train)
    model, prior = defaultdict(list), defaultdict(list)
    for e in task.evaluation:
        kind = question_kind(e.source.removeprefix(TASK_PREFIXES["tvqa"]).split(" choices: ")[0]) or "other"
        model[kind].append(predictions[e.key] == e.targets[0])
        prior[kind].append(e.choices[prior_pick(e.choices)] == e.targets[0])
    print("| tvqa question kind | questions | accuracy | answer prior |")
    print("|---|---:|---:|---:|")
    for kind in sorted(model):
        n = len(model[kind])
        print(f"| {kind} | {n} | {100 * sum(model[kind]) / n:.1f} | {100 * sum(prior[kind]) / n:.1f} |")


def _answers(trained: TrainedTrial, env: TrialEnvironment, config: TrialConfig, name: str, examples) -> dict:
    task = env.tasks[name]
    collator = Collator(trained.tokenizer, env.features, config.training.max_source_tokens, pixels=trained.model.visual_encoder is not None)
    return generate_answers(
        trained.model,
        collator,
        examples,
        name,
        config.training.eval_batch_size,
        task.max_target_tokens,
        env.device,
        show_progress=False,
        max_source_tokens=task.max_source_tokens,
        precision=config.training.precision,
    )


def shuffled_visual_score(trained: TrainedTrial, env: TrialEnvironment, config: TrialConfig, name: str) -> float:
    """The task's score when each evaluation example sees another example's images (seeded shuffle)."""
    task = env.tasks[name]
    visual = [e.img_ids for e in task.evaluation]
    random.Random(0).shuffle(visual)
    examples = [dataclasses.replace(e, img_ids=ids) for e, ids in zip(task.evaluation, visual)]
    return task.score(_answers(trained, env, config, name, examples))


if __name__ == "__main__":
    main()
