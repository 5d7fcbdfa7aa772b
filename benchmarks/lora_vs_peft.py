"""Our LoRA (models/petl/lora.py) against peft's LoRA on the same T5 and the same inputs.

    python benchmarks/lora_vs_peft.py [--quick] [--data-dir data]

Two copies of the same T5 (the embedded tiny T5 with its trained weights, and t5-base built
from its config with a fixed seed) get LoRA on the query and value projections of every
attention module, rank 8, alpha 32, no dropout (so both compute deterministically): ours
through `models.petl.lora.apply`, peft's through `get_peft_model`. peft's A and B are set to
ours (B made non-zero, so the branch is not a no-op). Only the LoRA weights train, with AdamW,
on the same batch.

Equality: the largest absolute difference of the logits before training, and of every LoRA
weight after the timed steps (both arms take the same number of identical steps). Speed: the
arms are interleaved round by round; the ratio is the median of the per-round ratios. The two
arms of a round run seconds apart under the same load, so pairing them cancels the load that
other jobs put on the shared cores; a ratio of the two arms' medians does not (on t5-base it
moved between 0.91 and 1.07 across runs of the same code).
"""

from __future__ import annotations

from pathlib import Path

import torch

from common import Section, benchmark_arguments, interleaved, median, print_section, table, target, timed

RANK, ALPHA = 8, 32.0
EMBEDDED = "tiny-clip+tiny-t5"


def language_models(backbone: str, data_dir: Path):
    """Two identical T5s: loaded twice from disk (embedded), or built twice from one seed (base)."""
    from models.backbones.language_model import load_language_model
    from models.backbones.presets import T5_BASE
    from models.lm_loading import language_model_from_config
    from models.location import BackboneLocation

    if backbone == EMBEDDED:
        path = BackboneLocation.resolve(EMBEDDED, data_dir).language_model
        return load_language_model(path)[0], load_language_model(path)[0]
    models = []
    for _ in range(2):
        torch.manual_seed(0)
        models.append(language_model_from_config(T5_BASE)[0])
    return models


def build_pair(backbone: str, data_dir: Path):
    """(our LoRA model, peft's), with the same weights everywhere."""
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model

    from models.build import assemble_vl_model
    from models.config import FreezeConfig, TrialConfig

    ours_lm, peft_lm = language_models(backbone, data_dir)
    config = TrialConfig(
        backbone,
        ("vqa",),
        "lora",
        {"rank": RANK, "alpha": ALPHA, "dropout": 0.0, "targets": ("q", "v")},
        freeze=FreezeConfig(train_layernorm=False, train_vl_projection=False, train_bias=False),
    )
    # The VL wrapper only carries the LoRA branches here: the benchmark calls its LM directly.
    ours = assemble_vl_model(config, ours_lm, 8, list(range(8)))
    branches = list(ours.petl.values())
    theirs = get_peft_model(peft_lm, PeftLoraConfig(r=RANK, lora_alpha=ALPHA, lora_dropout=0.0, target_modules=[b.path for b in branches]))
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for branch in branches:
            A, B = branch.pair(0)
            B.weight.copy_(0.02 * torch.randn(B.weight.shape, generator=generator))
            wrapped = theirs.base_model.model.get_submodule(branch.path)
            wrapped.lora_A["default"].weight.copy_(A.weight)
            wrapped.lora_B["default"].weight.copy_(B.weight)
    return ours, theirs, branches


def lora_weights(ours, theirs, branches) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    mine, peft = [], []
    for branch in branches:
        A, B = branch.pair(0)
        wrapped = theirs.base_model.model.get_submodule(branch.path)
        mine += [A.weight, B.weight]
        peft += [wrapped.lora_A["default"].weight, wrapped.lora_B["default"].weight]
    return mine, peft


