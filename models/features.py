"""Visual-feature cache: with a frozen CLIP, each image is encoded once (PAPER.md §1).

A store is one safetensors file per (images, encoder, resolution, pooling), named by a
content hash of all four, so a changed image or encoder gives a new key and an old store is
never read by mistake. A file that fails to load, or holds other images, is treated as missing
and rebuilt.

Extraction is resumable. Images are encoded in shards, each written atomically as
`.partial-<key>/shard-<index>.safetensors` next to the store; a rerun after an interruption
keeps every shard that loads with the expected ids, extracts the others, then streams the
shards into the store (one shard in memory at a time) and removes the partial folder.
`python -m models.prepare` fills the same stores ahead of a study.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Callable, Mapping, Sequence

import numpy as np
import torch
from PIL import Image
from safetensors import SafetensorError, safe_open
from safetensors.torch import save
from tqdm.auto import tqdm

if TYPE_CHECKING:
    from models.build import BackboneLocation

log = logging.getLogger(__name__)

DEFAULT_SHARD_SIZE = 512


@dataclass(frozen=True)
class FeatureTable:
    """Features of a set of images: `features[index[img_id]]` is (tokens, dim)."""

    index: Mapping[str, int]
    features: torch.Tensor

    def lookup(self, img_ids: list[str]) -> torch.Tensor:
        rows = torch.tensor([self.index[i] for i in img_ids], dtype=torch.long)
        return self.features.index_select(0, rows)


def encoder_identity(location: BackboneLocation) -> dict[str, object]:
    """The encoder's part of a store's key: what the features depend on besides the images.

    The key names and values are the ones trials have always hashed, so existing stores stay valid.
    """
    preset = location.preset
    return {
        "clip_model": location.clip_model,
        "clip_weights": _weights_identity(location),
        "grid": preset.grid,
        "image_size": preset.image_size,
    }


def _weights_identity(location: BackboneLocation) -> str | None:
    if location.random_init:
        from models.build import RANDOM_INIT_SEED

        return f"random-init-seed{RANDOM_INIT_SEED}"
    return file_digest(location.clip_checkpoint) or location.clip_checkpoint


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
    shard_size: int = DEFAULT_SHARD_SIZE,
) -> FeatureTable:
    """Load the store for these images and encoder, extracting it first if missing or corrupt.

    Args:
        cache_dir: folder of the stores (`<data>/features`).
        image_paths: img_id -> image file.
        encoder_identity: what else the features depend on (`encoder_identity(location)`).
        make_encoder: builds (encoder, preprocess); called only when something must be extracted.
        batch_size: images per encoder call.
        shard_size: images per resumable shard.

    Returns:
        The features, memory-mapped from the store.

    Raises:
        ValueError: no images, or `batch_size` or `shard_size` below 1.
    """
    return _ensure(cache_dir, image_paths, encoder_identity, make_encoder, batch_size, shard_size)[1]


def ensure_store(
    cache_dir: Path,
    image_paths: Mapping[str, Path],
    encoder_identity: Mapping[str, object],
    make_encoder: Callable[[], tuple[torch.nn.Module, Callable]],
    batch_size: int = 64,
    shard_size: int = DEFAULT_SHARD_SIZE,
) -> Path:
    """`cached_features`, returning the store's path: the file a trial on these images will read.

    Raises:
        ValueError: as `cached_features`.
    """
    return _ensure(cache_dir, image_paths, encoder_identity, make_encoder, batch_size, shard_size)[0]


def _ensure(cache_dir, image_paths, identity, make_encoder, batch_size, shard_size) -> tuple[Path, FeatureTable]:
    if batch_size < 1 or shard_size < 1:
        raise ValueError(f"`batch_size >= 1` and `shard_size >= 1` must hold, but got ({batch_size=}, {shard_size=}).")
    if not image_paths:
        raise ValueError("no images to extract features from; pass at least one image path")
    key = content_key(image_paths, identity)
    store = Path(cache_dir) / f"features-{key}.safetensors"
    table = _load(store)
    # A store of other images (copied over, or written by a bug) is as useless as a corrupt one.
    if table is not None and set(table.index) == set(image_paths):
        return store, table
    partial = store.parent / f".partial-{key}"
    ids = sorted(image_paths)
    shards = [ids[start : start + shard_size] for start in range(0, len(ids), shard_size)]
    files = [partial / f"shard-{n:05d}.safetensors" for n in range(len(shards))]
    todo = [n for n, shard_ids in enumerate(shards) if not _holds(files[n], shard_ids)]
    if todo:
        resumed = len(ids) - sum(len(shards[n]) for n in todo)
        if resumed:
            log.info("resuming feature extraction: %d of %d images already in %s", resumed, len(ids), partial)
        encoder, preprocess = make_encoder()
        with tqdm(total=len(ids), initial=resumed, desc="CLIP features", unit="image") as progress:
            for n in todo:
                features = _encode(encoder, preprocess, [image_paths[i] for i in shards[n]], batch_size, progress)
                _write_shard(files[n], features, shards[n])
    if not _merge(store, files, ids):
        # Another process merged these shards and removed the folder first: its store is ours.
        table = _load(store)
        if table is None:
            raise RuntimeError(f"the shards in {partial} vanished before they were merged; run again to re-extract")
        return store, table
    shutil.rmtree(partial, ignore_errors=True)
    table = _load(store)
    if table is None:
        raise RuntimeError(f"the merged store {store} does not load; delete it and rerun")
    return store, table


@torch.no_grad()
def extract(encoder: torch.nn.Module, preprocess: Callable, image_paths: Mapping[str, Path], batch_size: int) -> FeatureTable:
    """Run the encoder over every image, in batches, with a progress bar (no cache, no shards)."""
    img_ids = sorted(image_paths)
    with tqdm(total=len(img_ids), desc="CLIP features", unit="image") as progress:
        features = _encode(encoder, preprocess, [image_paths[i] for i in img_ids], batch_size, progress)
    return FeatureTable(index={img_id: n for n, img_id in enumerate(img_ids)}, features=features)


def frame_features(encoder: torch.nn.Module, preprocess: Callable, frame_paths: Sequence[Path], batch_size: int = 64) -> np.ndarray:
    """One video's per-frame features: each frame's grid tokens mean-pooled, (frames, dim) float32.

    One token per frame keeps a 64-frame video at 64 visual tokens (PAPER.md §4), and the
    token has the width of an image's grid token, so one V->L projection serves image and
    video tasks on the same encoder; trials pool frames from the store the same way.

    Raises:
        ValueError: no frames.
    """
    if not frame_paths:
        raise ValueError("a video needs at least one frame; got an empty list of frame paths")
    return _encode(encoder, preprocess, list(frame_paths), batch_size).mean(dim=1).numpy()


def write_atomically(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    """Write a file through `write(handle)` into a temporary file, then rename it into place.

    A reader never sees a half-written file, and an interruption leaves the old file (or none).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Not tempfile.mkstemp: its files are 0600, and stores and .npz files are shared data that
    # should get the umask's permissions; "x" still refuses to reuse an existing name.
    tmp = path.parent / f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
    try:
        with open(tmp, "xb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())  # on disk before the rename: a power loss leaves old or new
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@torch.no_grad()
def _encode(encoder: torch.nn.Module, preprocess: Callable, paths: Sequence[Path], batch_size: int, progress=None) -> torch.Tensor:
    chunks = []
    for start in range(0, len(paths), batch_size):
        batch = paths[start : start + batch_size]
        images = torch.stack([preprocess(_rgb(path)) for path in batch])  # (B, 3, H, W)
        chunks.append(encoder(images).float())  # (B, tokens, dim)
        if progress is not None:
            progress.update(len(batch))
    return torch.cat(chunks)


def _rgb(path: Path) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB")


def _write_shard(path: Path, features: torch.Tensor, ids: list[str]) -> None:
    # The store's layout, so that one reader serves both.
    id_bytes = torch.frombuffer(bytearray(json.dumps(ids).encode()), dtype=torch.uint8)
    data = save({"features": features.contiguous(), "img_ids": id_bytes})
    write_atomically(path, lambda handle: handle.write(data))


def _read(path: Path) -> tuple[list[str], torch.Tensor] | None:
    """(ids, features) of a store or shard; None when it is missing, corrupt or foreign."""
    if not path.is_file():
        return None
    try:
        # safe_open maps the file copy-on-write: `get_tensor` returns a tensor backed by the
        # mapping (safetensors' default "mmap" backend), so opening a store of any size reads
        # only its header; rows are paged in when looked up, and shared through the page cache.
        with safe_open(str(path), framework="pt") as handle:
            ids = json.loads(handle.get_tensor("img_ids").numpy().tobytes().decode())
            features = handle.get_tensor("features")
    except (SafetensorError, ValueError, OSError):
        return None  # corrupt or foreign file: rebuild rather than fail the study
    if not isinstance(ids, list) or features.ndim != 3 or features.shape[0] != len(ids) or features.dtype != torch.float32:
        return None
    return ids, features


def _load(store: Path) -> FeatureTable | None:
    found = _read(store)
    if found is None:
        return None
    ids, features = found
    return FeatureTable(index={img_id: n for n, img_id in enumerate(ids)}, features=features)


def _holds(shard: Path, ids: list[str]) -> bool:
    found = _read(shard)
    return found is not None and found[0] == ids


def _merge(store: Path, shard_files: list[Path], ids: list[str]) -> bool:
    """Stream the shards into `store` in the safetensors layout; False when a shard is gone.

    safetensors' own writer needs every tensor in memory (and copies it once more); a store
    of 123k COCO images of 36 x 2048 floats is 36 GB, so the file is written here directly:
    an 8-byte little-endian header length, the JSON header padded to 8 bytes, the raw data.
    """
    parts = [_read(path) for path in shard_files]  # memory-mapped: nothing is read yet
    if any(part is None for part in parts):
        return False
    if [i for part_ids, _ in parts for i in part_ids] != ids:
        raise RuntimeError(f"the shards next to {store} do not hold the expected images in order; delete their folder and rerun")
    row_shape = list(parts[0][1].shape[1:])
    if any(list(features.shape[1:]) != row_shape for _, features in parts):
        raise RuntimeError(f"the shards next to {store} disagree on the feature shape; delete their folder and rerun")
    id_bytes = json.dumps(ids).encode()
    n_feature_bytes = len(ids) * int(np.prod(row_shape)) * 4
    header = {
        "features": {"dtype": "F32", "shape": [len(ids), *row_shape], "data_offsets": [0, n_feature_bytes]},
        "img_ids": {"dtype": "U8", "shape": [len(id_bytes)], "data_offsets": [n_feature_bytes, n_feature_bytes + len(id_bytes)]},
    }
    header_bytes = json.dumps(header, separators=(",", ":")).encode()
    header_bytes += b" " * (-len(header_bytes) % 8)  # keeps the float data 8-byte aligned

    def write(handle: IO[bytes]) -> None:
        handle.write(struct.pack("<Q", len(header_bytes)))
        handle.write(header_bytes)
        for _, features in parts:
            handle.write(memoryview(np.ascontiguousarray(features.numpy(), dtype="<f4")).cast("B"))
        handle.write(id_bytes)

    write_atomically(store, write)
    return True
