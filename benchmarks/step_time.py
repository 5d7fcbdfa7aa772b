"""Training-step time and peak memory of every PETL method against full fine-tuning.

    python benchmarks/step_time.py [--quick] [--presets NAME,...] [--base-only] [--data-dir data]

Each of the paper's runs (models.petl.presets.RUN_PRESETS, the four image tasks' modules, the
VQA task active) trains on one synthetic batch of the trial's shapes: text tokens, the CLIP grid
of visual features, short targets. Two backbones: the embedded `tiny-clip+tiny-t5` (its trained
weights) and the paper's `clip-rn101+bart-base` built from its config with random weights (the
step costs the same whatever the weights are). Arms are interleaved round by round and the
median is reported, so background load hits every method alike.

Peak memory: on CUDA the allocator's peak of one step. On a CPU, torch keeps no allocator
statistics and the process's resident set never shrinks back, so the step's memory is accounted
instead: weights + gradients of the trainable weights + AdamW's two states + the activations
autograd saves for backward (counted by `saved_tensors_hooks`, each storage once, weights
excluded). Weights dominate for PETL methods and optimiser state for full fine-tuning.
"""

from __future__ import annotations

import copy
import gc
from dataclasses import dataclass
from pathlib import Path

import torch

from common import Section, benchmark_arguments, interleaved, median, print_section, run_preset_names, table, timed

EMBEDDED = "tiny-clip+tiny-t5"
BASE = "clip-rn101+bart-base"
IMAGE_TASKS = ("vqa", "gqa", "nlvr2", "caption")
QUICK_PRESETS = ("full-ft", "single-adapter", "single-lora")
# On a CPU a base-size step takes seconds: one preset per distinct forward (sharing modes and
# V->L only cost what their single / + LayerNorm siblings do at one active task).
BASE_CPU_PRESETS = (
    "full-ft", "single-adapter", "hyperformer", "single-compacter", "single-lora", "single-dora", "single-prompt", "vl-ln", "vl-pet-large",
    "single-lst",
)  # fmt: skip
SOURCE_TOKENS, TARGET_TOKENS = 24, 6  # the trial defaults: prefix + 20 question tokens; short answers


@dataclass
class Arm:
    """One method on one backbone, built once and stepped on the same batch."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    batch: dict[str, torch.Tensor]
    trainable_pct: float

    def step(self) -> None:
        losses = self.model(**self.batch)
        self.optimizer.zero_grad(set_to_none=True)
        losses.mean().backward()
        self.optimizer.step()


_PRISTINE: dict[str, tuple] = {}  # backbone -> (randomly initialised LM, visual-order ids)


def build_model(preset_name: str, backbone: str, data_dir: Path):
    """The preset's model on `backbone`: the embedded one from disk, a base-size one from its
    config with random weights (no tokenizer or download needed: the batches are synthetic)."""
    from models.backbones.presets import get_preset
    from models.build import assemble_vl_model, build_vl_model
    from models.lm_loading import language_model_from_config
    from models.location import BackboneLocation
    from models.petl.presets import RUN_PRESETS
    from models.visual_encoder import visual_feature_dim

    config = RUN_PRESETS[preset_name].trial_config(backbone, IMAGE_TASKS)
    preset = get_preset(backbone)
    if preset.embedded:
        location = BackboneLocation.resolve(backbone, data_dir)
        model, _ = build_vl_model(config, location)
        return model, visual_feature_dim(location), preset.grid**2
    if backbone not in _PRISTINE:
        torch.manual_seed(0)
        _PRISTINE[backbone] = language_model_from_config(preset.lm_config)
    # Random initialisation of a base-size LM takes a minute on a CPU; a copy takes a second.
    lm, order_ids = copy.deepcopy(_PRISTINE[backbone][0]), _PRISTINE[backbone][1]
    location = BackboneLocation.resolve(backbone, data_dir, random_init=True)
    feat_dim = visual_feature_dim(location)
    return assemble_vl_model(config, lm, feat_dim, order_ids), feat_dim, preset.grid**2


def synthetic_batch(model, batch_size: int, feat_dim: int, n_visual: int, device: torch.device) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    vocab = model.lm.config.vocab_size
    return {
        "input_ids": torch.randint(3, vocab, (batch_size, SOURCE_TOKENS), generator=generator).to(device),
        "attention_mask": torch.ones(batch_size, SOURCE_TOKENS, dtype=torch.long, device=device),
        "feats": torch.randn(batch_size, n_visual, feat_dim, generator=generator).to(device),
        "labels": torch.randint(3, vocab, (batch_size, TARGET_TOKENS), generator=generator).to(device),
    }


def make_arm(preset_name: str, backbone: str, data_dir: Path, batch_size: int, device: torch.device) -> Arm:
    from models.params import count_parameters

    model, feat_dim, n_visual = build_model(preset_name, backbone, data_dir)
    model.to(device).train()
    model.task_context.active = "vqa"
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-5)
    arm = Arm(model, optimizer, synthetic_batch(model, batch_size, feat_dim, n_visual, device), count_parameters(model).trainable_pct)
    arm.step()  # warm-up: AdamW allocates its state, kernels are chosen
    return arm


def accounted_memory_mb(arm: Arm) -> float:
    """Weights + trainable gradients + AdamW state + activations saved for backward, in MiB."""
    params = list(arm.model.parameters())
    weight_ptrs = {p.untyped_storage().data_ptr() for p in params}
    saved: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in weight_ptrs:
            saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        losses = arm.model(**arm.batch)
    losses.mean().backward()
    arm.optimizer.zero_grad(set_to_none=True)
    weights = sum(p.numel() * p.element_size() for p in params)
    trainable = sum(p.numel() * p.element_size() for p in params if p.requires_grad)
    return (weights + 3 * trainable + sum(saved.values())) / 2**20


def measured_memory_mb(arm: Arm, device: torch.device) -> float:
    """On CUDA: the allocator's peak over one step, beyond what was allocated before it."""
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    arm.step()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) / 2**20