def compare(backbone: str, data_dir: Path, batch_size: int, steps: int, rounds: int) -> dict[str, float]:
    ours, theirs, branches = build_pair(backbone, data_dir)
    lm = ours.lm  # our LoRA lives in forward hooks on this LM's projections
    vocab = lm.config.vocab_size
    generator = torch.Generator().manual_seed(2)
    batch = {
        "input_ids": torch.randint(3, vocab, (batch_size, 60), generator=generator),  # ~ text + visual tokens
        "attention_mask": torch.ones(batch_size, 60, dtype=torch.long),
        "labels": torch.randint(3, vocab, (batch_size, 6), generator=generator),
    }
    # Eval mode turns T5's dropout off (it draws different masks in each arm, and T5's attention
    # applies it functionally, so it cannot be zeroed per module); gradients flow all the same.
    lm.eval(), theirs.eval()
    with torch.no_grad():
        logits_gap = (lm(**batch).logits - theirs(**batch).logits).abs().max().item()
    mine, peft = lora_weights(ours, theirs, branches)
    trainable_ours = [p for p in lm.parameters() if p.requires_grad] + [p for p in ours.petl.parameters()]
    trainable_ours = list({id(p): p for p in trainable_ours}.values())
    trainable_peft = [p for p in theirs.parameters() if p.requires_grad]
    assert len(trainable_ours) == len(trainable_peft) == len(mine), "both arms must train exactly the LoRA weights"
    arms = {}
    for name, model, params in (("ours", lm, trainable_ours), ("peft", theirs, trainable_peft)):
        optimizer = torch.optim.AdamW(params, lr=1e-3)

        def step(model=model, optimizer=optimizer) -> None:
            loss = model(**batch).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        step()  # warm-up, and one identical update in each arm
        arms[name] = lambda step=step: timed(lambda: [step() for _ in range(steps)]) / steps
    times = interleaved(arms, rounds)
    weight_gap = max((a - b).abs().max().item() for a, b in zip(mine, peft))
    return {
        "ours_s": median(times["ours"]),
        "peft_s": median(times["peft"]),
        "ratio": median([a / b for a, b in zip(times["ours"], times["peft"])]),
        "logits_gap": logits_gap,
        "weight_gap": weight_gap,
        "updates": 1 + steps * rounds,
        "batch": batch_size,
        "modules": len(branches),
    }


def run(data_dir: Path, quick: bool = False) -> Section:
    import peft

    # Many short rounds rather than few long ones: the shared cores' load changes by the second.
    plans = [(EMBEDDED, 32, 1 if quick else 2, 4 if quick else 12)]
    if not quick:
        plans.append(("t5-base (random init)", 4, 1, 12))
    rows, figures, targets = [], {}, []
    for name, batch_size, steps, rounds in plans:
        r = compare(EMBEDDED if name == EMBEDDED else "clip-rn101+t5-base", data_dir, batch_size, steps, rounds)
        key = "tiny" if name == EMBEDDED else "base"
        figures |= {f"{key}/ratio": r["ratio"], f"{key}/logits_gap": r["logits_gap"], f"{key}/weight_gap": r["weight_gap"]}
        rows.append([
            name if name != EMBEDDED else "tiny T5 (embedded, 2+2 layers, d 128)", r["modules"], r["batch"],
            f"{steps} x {rounds}", f"{1000 * r['ours_s']:.1f}", f"{1000 * r['peft_s']:.1f}", f"**{r['ratio']:.3f}**",
            f"{r['logits_gap']:.1e}", f"{r['weight_gap']:.1e} after {r['updates']} steps",
        ])  # fmt: skip
        targets.append(target(f"our LoRA step / peft's ({key})", r["ratio"], at_most=1.05))
        targets.append(target(f"max abs logit gap ours vs peft ({key})", r["logits_gap"], at_most=1e-4))
        targets.append(target(f"max abs LoRA weight gap after training ({key})", r["weight_gap"], at_most=1e-4))
    body = table(
        [
            "T5",
            "LoRA modules",
            "batch",
            "steps x rounds",
            "ours ms/step",
            "peft ms/step",
            "ours / peft, median per round",
            "max abs logit gap",
            "max abs weight gap",
        ],
        rows,
    ) + (
        f"\n\npeft {peft.__version__}; rank {RANK}, alpha {ALPHA:g}, dropout 0, targets q and v of every attention "
        "module; 60 encoder tokens, 6 target tokens; only LoRA weights train (AdamW). Both arms start from the same "
        "weights and take the same steps on the same batch, so after training their weights must still agree."
    )
    return Section(
        title="Our LoRA against peft's LoRA",
        command="python benchmarks/lora_vs_peft.py" + (" --quick" if quick else ""),
        body=body,
        figures=figures,
        targets=targets,
    )


def main() -> None:
    args = benchmark_arguments(__doc__, prepare=EMBEDDED)
    print_section(run(args.data_dir, args.quick))


if __name__ == "__main__":
    main()
