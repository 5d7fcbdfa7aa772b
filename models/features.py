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

Images are decoded and preprocessed in worker processes (a `torch.utils.data.DataLoader`)
while this process runs the encoder, batch by batch in the order of the ids; the batches are
the ones a single process would form, so the features do not depend on the number of workers.
Every image mode becomes 8-bit RGB (`rgb_image`), and a file that does not decode stops the
extraction with an `UnreadableImageError` naming it (training raises it as a DatasetError).
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
from typing import IO, TYPE_CHECKING, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
from PIL import Image
from safetensors import SafetensorError, safe_open
from safetensors.torch import save
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

if TYPE_CHECKING:
    from models.location import BackboneLocation

log = logging.getLogger(__name__)

DEFAULT_SHARD_SIZE = 512

# The default starts one decoding worker per this many images: a worker takes ~70 ms to start
# (measured on 2 cores) and a 640x480 JPEG ~10 ms to decode and preprocess, so the start-up
# stays under a tenth of the work the worker takes over, and a few images (a test, a short
# video's frames) decode in this process.
IMAGES_PER_DECODE_WORKER = 128


@dataclass(frozen=True)
class FeatureTable:
    """Features of a set of images: `features[index[img_id]]` is (tokens, dim)."""

    index: Mapping[str, int]
    features: torch.Tensor

    def lookup(self, img_ids: list[str]) -> torch.Tensor:
        rows = torch.tensor([self.index[i] for i in img_ids], dtype=torch.long)
        return self.features.index_select(0, rows)


def encoder_identity(location: BackboneLocation, device: torch.device | None = None) -> dict[str, object]:
    """The encoder's part of a store's key: what the features depend on besides the images.

    The key names and values are the ones trials have always hashed, so existing stores stay
    valid. Features encoded on a GPU differ from the CPU's in the last bits (other kernels), so
    the device kind is part of the key where it is not the CPU: a study reads the features of
    the device it encodes on, never a mix.
    """
    preset = location.preset
    identity: dict[str, object] = {
        "clip_model": location.clip_model,
        "clip_weights": _weights_identity(location),
        "grid": preset.grid,
        "image_size": preset.image_size,
    }
    if device is not None and device.type != "cpu":
        identity["device"] = device.type
    return identity


def _weights_identity(location: BackboneLocation) -> str | None:
    if location.random_init:
        from models.visual_encoder import RANDOM_INIT_SEED

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
    """SHA-256 of a file, read in blocks (a full fine-tuning's weights need not fit in memory twice)."""
    if path is None or not Path(path).is_file():
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cached_features(
    cache_dir: Path,
    image_paths: Mapping[str, Path],
    encoder_identity: Mapping[str, object],
    make_encoder: Callable[[], tuple[torch.nn.Module, Callable]],
    batch_size: int = 64,
    shard_size: int = DEFAULT_SHARD_SIZE,
    decode_workers: int | None = None,
) -> FeatureTable:
    """Load the store for these images and encoder, extracting it first if missing or corrupt.

    Args:
        cache_dir: folder of the stores (`<data>/features`).
        image_paths: img_id -> image file.
        encoder_identity: what else the features depend on (`encoder_identity(location)`).
        make_encoder: builds (encoder, preprocess); called only when something must be extracted.
        batch_size: images per encoder call.
        shard_size: images per resumable shard.
        decode_workers: processes that decode and preprocess images while this one encodes;
            0 decodes here, None picks `default_decode_workers` (see `decode_processes`).
            The features are the same whatever the number.

    Returns:
        The features, memory-mapped from the store.

    Raises:
        ValueError: no images, `batch_size` or `shard_size` below 1, or `decode_workers` below 0.
        UnreadableImageError: an image file does not decode (a ValueError; the message names the file).
    """
    return _ensure(cache_dir, image_paths, encoder_identity, make_encoder, batch_size, shard_size, decode_workers)[1]


