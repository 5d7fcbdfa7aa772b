"""Visual tokens for a batch: cached image grid features and per-frame video features.

Images give a fixed grid of tokens each (36 for RN101, 16 for the tiny ViT). A video gives
its frames' tokens in frame order: one token per frame from a precomputed `.npz` (up to 64
frames, PAPER.md §4), or, from the frames themselves, each frame's CLIP grid pooled to at most
4x4 tokens (the tiny ViT's whole grid; 4 frames spread over the clip fill the 64-token budget),
which keeps where things are in the frame: a single mean-pooled vector per frame cannot tell
which way an object moves. On the generated TVQA, 4x4 frames let full fine-tuning learn which
object moves (35.5% against a 16.1% answer prior, BENCHMARKS.md); with 2x2 frames it stayed
near the prior (21.0% in an exploratory run). Videos differ in length, so their tokens are
padded to the longest in the batch and masked. A token's place reaches the model through the
visual-order embedding rows (`<vis_extra_id_i>` for the i-th token: frame t, cell c is row
t * cells + c), the same rows that number an image's grid cells, so no extra table is added to
the parameter count.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import torch

from models.features import FeatureTable, decode_processes, decoded_batches, rgb_image
from tasks import load_video_features
from tasks.errors import DatasetError
from tasks.examples import VideoSource

MAX_FRAMES = 64  # the paper's video setting: 64 frames of CLIP features
MAX_VIDEO_TOKENS = 64  # visual tokens of one video; frames with grid tokens share this budget
FRAME_GRID = 4  # a frame's CLIP grid is pooled to FRAME_GRID x FRAME_GRID tokens


@dataclass(frozen=True)
class VideoTable:
    """Per-frame features of a set of videos, zero-padded to the longest.

    Attributes:
        index: vid_name -> row.
        features: (videos, max_tokens, dim): each video's frames in order, each frame's tokens
            together (one per frame from `.npz` features, FRAME_GRID**2 from frames).
        lengths: (videos,) real token count of each video.
    """

    index: Mapping[str, int]
    features: torch.Tensor
    lengths: torch.Tensor

    def lookup(self, vid_names: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        rows = torch.tensor([self.index[v] for v in vid_names], dtype=torch.long)
        lengths = self.lengths.index_select(0, rows)
        width = int(lengths.max())
        mask = torch.arange(width).unsqueeze(0) < lengths.unsqueeze(1)
        return self.features.index_select(0, rows)[:, :width], mask


class PixelTable:
    """Preprocessed images for a CLIP that trains (no cache can hold its changing features).

    Images are decoded and transformed on first use and kept, up to `keep` of them, so an
    epoch over a small benchmark decodes each image once.

    Args:
        image_paths: img_id -> image file.
        make_transform: builds the encoder's image transform (called once, on first use).
        tokens_per_image: grid tokens the encoder makes of one image.
    """

    def __init__(self, image_paths: Mapping[str, Path], make_transform: Callable[[], Callable], tokens_per_image: int, keep: int = 20_000):
        self.image_paths = image_paths
        self.tokens_per_image = tokens_per_image
        self._make_transform = make_transform
        self._transform: Callable | None = None
        self._kept: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._keep = keep

    def lookup(self, img_ids: Sequence[str]) -> torch.Tensor:
        """(images, 3, H, W) for these ids."""
        return torch.stack([self._pixels(i) for i in img_ids])

    def preload(self, img_ids: Sequence[str], workers: int | None = None, batch_size: int = 64) -> int:
        """Decode and transform these images ahead of training, in DataLoader worker processes.

        A trial whose CLIP trains reads pixels at every step; decoded one by one in the
        training process, the first epoch would wait on the decoder (on a GPU, most of the
        time). At most `keep` images are kept; the pixels are the ones `lookup` would make.

        Args:
            workers: decoding processes; None: as feature extraction picks them
                (models.features.decode_processes).

        Returns:
            How many images were decoded.

        Raises:
            models.features.UnreadableImageError: an image does not decode.
        """
        wanted = [i for i in dict.fromkeys(img_ids) if i not in self._kept][: max(0, self._keep - len(self._kept))]
        if not wanted:
            return 0
        paths = [self.image_paths[i] for i in wanted]
        done = 0
        for batch in decoded_batches(paths, self._transform_fn(), batch_size, decode_processes(workers, len(paths))):
            for img_id, pixels in zip(wanted[done : done + len(batch)], batch):
                self._kept[img_id] = pixels.clone()  # its own storage: the batch is let go
            done += len(batch)
        return done

    def _transform_fn(self) -> Callable:
        if self._transform is None:
            self._transform = self._make_transform()
        return self._transform

    def _pixels(self, img_id: str) -> torch.Tensor:
        if img_id in self._kept:
            self._kept.move_to_end(img_id)
            return self._kept[img_id]
        # rgb_image, as the feature cache and `preload` decode: the same pixels by either path.
        pixels = self._transform_fn()(rgb_image(self.image_paths[img_id]))
        self._kept[img_id] = pixels
        if len(self._kept) > self._keep:
            self._kept.popitem(last=False)
        return pixels


class VisualInputs:
    """Routes visual ids to the image store or the video table; one kind per batch.

    `pixels` serves trials whose CLIP trains (images go through the encoder in the model).
    """

    def __init__(self, images: FeatureTable | None = None, videos: VideoTable | None = None, pixels: PixelTable | None = None):
        self.images = images
        self.videos = videos
        self.pixels = pixels

    def lookup(self, ids: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Features (n, tokens, dim) and mask (n, tokens) of images or videos, by id."""
        if self.videos is not None and ids[0] in self.videos.index:
            return self.videos.lookup(ids)
        if self.images is None:
            raise KeyError(f"no image features loaded for {ids[0]!r}")
        feats = self.images.lookup(list(ids))
        return feats, torch.ones(feats.shape[:2], dtype=torch.bool)


