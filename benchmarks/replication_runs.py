"""The trials behind REPLICATION.md: which configurations, on which backbone and tasks, how scored.

Every trial is a real `run_trial` on the embedded backbone. Learning rates are the project's
for the tiny backbone (search.space.base_learning_rate: the paper's are tuned for 20 epochs of a
base-size model); tasks are sampled round-robin, so NLVR2, the smallest task, gets its share of
a short run (proportional sampling starves it, BENCHMARKS.md appendix).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

TABLE1 = (
    "full-ft", "multiple-adapters", "half-shared-adapters", "single-adapter", "hyperformer", "single-compacter",
    "single-lora", "single-dora", "single-pissa", "single-prompt", "vl-ln", "vl-only", "vl-pet-large", "single-lst",
)  # fmt: skip
VIDEO_PRESETS = ("full-ft", "single-adapter", "single-lora")
VLP_PRESETS = ("full-ft", "single-adapter")
BACKBONE = "tiny-clip+tiny-t5"
VLP_BACKBONE = "tiny-clip+tiny-t5-vlp"
# The generated benchmark's held-out split of each task (GQA keeps its own split names).


@dataclass(frozen=True)
class Settings:
    steps: int
    seeds: int
    tasks: tuple[str, ...]
    video_tasks: tuple[str, ...]
    eval_limit: int | None
    vlp_steps: int | None

    def describe(self) -> str:
        scored = (
            f"the first {self.eval_limit} examples of each evaluation split (majority baselines: whole splits)"
            if self.eval_limit else "whole evaluation splits"
        )  # fmt: skip
        vlp = f"{self.vlp_steps} steps" if self.vlp_steps else "the project's default recipe"
        video = f", video tasks {', '.join(self.video_tasks)} in another" if self.video_tasks else ""
        return (
            f"Settings: backbone `{BACKBONE}` (project-pretrained); image tasks {', '.join(self.tasks)} trained together "
            f"in one model{video}; **{self.steps} training steps** of batch "
            f"32 per trial, tasks in turn (round robin); **{self.seeds} seeds** (0-{self.seeds - 1}) per configuration, "
            f"reported as mean +- standard deviation; {scored}; learning rates of the tiny backbone "
            f"(each method's `tiny_learning_rate` in models/petl/registry.py); `{VLP_BACKBONE}` VL-pretrained with {vlp}. The paper trains base-size "
            "models for 20 epochs, so absolute scores are not comparable with its; the comparisons between rows are."
        )


@dataclass
class Run:
    """One trained seed of one configuration."""

    score: float
    task_scores: dict[str, float]
    trainable_pct: float
    seconds: float
    ood_scores: dict[str, float] = field(default_factory=dict)


Results = dict[str, dict[str, list[Run]]]  # experiment -> arm -> one Run per seed
BASELINE = "majority baseline (no model)"  # the arm of results["baseline"] for image and video tasks


def _baseline(env, ood_env=None) -> list[Run]:
    """The no-model floor as a run: each task's majority baseline on the same evaluation examples."""
    task_scores = {name: task.majority_baseline for name, task in env.tasks.items()}
    ood = {name: task.majority_baseline for name, task in ood_env.tasks.items()} if ood_env is not None else {}
    return [Run(sum(task_scores.values()) / len(task_scores), task_scores, 0.0, 0.0, ood)]


def _limited(env, limit: int | None):
    if not limit:
        return env
    tasks = {n: t.limited(limit) for n, t in env.tasks.items()}
    return dataclasses.replace(env, tasks=tasks)


def _ood_env(env, limit: int | None):
    """The same environment scoring each task's out-of-distribution split."""
    from training.environment import benchmark_dir, visual_inputs
    from training.task_registry import PREPARERS

    root = benchmark_dir(env.data_dir, 0)
    tasks = {name: PREPARERS[name](root, eval_split="test_ood") for name in env.tasks}
    ood = dataclasses.replace(env, tasks=tasks, features=visual_inputs(env.data_dir, env.location, tasks))
    return _limited(ood, limit)


