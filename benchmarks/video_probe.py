"""Do a video's visual tokens say which way an object moves? A linear probe per frame pooling.

    python benchmarks/video_probe.py [--data-dir data]

For every generated clip with exactly one moving object, takes the tokens of its last frame
minus those of its first, pooled to 1x1 (one mean-pooled token per frame), 2x2, or the whole
4x4 grid (the default video tokens), and fits an L2-regularised logistic regression on the
training clips to predict the direction (left, right, up, down; chance 25%). Prints the
accuracy on the validation clips for each pooling and regularisation strength. No language
model is involved: this measures what the visual tokens carry, not what a trial learns.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from common import data_folder

import torch

from models.backbones.presets import DEFAULT_BACKBONE
from models.features import cached_features, encoder_identity
from models.visual_encoder import build_visual_encoder
from training.environment import benchmark_dir, prepare_environment
from training.visual_inputs import frame_key, frames_to_extract, pool_frame_grid

DIRECTIONS = ("left", "right", "up", "down")


def probe(train_x: torch.Tensor, train_y: torch.Tensor, val_x: torch.Tensor, val_y: torch.Tensor, l2: float) -> float:
    """Validation accuracy of a logistic regression fitted with L-BFGS on standardised features."""
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    train_x, val_x = (train_x - mean) / std, (val_x - mean) / std
    torch.manual_seed(0)
    linear = torch.nn.Linear(train_x.shape[1], len(DIRECTIONS))
    optimizer = torch.optim.LBFGS(linear.parameters(), max_iter=200)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(linear(train_x), train_y) + l2 * linear.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        return (linear(val_x).argmax(1) == val_y).float().mean().item()


def _last_minus_first(grid: torch.Tensor, side: int) -> torch.Tensor:
    pooled = pool_frame_grid(grid, side)  # (F, side * side, D)
    return (pooled[-1] - pooled[0]).flatten()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--data-dir", type=data_folder, default=Path("data"))
    args = parser.parse_args()
    data_dir = args.data_dir.resolve()
    env = prepare_environment(data_dir, DEFAULT_BACKBONE, ("tvqa",))
    truth = json.loads((benchmark_dir(data_dir, 0) / "scenes.json").read_text())["videos"]
    videos = env.tasks["tvqa"].videos
    # The frame store the trials read (prepare_environment has extracted it).
    location = env.location
    frames = cached_features(
        data_dir / "features", frames_to_extract(videos), encoder_identity(location), lambda: build_visual_encoder(location)
    )
    clips: dict[str, list[tuple[torch.Tensor, int]]] = {"train": [], "val": []}
    for vid, source in sorted(videos.items()):
        movers = [m for m in truth[vid]["motions"] if m != "still"]
        if len(movers) == 1:
            grid = frames.lookup([frame_key(vid, i) for i in range(len(source.frames))]).float()  # (F, G*G, D)
            clips["train" if "_train_" in vid else "val"].append((grid, DIRECTIONS.index(movers[0])))
    labels = {split: torch.tensor([d for _, d in rows]) for split, rows in clips.items()}
    print(f"{len(clips['train'])} training and {len(clips['val'])} validation clips with one mover; chance 0.25")
    print("| tokens per frame | " + " | ".join(f"L2 {l2:g}" for l2 in (1e-3, 1e-2, 1e-1, 1.0)) + " |")
    print("|---|" + "---:|" * 4)
    grid_side = int(clips["train"][0][0].shape[1] ** 0.5)
    for side in sorted({1, 2, grid_side}):
        # Where things are at the end minus where they were at the start.
        x = {split: torch.stack([_last_minus_first(g, side) for g, _ in rows]) for split, rows in clips.items()}
        accuracies = [probe(x["train"], labels["train"], x["val"], labels["val"], l2) for l2 in (1e-3, 1e-2, 1e-1, 1.0)]
        print(f"| {side * side} ({side}x{side}) | " + " | ".join(f"{a:.2f}" for a in accuracies) + " |")


if __name__ == "__main__":
    main()