def frame_key(vid_name: str, frame_index: int) -> str:
    """The image-store id of a video frame."""
    return f"{vid_name}#frame{frame_index:03d}"


def uniform_frames(n_frames: int, max_frames: int = MAX_FRAMES) -> list[int]:
    """At most `max_frames` frame indices spread evenly over the video, first and last included."""
    if n_frames <= max_frames:
        return list(range(n_frames))
    return [round(i * (n_frames - 1) / (max_frames - 1)) for i in range(max_frames)]


def frames_to_extract(sources: Mapping[str, VideoSource]) -> dict[str, Path]:
    """Frame images to encode: every frame of the videos that come without a features file."""
    return {frame_key(vid, i): path for vid, source in sources.items() if source.features is None for i, path in enumerate(source.frames)}


def pool_frame_grid(grid: torch.Tensor, side: int = FRAME_GRID) -> torch.Tensor:
    """Average-pool each frame's square token grid to `side` x `side` tokens.

    Args:
        grid: (frames, G * G, dim) grid features, row-major (as the image store holds them).
        side: the pooled grid's side; a grid already this small (or not square) is averaged
            to one token per frame instead.

    Returns:
        (frames, side * side, dim), cells row-major; (frames, 1, dim) for the fallback.
    """
    frames, tokens, dim = grid.shape
    g = math.isqrt(tokens)
    if g * g != tokens or g < side:
        return grid.mean(dim=1, keepdim=True)
    cells = grid.transpose(1, 2).reshape(frames, dim, g, g)  # (F, D, G, G)
    pooled = torch.nn.functional.adaptive_avg_pool2d(cells, side)  # (F, D, side, side)
    return pooled.flatten(2).transpose(1, 2)  # (F, side * side, D)


def build_video_table(
    sources: Mapping[str, VideoSource],
    frames: FeatureTable | None,
    feature_dim: int,
    max_frames: int = MAX_FRAMES,
    frame_grid: int | None = None,
    max_tokens: int = MAX_VIDEO_TOKENS,
) -> VideoTable:
    """One row per video: its `.npz` features (one token per frame), or its frames' grid
    features pooled to `frame_grid` x `frame_grid` tokens per frame.

    Pooled grid cells have the width of an image token, so one V->L projection serves image
    and video tasks alike on the same encoder. Frames are spread evenly over the video: at most
    `max_frames`, and at most `max_tokens` tokens in all.

    Args:
        frame_grid: side of a frame's pooled grid; default FRAME_GRID.

    Raises:
        DatasetError: a features file whose width is not the backbone's `feature_dim`.
    """
    side = FRAME_GRID if frame_grid is None else frame_grid
    names = sorted(sources)
    rows: list[torch.Tensor] = []
    for vid in names:
        source = sources[vid]
        if source.features is not None:
            array = load_video_features(source.features)
            if array.shape[1] != feature_dim:
                raise DatasetError(
                    f"{source.features} has {array.shape[1]}-d frame features, but the backbone reads "
                    f"{feature_dim}-d ones; extract them with the backbone's encoder (python -m models.prepare --videos)."
                )
            per_frame = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).unsqueeze(1)  # (F, 1, D)
        else:
            assert frames is not None, f"video {vid!r} has neither a features file nor extracted frame features"
            grid = frames.lookup([frame_key(vid, i) for i in range(len(source.frames))])  # (F, G * G, D)
            per_frame = pool_frame_grid(grid.float(), side)
        keep = min(max_frames, max(1, max_tokens // per_frame.shape[1]))
        rows.append(per_frame[uniform_frames(len(per_frame), keep)].flatten(0, 1))
    width = max(len(r) for r in rows)
    features = torch.zeros(len(rows), width, feature_dim)
    for n, row in enumerate(rows):
        features[n, : len(row)] = row
    lengths = torch.tensor([len(r) for r in rows], dtype=torch.long)
    return VideoTable({vid: n for n, vid in enumerate(names)}, features, lengths)