def _config(preset: str, backbone: str, tasks: tuple[str, ...], settings: Settings, seed: int, clip: str = "frozen"):
    from models.config import TrainingConfig
    from models.petl.presets import RUN_PRESETS
    from search.space import base_learning_rate

    config = RUN_PRESETS[preset].trial_config(backbone, tasks, TrainingConfig(steps=settings.steps, seed=seed, task_sampling="round_robin"))
    training = dataclasses.replace(config.training, learning_rate=base_learning_rate(config.method, backbone))
    return dataclasses.replace(config, training=training, freeze=dataclasses.replace(config.freeze, visual_encoder=clip))


def _train(label: str, config, env, ood_env=None) -> Run:
    from training.trial import score_model, train_trial

    started = time.perf_counter()
    trained = train_trial(config, env, show_progress=False)
    outcome = trained.outcome
    ood = {}
    if ood_env is not None:
        ood = score_model(trained.model, trained.tokenizer, config, ood_env, show_progress=False)
    seconds = time.perf_counter() - started
    print(
        f"[replication] {label} seed {config.training.seed}: score {outcome.score:.1f} {outcome.task_scores} "
        f"({outcome.params.trainable_pct:.2f}% trainable, {seconds:.0f} s)",
        file=sys.stderr, flush=True,
    )  # fmt: skip
    return Run(outcome.score, dict(outcome.task_scores), outcome.params.trainable_pct, seconds, ood)


def run_table1(data_dir: Path, settings: Settings, presets: tuple[str, ...]) -> Results:
    """Train Table 1's arms of `presets` only, every seed: rows for methods added after a full run,
    beside anchors trained again in the same run (a full run's rows may come from another build)."""
    from training.environment import prepare_environment

    env = _limited(prepare_environment(data_dir, BACKBONE, settings.tasks), settings.eval_limit)
    results: Results = {"table1": {}, "baseline": {"image": _baseline(env)}}
    for preset in presets:
        results["table1"][preset] = [
            _train(preset, _config(preset, BACKBONE, settings.tasks, settings, s), env) for s in range(settings.seeds)
        ]
    return results


def run_experiments(data_dir: Path, settings: Settings) -> Results:
    """Train every arm of every experiment for every seed."""
    from training.environment import prepare_environment

    if settings.vlp_steps:
        os.environ["VLPETL_VLP_STEPS"] = str(settings.vlp_steps)  # read by training.pretrain.vl_variant
    results: Results = {"table1": {}, "clip": {}, "vlp": {}, "video": {}, "baseline": {}}
    env = _limited(prepare_environment(data_dir, BACKBONE, settings.tasks), settings.eval_limit)
    ood_env = _ood_env(env, settings.eval_limit)
    results["baseline"]["image"] = _baseline(env, ood_env)
    seeds = range(settings.seeds)
    for preset in TABLE1:
        results["table1"][preset] = [_train(preset, _config(preset, BACKBONE, settings.tasks, settings, s), env, ood_env) for s in seeds]
    # CLIP frozen vs trained: the frozen arms are Table 1's full-ft (LM trained) and vl-only
    # (LM frozen); the trained arms add the whole CLIP tower to the same configurations.
    for preset, arm in (("full-ft", "CLIP trained + LM trained"), ("vl-only", "CLIP trained + LM frozen")):
        results["clip"][arm] = [_train(arm, _config(preset, BACKBONE, settings.tasks, settings, s, clip="trainable"), env) for s in seeds]
    results["clip"]["CLIP frozen + LM trained"] = results["table1"]["full-ft"]
    results["clip"]["CLIP frozen + LM frozen"] = results["table1"]["vl-only"]
    vlp_env = _limited(prepare_environment(data_dir, VLP_BACKBONE, settings.tasks), settings.eval_limit)
    for preset in VLP_PRESETS:
        results["vlp"][f"{preset}, no VL pretraining"] = results["table1"][preset]
        results["vlp"][f"{preset}, VL pretraining"] = [
            _train(f"{preset} (VLP)", _config(preset, VLP_BACKBONE, settings.tasks, settings, s), vlp_env) for s in seeds
        ]
    if settings.video_tasks:
        video_env = _limited(prepare_environment(data_dir, BACKBONE, settings.video_tasks), settings.eval_limit)
        results["baseline"]["video"] = _baseline(video_env)
        for preset in VIDEO_PRESETS:
            results["video"][preset] = [
                _train(f"{preset} (video)", _config(preset, BACKBONE, settings.video_tasks, settings, s), video_env) for s in seeds
            ]
    return results
