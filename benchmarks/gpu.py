"""Base-size backbones on a CUDA GPU: samples/s, achieved TFLOP/s, real trials and a search with a kill.

    python benchmarks/gpu.py [--quick] [--dry-run-cpu]

Runs only where CUDA is present; elsewhere it returns a skipped section naming each part it
skipped. On CUDA (under 8 minutes on one card):

1. the card's bf16 matmul peak, measured;
2. each of a few run presets trains on `clip-rn101+bart-base` and `clip-rn101+t5-base` (random
   init, synthetic batches of the trial's shapes, as in step_time.py) under bf16 autocast; FLOPs
   of one step (forward and backward) are counted by torch.utils.flop_counter, and achieved
   TFLOP/s is that count over the median step time, also as a share of the peak;
3. a 50-step trial of each method family on `clip-rn101+t5-base` (random init) on the generated
   VQA data, scored: training samples/s and peak memory;
4. `search.launch --workers 2 --trials 3`, one worker SIGKILLed mid-trial: the trial is failed
   and its retry completes.

`--dry-run-cpu` runs parts 3 and 4 on the CPU with the embedded tiny backbone: a check of the
script itself where no GPU is lent.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import torch

from common import Section, benchmark_arguments, median, print_section, table, timed

BACKBONES = ("clip-rn101+bart-base", "clip-rn101+t5-base")
PRESETS = ("full-ft", "single-adapter", "single-lora", "single-prompt")
COMMAND = "python benchmarks/gpu.py"


TITLE = "GPU: samples/s and achieved TFLOP/s on base-size backbones"
SKIPPED_PARTS = (
    "the card's bf16 matmul peak",
    "step times and achieved TFLOP/s of each run preset on clip-rn101+bart-base and clip-rn101+t5-base",
    "a 50-step trial of each method family on clip-rn101+t5-base (random init)",
    "a 3-trial search with 2 workers, one of them SIGKILLed mid-trial",
)


def run(data_dir: Path, quick: bool = False, dry_run_cpu: bool = False) -> Section:
    from gpu_check import family_trials, search_with_a_kill

    if dry_run_cpu:
        body = "Dry run on the CPU with the embedded tiny backbone (a check of the script, not a measurement).\n\n"
        body += family_trials(data_dir, "tiny-clip+tiny-t5", torch.device("cpu"), steps=10, batch_size=8, random_init=False)
        body += "\n\n" + search_with_a_kill(data_dir, "tiny-clip+tiny-t5", "cpu", steps=30, random_init=False)
        return Section(title=TITLE, command=COMMAND + " --dry-run-cpu", body=body)
    if not torch.cuda.is_available():
        skipped = "\n".join(f"- {part}" for part in SKIPPED_PARTS)
        return Section(
            title=TITLE,
            command=COMMAND,
            body=f"Skipped: no CUDA device on this machine. The same command measures this section where one is. Skipped:\n\n{skipped}",
            skipped="no CUDA device",
        )
    from gpu_check import matmul_peak_tflops

    device = torch.device("cuda")
    peak = matmul_peak_tflops(device)
    steps_table, figures = _step_times(data_dir, device, quick, peak)
    figures["bf16_matmul_peak_tflops"] = peak
    body = f"{torch.cuda.get_device_name(0)}: measured bf16 matmul peak {peak:.0f} TFLOP/s (8192 x 8192).\n\n{steps_table}"
    body += "\n\n" + family_trials(data_dir, "clip-rn101+t5-base", device, steps=50, batch_size=32, random_init=True)
    body += "\n\n" + search_with_a_kill(data_dir, "clip-rn101+t5-base", "cuda", steps=50, random_init=True)
    return Section(title=TITLE, command=COMMAND, body=body, figures=figures)


def _step_times(data_dir: Path, device: torch.device, quick: bool, peak: float) -> tuple[str, dict[str, float]]:
    from torch.utils.flop_counter import FlopCounterMode

    from step_time import make_arm, run_steps

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
            achieved = flops / seconds / 1e12
            figures[f"{backbone}/{preset}/tflops"] = achieved
            rows.append([
                backbone, preset, f"{arm.trainable_pct:.2f}", f"{1000 * seconds:.1f}", f"{batch_size / seconds:.0f}",
                f"{flops / 1e12:.2f}", f"{achieved:.1f}", f"{100 * achieved / peak:.0f}%",
            ])  # fmt: skip
            del arm
            torch.cuda.empty_cache()
    header = ["backbone", "run preset", "trainable %", "ms / step", "samples / s", "TFLOP / step", "achieved TFLOP/s", "of peak"]
    body = table(header, rows)
    body += f"\n\nbf16 autocast, synthetic batches of {batch_size}, median of {rounds} runs of {steps} steps."
    return body, figures


def main() -> None:
    args = benchmark_arguments(
        __doc__, ("--dry-run-cpu", {"action": "store_true", "help": "run the trial and search parts on the CPU, tiny backbone"})
    )
    print_section(run(args.data_dir, args.quick, args.dry_run_cpu))


if __name__ == "__main__":
    main()
