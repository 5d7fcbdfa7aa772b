"""What each freezing choice of the default search space costs: trainable % and a trial's time.

    python benchmarks/freezing_choices.py [--data-dir data] [--steps 60] [--rounds 2]

On the search's default backbone (tiny-clip+tiny-t5-vlp, VQA) it counts a single adapter
(reduction factor 16) with its paper freezing and with each choice of
`search.space_file.DEFAULT_FREEZE` changed, by the paper's definition (CLIP excluded) and with
CLIP counted (`--count-clip`); then it trains that adapter with CLIP frozen (cached features)
and with CLIP's last block training (pixels through CLIP at every step), interleaved round by
round, and reports each arm's training seconds. The default space's conditions (CLIP's policy
only when CLIP is counted; a choice dropped when the method's default with it is over the
budget) are read off these numbers.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
from pathlib import Path

CHOICES = (
    ("paper freezing (LayerNorms, V->L)", {}),
    ("+ biases", {"train_bias": True}),
    ("- LayerNorms", {"train_layernorm": False}),
    ("- V->L projection", {"train_vl_projection": False}),
    ("+ word embedding (tied LM head)", {"train_embeddings": True}),
    ("CLIP last block", {"visual_encoder": "last_block"}),
    ("CLIP trainable", {"visual_encoder": "trainable"}),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    from models.backbones.presets import DEFAULT_SEARCH_BACKBONE
    from models.config import TrainingConfig, TrialConfig
    from models.petl import get_method
    from search.space import base_learning_rate
    from training.environment import prepare_environment
    from training.trial import count_trial_parameters, run_trial

    env = prepare_environment(args.data_dir, DEFAULT_SEARCH_BACKBONE, ("vqa",))
    spec = get_method("adapter")
    training = TrainingConfig(steps=args.steps, learning_rate=base_learning_rate("adapter", DEFAULT_SEARCH_BACKBONE))

    def config(**freeze) -> TrialConfig:
        return TrialConfig(
            backbone=DEFAULT_SEARCH_BACKBONE,
            tasks=("vqa",),
            method="adapter",
            method_params={"reduction_factor": 16},
            freeze=dataclasses.replace(spec.freeze, **freeze),
            training=training,
        )

    print(f"| single adapter (factor 16) on {DEFAULT_SEARCH_BACKBONE}, VQA | trainable (CLIP counted) | % (paper) | % (CLIP counted) |")
    print("| --- | ---: | ---: | ---: |")
    for label, freeze in CHOICES:
        paper, counted = count_trial_parameters(config(**freeze), env), count_trial_parameters(config(**freeze), env, with_clip=True)
        print(f"| {label} | {counted.trainable:,} | {paper.trainable_pct:.2f}% | {counted.trainable_pct:.2f}% |")
    seconds: dict[str, list[float]] = {"frozen": [], "last_block": []}
    for _ in range(args.rounds):
        for policy in seconds:
            seconds[policy].append(run_trial(config(visual_encoder=policy), env, show_progress=False).train_seconds)
    print()
    print(f"| CLIP | training seconds, {args.steps} steps (median of {args.rounds}) | time / frozen |")
    print("| --- | ---: | ---: |")
    frozen = statistics.median(seconds["frozen"])
    for policy, values in seconds.items():
        print(f"| {policy} | {statistics.median(values):.1f} | {statistics.median(values) / frozen:.2f}x |")


if __name__ == "__main__":
    main()