def ensure_store(
    cache_dir: Path,
    image_paths: Mapping[str, Path],
    encoder_identity: Mapping[str, object],
    make_encoder: Callable[[], tuple[torch.nn.Module, Callable]],
    batch_size: int = 64,
    shard_size: int = DEFAULT_SHARD_SIZE,
    decode_workers: int | None = None,
) -> Path:
    """`cached_features`, returning the store's path: the file a trial on these images will read.

    Raises:
        ValueError: as `cached_features` (UnreadableImageError included).
    """
    return _ensure(cache_dir, image_paths, encoder_identity, make_encoder, batch_size, shard_size, decode_workers)[0]


def default_decode_workers() -> int:
    """How many decoding processes `decode_workers=None` asks for: min(4, usable cores - 1).

    The encoder runs in this process while the workers decode the next batches, so one core
    is left to it; at least one worker, so that even on one core decoding overlaps the
    encoder. Four is the cap: four workers decode some 400 COCO-sized JPEGs a second (~10 ms
    each), more than a base-size CLIP encodes on the CPU cores that remain, and each worker
    holds two prefetched batches of pixels. A GPU encoder can take more: pass `decode_workers`.
    """
    try:
        cores = len(os.sched_getaffinity(0))  # the cores this process may use (taskset, containers)
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return min(4, max(1, cores - 1))


