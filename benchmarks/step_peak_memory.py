"""Peak memory of one training step, as a trial reports it (`peak_memory_mb`), per run preset.

    python benchmarks/step_peak_memory.py --presets single-lst,single-lora,single-adapter,vl-ln \
        [--backbones clip-rn101+bart-base,clip-rn101+t5-base] [--batch 16]

Each arm runs in a fresh process (a process's resident set never shrinks back, so arms cannot
share one): the preset's model on a base-size backbone built from its config with random weights
(benchmarks/step_time.py's `build_model`), then one AdamW step on step_time's synthetic batch
inside `training.memory.PeakMemory`, the trial's own measurement (on a CPU: the resident set's
peak above its level before the step: activations, gradients, AdamW's state, the allocator's
slack). step_time's accounted figure (weights included) is printed beside it. Prints one JSON
line per arm.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from common import run_preset_names


def measure(preset: str, backbone: str, batch: int) -> dict:
    """One arm, in this process."""
    import torch

    sys.path.insert(0, str(Path(__file__).parent))
    import step_time

    from models.params import count_parameters
    from training.memory import PeakMemory

    torch.set_num_threads(1)
    model, feat_dim, n_visual = step_time.build_model(preset, backbone, Path("data"))
    model.train()
    model.task_context.active = "vqa"
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    arm = step_time.Arm(model, optimizer, step_time.synthetic_batch(model, batch, feat_dim, n_visual, torch.device("cpu")), 0.0)
    with PeakMemory(torch.device("cpu"), interval=0.005) as peak:
        arm.step()
    return {
        "preset": preset,
        "backbone": backbone,
        "batch": batch,
        "trainable_pct": round(count_parameters(model).trainable_pct, 2),
        "peak_memory_mb": round(peak.megabytes or 0.0, 1),
        "accounted_mb": round(step_time.accounted_memory_mb(arm), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--presets", required=True, type=run_preset_names, help="comma-separated run presets")
    parser.add_argument("--backbones", default="clip-rn101+bart-base", help="comma-separated base-size backbone presets")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--one", nargs=2, metavar=("PRESET", "BACKBONE"), help=argparse.SUPPRESS)  # a child process's arm
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one[0], args.one[1], args.batch)))
        return
    for backbone in args.backbones.split(","):
        for preset in args.presets:
            child = [sys.executable, __file__, "--presets", preset, "--batch", str(args.batch), "--one", preset, backbone]
            result = subprocess.run(child, capture_output=True, text=True, check=True)
            print(result.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
