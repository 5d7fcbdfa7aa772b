"""Base-size backbones on a CUDA GPU: training samples per second and achieved TFLOP/s.

    python benchmarks/gpu.py [--quick]

Runs only where CUDA is present; elsewhere it returns a skipped section saying so. Each of a few
run presets trains on `clip-rn101+bart-base` and `clip-rn101+t5-base` (random init, synthetic
batches of the trial's shapes, as in step_time.py) under bf16 autocast. FLOPs of one step
(forward and backward) are counted by torch.utils.flop_counter; achieved TFLOP/s is that count
over the median step time.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import torch

from common import Section, benchmark_arguments, median, print_section, table, timed

BACKBONES = ("clip-rn101+bart-base", "clip-rn101+t5-base")
PRESETS = ("full-ft", "single-adapter", "single-lora", "single-prompt")
COMMAND = "python benchmarks/gpu.py"


def run(data_dir: Path, quick: bool = False) -> Section:
    if not torch.cuda.is_available():
        return Section(
            title="GPU: samples/s and achieved TFLOP/s on base-size backbones",
            command=COMMAND,
            body="Skipped: no CUDA device on this machine. The same command measures this section where one is.",
            skipped="no CUDA device",
        )
    from torch.utils.flop_counter import FlopCounterMode

    from step_time import make_arm, run_steps

    device = torch.device("cuda")
    batch_size, steps, rounds = (32, 5, 2) if quick else (64, 20, 3)
    rows, figures = [], {}
    for backbone in BACKBONES[:1] if quick else BACKBONES:
        for preset in PRESETS[:2] if quick else PRESETS:
            arm = make_arm(preset, backbone, data_dir, batch_size, device)
            with torch.autocast("cuda", dtype=torch.bfloat16):
                with FlopCounterMode(display=False) as counter:
                    arm.step()
                flops = counter.get_total_flops()
                # partial binds this arm now; a lambda would look `arm` up when called, and the name is deleted below.
                seconds = median([timed(partial(run_steps, arm, steps, device)) / steps for _ in range(rounds)])
            figures[f"{backbone}/{preset}/tflops"] = flops / seconds / 1e12
            rows.append([
                backbone, preset, f"{arm.trainable_pct:.2f}", f"{1000 * seconds:.1f}", f"{batch_size / seconds:.0f}",
                f"{flops / 1e12:.2f}", f"{flops / seconds / 1e12:.1f}",
            ])  # fmt: skip
            del arm
            torch.cuda.empty_cache()
    body = table(["backbone", "run preset", "trainable %", "ms / step", "samples / s", "TFLOP / step", "achieved TFLOP/s"], rows)
    body += f"\n\n{torch.cuda.get_device_name(0)}, bf16 autocast, batch {batch_size}, median of {rounds} runs of {steps} steps."
    return Section(title="GPU: samples/s and achieved TFLOP/s on base-size backbones", command=COMMAND, body=body, figures=figures)


def main() -> None:
    args = benchmark_arguments(__doc__)
    print_section(run(args.data_dir, args.quick))


if __name__ == "__main__":
    main()