def run_steps(arm: Arm, steps: int, device: torch.device) -> None:
    for _ in range(steps):
        arm.step()
    if device.type == "cuda":  # kernels run asynchronously: wait for the last one
        torch.cuda.synchronize(device)


def measure_backbone(backbone: str, presets, data_dir: Path, batch_size: int, steps: int, rounds: int, device) -> list[dict]:
    """Median step time over interleaved rounds, and peak memory, of every preset on `backbone`.

    The embedded models are small and stay built across rounds; base-size ones are rebuilt in
    each round (eleven copies of BART-base would not fit the reference machine's memory), and
    only their steps are timed.
    """
    from models.backbones.presets import get_preset

    keep = get_preset(backbone).embedded
    built: dict[str, Arm] = {}
    info: dict[str, dict] = {name: {} for name in presets}

    def arm_of(name: str) -> Arm:
        if name in built:
            return built[name]
        arm = make_arm(name, backbone, data_dir, batch_size, device)
        if not info[name]:
            info[name]["trainable_pct"] = arm.trainable_pct
            info[name]["memory_mb"] = measured_memory_mb(arm, device) if device.type == "cuda" else accounted_memory_mb(arm)
        if keep:
            built[name] = arm
        return arm

    def timer(name: str):
        def one_round() -> float:
            arm = arm_of(name)
            seconds = timed(lambda: run_steps(arm, steps, device)) / steps
            if not keep:
                del arm
                gc.collect()
            return seconds

        return one_round

    times = interleaved({name: timer(name) for name in presets}, rounds)
    return [{"preset": name, "step_s": median(times[name]), "runs": times[name], **info[name]} for name in presets]


def run(data_dir: Path, quick: bool = False, only: tuple[str, ...] = (), base_only: bool = False) -> Section:
    """The section: each preset's training step against full fine-tuning's, on both backbones.

    Args:
        only: measure these presets (and full fine-tuning, the reference) instead of every one.
        base_only: only the base-size backbone (the embedded one is not needed, nor built).
    """
    from models.petl.presets import RUN_PRESETS
    from training.environment import default_device

    device = default_device()
    presets = QUICK_PRESETS if quick else tuple(RUN_PRESETS)
    chosen = ("full-ft", *[p for p in only if p != "full-ft"]) if only else ()
    # (backbone, presets, batch, steps per round, rounds)
    plans = [] if base_only else [(EMBEDDED, chosen or presets, 32, 1 if quick else 2, 2 if quick else 3)]
    if not quick:
        cpu = device.type == "cpu"
        base = chosen or (BASE_CPU_PRESETS if cpu else presets)
        plans.append((BASE, base, 4 if cpu else 32, 1 if cpu else 10, 2 if cpu else 3))
    body, figures = [], {}
    memory_kind = "allocator peak (CUDA)" if device.type == "cuda" else "accounted (see below)"
    for backbone, presets, batch_size, steps, rounds in plans:
        rows = measure_backbone(backbone, presets, data_dir, batch_size, steps, rounds, device)
        full = next(r for r in rows if r["preset"] == "full-ft")
        lines = []
        for r in rows:
            ratio_t, ratio_m = r["step_s"] / full["step_s"], r["memory_mb"] / full["memory_mb"]
            figures[f"{backbone}/{r['preset']}/step_ratio"] = ratio_t
            lines.append([
                r["preset"], f"{r['trainable_pct']:.2f}", f"{1000 * r['step_s']:.1f}", f"{ratio_t:.2f}x",
                f"{r['memory_mb']:.0f}", f"{ratio_m:.2f}x",
            ])  # fmt: skip
        weights = "random init" if backbone == BASE else "project-trained weights"
        body.append(
            f"**{backbone}** ({weights}; batch {batch_size}, {SOURCE_TOKENS} text + visual tokens, "
            f"{TARGET_TOKENS} target tokens; median of {rounds} interleaved rounds of {steps} steps on {device.type})\n\n"
            + table(["run preset", "trainable %", "ms / step", "vs full FT", f"peak MiB, {memory_kind}", "vs full FT"], lines)
        )
    body.append(
        "Peak memory on a CPU is accounted, not sampled: weights + gradients of the trainable weights + "
        "AdamW's two states + the activations autograd saves for backward (`saved_tensors_hooks`, each storage "
        "once). The process's resident set cannot be read per arm: freed memory is not returned to the system. "
        "On CUDA the allocator's own peak is reported."
    )
    return Section(
        title="Training step: each PETL method against full fine-tuning",
        command="python benchmarks/step_time.py"
        + (" --quick" if quick else "")
        + (f" --presets {','.join(chosen)}" if chosen else "")
        + (" --base-only" if base_only else ""),
        body="\n\n".join(body),
        figures=figures,
    )


def main() -> None:
    presets_option = (
        "--presets",
        {"type": run_preset_names, "default": (), "help": "only these run presets (and full-ft), comma-separated"},
    )
    base_option = ("--base-only", {"action": "store_true", "help": f"only {BASE} (the embedded backbone is not built)"})
    args = benchmark_arguments(__doc__, presets_option, base_option)
    if not args.base_only:
        from training.environment import prepare_environment

        prepare_environment(args.data_dir, EMBEDDED, ("vqa",))
    print_section(run(args.data_dir, args.quick, args.presets, args.base_only))


if __name__ == "__main__":
    main()
