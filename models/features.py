"""Visual-feature cache: with a frozen CLIP, each image is encoded once (PAPER.md §1).

A store is one safetensors file per (images, encoder, resolution, pooling), named by a
content hash of all four, so a changed image or encoder gives a new key and an old store is
never read by mistake. A file that fails to load is treated as missing and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import torch
from PIL import Image
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm


@dataclass(frozen=True)
class FeatureTable:
    """Features of a set of images: `features[index[img_id]]` is (tokens, dim)."""

    index: Mapping[str, int]
    features: torch.Tensor

    def lookup(self, img_ids: list[str]) -> torch.Tensor:
        rows = torch.tensor([self.index[i] for i in img_ids], dtype=torch.long)
        return self.features.index_select(0, rows)


def content_key(image_paths: Mapping[str, Path], encoder_identity: Mapping[str, object]) -> str:
    """A hash of every image's bytes and of the encoder's identity (weights file hash, grid, size)."""
    digest = hashlib.sha256(json.dumps(encoder_identity, sort_keys=True).encode())
    for img_id in sorted(image_paths):
        digest.update(img_id.encode())
        digest.update(Path(image_paths[img_id]).read_bytes())
    return digest.hexdigest()[:24]


def file_digest(path: str | Path | None) -> str | None:
    if path is None or not Path(path).is_file():
        return None
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def cached_features(
    cache_dir: Path,
    image_paths: Mapping[str, Path],
    encoder_identity: Mapping[str, object],
    make_encoder: Callable[[], tuple[torch.nn.Module, Callable]],
    batch_size: int = 64,
) -> FeatureTable:
    """Load the store for these images and encoder, extracting it first if missing or corrupt."""
    key = content_key(image_paths, encoder_identity)
    store = cache_dir / f"features-{key}.safetensors"
    table = _load(store)
    if table is not None:
        return table
    encoder, preprocess = make_encoder()
    table = extract(encoder, preprocess, image_paths, batch_size)
    _save_atomic(store, table)
    return table


@torch.no_grad()
def extract(encoder: torch.nn.Module, preprocess: Callable, image_paths: Mapping[str, Path], batch_size: int) -> FeatureTable:
    """Run the encoder over every image, in batches, with a progress bar."""
    img_ids = sorted(image_paths)
    chunks = []
    for start in tqdm(range(0, len(img_ids), batch_size), desc="CLIP features", unit="batch"):
        batch_ids = img_ids[start : start + batch_size]
        images = torch.stack([preprocess(Image.open(image_paths[i]).convert("RGB")) for i in batch_ids])
        chunks.append(encoder(images).float())
    return FeatureTable(index={img_id: n for n, img_id in enumerate(img_ids)}, features=torch.cat(chunks))


def _load(store: Path) -> FeatureTable | None:
    if not store.exists():
        return None
    try:
        tensors = load_file(str(store))
        img_ids = json.loads(tensors.pop("img_ids").numpy().tobytes().decode())
    except (SafetensorError, KeyError, ValueError, OSError):
        return None  # corrupt or foreign file: rebuild rather than fail the study
    features = tensors["features"]
    if features.shape[0] != len(img_ids):
        return None
    return FeatureTable(index={img_id: n for n, img_id in enumerate(img_ids)}, features=features)


def _save_atomic(store: Path, table: FeatureTable) -> None:
    store.parent.mkdir(parents=True, exist_ok=True)
    ids = sorted(table.index, key=table.index.get)
    id_bytes = torch.frombuffer(bytearray(json.dumps(ids).encode()), dtype=torch.uint8)
    fd, tmp = tempfile.mkstemp(prefix=".features-", dir=store.parent)
    os.close(fd)
    try:
        save_file({"features": table.features.contiguous(), "img_ids": id_bytes}, tmp)
        os.replace(tmp, store)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