def decode_processes(requested: int | None, n_images: int) -> int:
    """The worker processes that decode `n_images` images: `requested`, or a default for None.

    The default is `default_decode_workers()`, but no more workers than `n_images` gives each
    `IMAGES_PER_DECODE_WORKER` images, so a handful of images decodes in this process.

    Raises:
        ValueError: `requested` below 0.
    """
    if requested is not None:
        if requested < 0:
            raise ValueError(f"`decode_workers >= 0` must hold, but got {requested}; pass 0 to decode in this process.")
        return requested
    return min(default_decode_workers(), n_images // IMAGES_PER_DECODE_WORKER)


def _ensure(cache_dir, image_paths, identity, make_encoder, batch_size, shard_size, decode_workers=None) -> tuple[Path, FeatureTable]:
    if batch_size < 1 or shard_size < 1:
        raise ValueError(f"`batch_size >= 1` and `shard_size >= 1` must hold, but got ({batch_size=}, {shard_size=}).")
    decode_processes(decode_workers, 0)  # a bad value fails even when nothing is left to extract
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
        groups = [[image_paths[i] for i in shards[n]] for n in todo]
        workers = decode_processes(decode_workers, len(ids) - resumed)
        encoder, preprocess = make_encoder()
        with tqdm(total=len(ids), initial=resumed, desc="CLIP features", unit="image") as progress:
            # One pool of workers for every shard; each shard is written as soon as it is encoded.
            encoded = _encode_groups(encoder, preprocess, groups, batch_size, workers, progress)
            for n, features in zip(todo, encoded, strict=True):
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
def extract(
    encoder: torch.nn.Module, preprocess: Callable, image_paths: Mapping[str, Path], batch_size: int, decode_workers: int | None = None
) -> FeatureTable:
    """Run the encoder over every image, in batches, with a progress bar (no cache, no shards).

    `decode_workers` is as for `cached_features`.
    """
    img_ids = sorted(image_paths)
    with tqdm(total=len(img_ids), desc="CLIP features", unit="image") as progress:
        features = _encode(encoder, preprocess, [image_paths[i] for i in img_ids], batch_size, progress, decode_workers)
    return FeatureTable(index={img_id: n for n, img_id in enumerate(img_ids)}, features=features)


def frame_features(
    encoder: torch.nn.Module, preprocess: Callable, frame_paths: Sequence[Path], batch_size: int = 64, decode_workers: int | None = None
) -> np.ndarray:
    """One video's per-frame features: each frame's grid tokens mean-pooled, (frames, dim) float32.

    One token per frame keeps a 64-frame video at 64 visual tokens (PAPER.md §4), and the
    token has the width of an image's grid token, so one V->L projection serves image and
    video tasks on the same encoder; trials pool frames from the store the same way.

    `decode_workers` is as for `cached_features`.

    Raises:
        ValueError: no frames (or a frame that does not decode: UnreadableImageError).
    """
    if not frame_paths:
        raise ValueError("a video needs at least one frame; got an empty list of frame paths")
    return _encode(encoder, preprocess, list(frame_paths), batch_size, None, decode_workers).mean(dim=1).numpy()


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


def _encode(
    encoder: torch.nn.Module, preprocess: Callable, paths: Sequence[Path], batch_size: int, progress=None, decode_workers: int | None = None
) -> torch.Tensor:
    workers = decode_processes(decode_workers, len(paths))
    (features,) = _encode_groups(encoder, preprocess, [paths], batch_size, workers, progress)
    return features


@torch.no_grad()
def _encode_groups(
    encoder: torch.nn.Module, preprocess: Callable, groups: Sequence[Sequence[Path]], batch_size: int, workers: int, progress=None
) -> Iterator[torch.Tensor]:
    """Each group's features, (len(group), tokens, dim), in order, as soon as its last batch is encoded.

    The images are decoded by `workers` processes (0: here) that run ahead of the encoder by at
    most two batches each. A batch never spans two groups, and the batches are cut as one
    `_encode` per group cuts them, so a resumed extraction encodes the same batches.

    Raises:
        UnreadableImageError: an image does not decode; raised here, naming the file, not in a worker.
    """
    batches = _batches([len(group) for group in groups], batch_size)
    device = next(encoder.parameters()).device  # where the encoder was put (training.environment)
    loader = DataLoader(
        _Images([path for group in groups for path in group], preprocess),
        batch_sampler=batches,
        num_workers=min(workers, len(batches)),  # a worker gets whole batches: more would idle
        collate_fn=_stack,
        worker_init_fn=_single_threaded,
        pin_memory=device.type == "cuda",  # page-locked batches copy to the GPU asynchronously
    )
    batch_iter = iter(loader)
    try:
        for group in groups:
            chunks, left = [], len(group)
            while left:
                images = next(batch_iter)
                if isinstance(images, _Unreadable):
                    raise images.error()
                chunks.append(encoder(images.to(device, non_blocking=True)).float().cpu())  # (B, tokens, dim)
                left -= len(images)
                if progress is not None:
                    progress.update(len(images))
            yield torch.cat(chunks)
    finally:
        del batch_iter  # stops the workers now, not when a traceback that holds this frame goes


def decoded_batches(paths: Sequence[Path], preprocess: Callable, batch_size: int, workers: int) -> Iterator[torch.Tensor]:
    """The images at `paths` as `preprocess` makes them, (B, 3, H, W), in order, `batch_size` at a time.

    Decoded by `workers` processes (0: here), as feature extraction decodes: every mode becomes
    8-bit RGB (`rgb_image`), and the same pixels come out whatever the number of workers.

    Raises:
        UnreadableImageError: an image does not decode (raised here, naming the file).
    """
    loader = DataLoader(
        _Images(paths, preprocess),
        batch_size=batch_size,
        num_workers=min(workers, -(-len(paths) // batch_size)),
        collate_fn=_stack,
        worker_init_fn=_single_threaded,
    )
    batch_iter = iter(loader)
    try:
        for images in batch_iter:
            if isinstance(images, _Unreadable):
                raise images.error()
            yield images
    finally:
        del batch_iter  # stops the workers now


def _batches(group_sizes: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices into the concatenated groups, `batch_size` at a time, restarting at each group."""
    batches, start = [], 0
    for size in group_sizes:
        batches += [list(range(first, min(first + batch_size, start + size))) for first in range(start, start + size, batch_size)]
        start += size
    return batches


class UnreadableImageError(ValueError):
    """An image file does not decode; the message names the file and the fix.

    Its own type, not `tasks.DatasetError`, because models does not import tasks: training, which
    reads the data, raises it again as a DatasetError (training.environment.visual_inputs).
    """


@dataclass(frozen=True)
class _Unreadable:
    """An image file that did not decode, and why: what a worker returns instead of raising.

    An exception raised in a worker reaches this process wrapped in the worker's traceback;
    this travels as data, so the error raised is the one a user can act on.
    """

    path: Path
    reason: str

    def error(self) -> UnreadableImageError:
        return UnreadableImageError(f"cannot read image {self.path}: {self.reason}; fix or remove this file, then run again")


class _Images(Dataset):
    """Image `n` of `paths` as the encoder's input (3, H, W), or an `_Unreadable`."""

    def __init__(self, paths: Sequence[Path], preprocess: Callable):
        self.paths = list(paths)
        self.preprocess = preprocess

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, n: int) -> torch.Tensor | _Unreadable:
        path = self.paths[n]
        try:
            image = rgb_image(path)
        except Exception as error:  # noqa: BLE001 -- whatever the decoder raises, the file is at fault
            return _Unreadable(Path(path), f"{type(error).__name__}: {error}")
        return self.preprocess(image)  # outside the try: a failing transform is a bug, not a bad file


def _stack(items: list[torch.Tensor | _Unreadable]) -> torch.Tensor | _Unreadable:
    unreadable = [item for item in items if isinstance(item, _Unreadable)]
    tensors = [item for item in items if not isinstance(item, _Unreadable)]
    return unreadable[0] if unreadable else torch.stack(tensors)  # (B, 3, H, W)


def _single_threaded(worker_id: int) -> None:
    # Each worker decodes one image at a time; torch's default of one thread per core in every
    # worker would oversubscribe the cores the encoder runs on (the transform's tensor ops).
    torch.set_num_threads(1)


# Modes of 16-bit greyscale PNGs (Pillow opens them as "I;16", older versions as "I").
_SIXTEEN_BIT = ("I", "I;16", "I;16B", "I;16L", "I;16N")


def rgb_image(path: Path) -> Image.Image:
    """The image at `path` as 8-bit RGB, whatever its mode.

    L, LA, RGBA, CMYK and palette images go through Pillow's conversion: alpha is dropped, as
    CLIP's own transform does, so stores extracted before stay right. Two modes need more:

    - 16-bit greyscale: Pillow clips values to 0-255, turning almost every pixel white; the
      16 bits are scaled to 8 instead.
    - palette with transparency: Pillow warns when such an image goes straight to RGB; through
      RGBA it gives the same colours without the warning.

    Raises:
        OSError, ValueError, ...: whatever Pillow raises for a file that does not decode.
    """
    with Image.open(path) as image:
        if image.mode in _SIXTEEN_BIT:
            grey = np.asarray(image, dtype=np.float64) / 257  # 65535 -> 255
            return Image.fromarray(np.clip(np.round(grey), 0, 255).astype(np.uint8)).convert("RGB")
        if image.mode == "PA" or (image.mode == "P" and "transparency" in image.info):
            return image.convert("RGBA").convert("RGB")
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
    Each shard is mapped only while it is read: a mapping's pages count in the resident memory
    once touched (and the kernel reads ahead around the ids at its end), so holding every
    shard's mapping would grow the process by up to the size of the store.
    """
    shard_ids, row_shapes = [], set()
    for path in shard_files:
        part = _read(path)  # reads the header and the ids (and the kernel some pages around them)
        if part is None:
            return False
        shard_ids.append(part[0])
        row_shapes.add(tuple(part[1].shape[1:]))
        del part
    if [i for part_ids in shard_ids for i in part_ids] != ids:
        raise RuntimeError(f"the shards next to {store} do not hold the expected images in order; delete their folder and rerun")
    if len(row_shapes) != 1:
        raise RuntimeError(f"the shards next to {store} disagree on the feature shape; delete their folder and rerun")
    row_shape = list(row_shapes.pop())
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
        for path, expected in zip(shard_files, shard_ids):
            part = _read(path)
            if part is None or part[0] != expected:  # removed by a process that merged them first
                raise _ShardGone(path)
            # numpy's stubs declare ndarray.__buffer__ for Python >= 3.12 only; 3.11's memoryview takes it all the same.
            handle.write(memoryview(np.ascontiguousarray(part[1].numpy(), dtype="<f4")).cast("B"))  # type: ignore[arg-type]
            del part  # unmapped before the next shard is read
        handle.write(id_bytes)

    try:
        write_atomically(store, write)
    except _ShardGone:
        return False
    return True


class _ShardGone(Exception):
    """A shard vanished or changed while `_merge` copied it."""
