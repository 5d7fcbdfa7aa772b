"""Evidence that the embedded backbones are pretrained: retrieval and perplexity, before/after.

    python benchmarks/pretraining.py [--data-dir /tmp/vlpetl-pretrain-bench]

Builds the embedded family with the default recipe (the one `make demo` uses) in a fresh data
directory and prints the tiny CLIP's zero-shot image->caption recall@1 on held-out pairs
against chance, and each tiny LM's held-out perplexity before and after pretraining.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import time
from pathlib import Path

from common import data_folder

from models.backbones.presets import PRESETS
from models.embedded import component_names
from training.pretrain.embedded import ensure_embedded_backbone


def main() -> None:
    parser = argparse.ArgumentParser(allow_abbrev=False)
    parser.add_argument("--data-dir", type=data_folder, default=Path("/tmp/vlpetl-pretrain-bench"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    data_dir = args.data_dir.resolve()
    shutil.rmtree(data_dir / "backbones", ignore_errors=True)
    for name in sorted(n for n, p in PRESETS.items() if p.embedded and p.vl_pretrained_from is None):
        start = time.perf_counter()
        folder = ensure_embedded_backbone(data_dir, PRESETS[name])  # the corpus excludes the seed-0 benchmark, as everywhere
        print(f"{name}: built in {time.perf_counter() - start:.0f} s")
        for component in component_names(PRESETS[name]):
            metrics = json.loads((folder.parent / "components" / component / "pretraining_metrics.json").read_text())
            if "recall_at_1_after" in metrics:
                print(
                    f"  {component}: image->caption recall@1 on {metrics['held_out_pairs']} held-out pairs "
                    f"{metrics['recall_at_1_after']:.3f} (before {metrics['recall_at_1_before']:.3f}, chance "
                    f"{metrics['recall_at_1_chance']:.4f}; {metrics['recall_at_1_after'] / metrics['recall_at_1_chance']:.0f}x chance)"
                )
            else:
                print(
                    f"  {component}: held-out perplexity {metrics['perplexity_after']:.2f} "
                    f"(before {metrics['perplexity_before']:.1f}; {metrics['perplexity_before'] / metrics['perplexity_after']:.0f}x lower)"
                )


if __name__ == "__main__":
    main()
