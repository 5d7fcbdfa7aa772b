"""Trial training steps on cached CLIP features vs running the frozen encoder at every step.

    python benchmarks/feature_cache.py [--steps 30] [--data-dir data]

Both arms train the same adapter model on the same VQA batches; the uncached arm encodes the
batch's images (already decoded and preprocessed in memory, so disk I/O is not counted) with
the frozen CLIP grid encoder before every step, as a trial without the cache would.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import torch
from PIL import Image

from models.build import build_visual_encoder, build_vl_model
from models.config import TrialConfig
from models.petl import get_method
from training.batches import Collator
from training.environment import prepare_environment


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    args = parser.parse_args()
    env = prepare_environment(args.data_dir.resolve(), "tiny-clip+tiny-t5", ("vqa",))
    task = env.tasks["vqa"]
    config = TrialConfig("tiny-clip+tiny-t5", ("vqa",), "adapter", freeze=get_method("adapter").freeze)
    encoder, preprocess = build_visual_encoder(env.location)
    rng = random.Random(0)
    batches = [[task.train[rng.randrange(len(task.train))] for _ in range(args.batch_size)] for _ in range(args.steps)]
    pixels = {i: preprocess(Image.open(task.image_paths[i]).convert("RGB")) for b in batches for e in b for i in e.img_ids}
    timings = {}
    for arm in ("cached", "encoder every step"):
        model, tokenizer = build_vl_model(config, env.location)
        model.train()
        model.task_context.active = "vqa"
        collator = Collator(tokenizer, env.features, 24)
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
        start = time.perf_counter()
        for examples in batches:
            batch = collator.training(examples, rng, 6)
            if arm != "cached":
                with torch.no_grad():
                    batch.feats = encoder(torch.stack([pixels[e.img_ids[0]] for e in examples]))
            loss = model(batch.input_ids, batch.attention_mask, batch.feats, batch.labels).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        timings[arm] = (time.perf_counter() - start) / args.steps
    for arm, seconds in timings.items():
        print(f"{arm:>20}: {1000 * seconds:7.1f} ms/step")
    print(f"speed-up of the cache: {timings['encoder every step'] / timings['cached']:.2f}x "
          f"({args.steps} steps, batch {args.batch_size}, {torch.get_num_threads()} threads)")


if __name__ == "__main__":
    main()
