"""Extract visual features ahead of a study, resumably.

    python -m models.prepare --images data/coco/train2014 --images data/coco/val2014 [--decode-workers N]
    python -m models.prepare --videos data/value/videos [--out data/value/video_features]

Images go into the store trials read, `<data-dir>/features/features-<key>.safetensors`, under
the same content key, so a trial over exactly these images never runs the encoder. The key
covers the whole set: a trial over a subset or a superset gets its own store. Each image's
id is its file stem, as in the COCO, VG and NLVR2 file names.

Videos are a VALUE `videos/` folder (one subfolder of `frame_<NNN>.png` per video); each
becomes `<out>/<vid_name>.npz` with a `features` array of shape (frames, dim), each frame's
grid mean-pooled. Both resume: finished shards and videos are kept on a rerun.

`python -m models.prepare` is the documented name (an entry point in models/prepare.py); the
command lives here because it builds the embedded backbone on first use (training.pretrain) and
reads video features with the task loaders (tasks), which models must not import.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, NoReturn

from core.data_dir import data_dir_problem
from models.backbones.backbone_spec import canonical_backbone
from models.backbones.presets import DEFAULT_BACKBONE, PRESETS, get_preset
from models.config import ConfigError

if TYPE_CHECKING:
    import torch

    from models.backbones.clip_encoder import GridEncoder

PROGRAM = "models.prepare"  # the documented command name, which error lines start with
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
FRAME_PATTERN = "frame_*.png"

NO_RANDOM_INIT = (
    "There is no --random-init here: features are extracted ahead of time for real weights; a "
    "random-init smoke run (python -m search.launch --random-init) extracts its own on first use. "
    "The embedded backbone is pretrained here on first use; set VLPETL_PRETRAIN_STEPS (e.g. 40) "
    "beforehand for a quick one."
)


def build_parser() -> argparse.ArgumentParser:
    # allow_abbrev=False: a prefix such as --decode would silently mean --decode-workers, and
    # keep meaning it only until another flag shares the prefix.
    parser = argparse.ArgumentParser(
        prog=f"python -m {PROGRAM}", description=__doc__.split("\n\n")[0], epilog=NO_RANDOM_INIT, allow_abbrev=False
    )
    parser.add_argument(
        "--backbone", default=DEFAULT_BACKBONE, help=f"backbone preset whose image tower encodes (default {DEFAULT_BACKBONE})"
    )
    parser.add_argument("--data-dir", type=Path, default=None, help="holds backbones/ and features/ (default ./data or $VLPETL_DATA_DIR)")
    parser.add_argument(
        "--images",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="folder of .jpg/.jpeg/.png images, searched recursively; repeatable (img_id = file stem)",
    )
    parser.add_argument(
        "--videos", type=Path, default=None, metavar="DIR", help="VALUE videos/ folder: one subfolder of frame_<NNN>.png per video"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="where --videos writes <vid_name>.npz (default: video_features/ beside the videos folder)",
    )
    parser.add_argument("--batch-size", type=int, default=64, help="images per encoder call (default 64)")
    parser.add_argument(
        "--device", default="auto", help="where CLIP encodes: auto (CUDA when present), cpu, cuda or cuda:N; use the studies' --device"
    )
    parser.add_argument(
        "--decode-workers",
        type=int,
        default=None,
        metavar="N",
        help="processes that decode images while the encoder runs; 0 decodes in this process "
        "(default: min(4, cores - 1), and fewer for a few images); the features are the same whatever N",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    plan = _validate(args)  # every check happens before anything is written
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    for name in ("models", "training"):  # the pretraining's progress lines come from training.pretrain
        logging.getLogger(name).setLevel(logging.INFO)
    return _run(**plan, batch_size=args.batch_size, decode_workers=args.decode_workers)


def fail(message: str) -> NoReturn:
    # search.cli_common.fail, restated: training must not import search (dependencies point one way).
    print(f"{PROGRAM}: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def _validate(args: argparse.Namespace) -> dict:
    if args.batch_size < 1:
        fail(f"--batch-size must be >= 1, got {args.batch_size}; pass the number of images per encoder call, e.g. 64")
    if args.decode_workers is not None and args.decode_workers < 0:
        fail(
            f"--decode-workers must be >= 0, got {args.decode_workers}; pass the number of decoding processes, "
            "e.g. 2, or 0 to decode in this process"
        )
    from training.devices import DeviceError, parse_device

    try:
        device = parse_device(args.device)
    except DeviceError as error:
        fail(str(error))
    try:
        args.backbone = canonical_backbone(args.backbone)
    except ConfigError as error:
        fail("--backbone " + "; ".join(error.problems))
    preset = get_preset(args.backbone)
    if preset.clip_model is None:
        towers = ", ".join(sorted(name for name, p in PRESETS.items() if p.clip_model is not None))
        fail(
            f"--backbone {args.backbone!r} has no image tower (it reads precomputed {preset.feature_dim}-d features), "
            f"so it cannot extract any; use a backbone with a CLIP image tower: {towers}"
        )
    if not args.images and args.videos is None:
        fail("nothing to extract; pass --images DIR (repeatable) and/or --videos DIR")
    if args.out is not None and args.videos is None:
        fail(f"--out {str(args.out)!r} only names where --videos writes; pass --videos DIR too, or drop --out")
    data_dir = (args.data_dir or Path(os.environ.get("VLPETL_DATA_DIR", "data"))).resolve()
    if problem := data_dir_problem(data_dir):
        fail(problem)
    images = image_files(args.images)
    videos, out = {}, None
    if args.videos is not None:
        videos = video_frames(args.videos)
        out = (args.out or args.videos.parent / "video_features").resolve()
        if out.exists() and not out.is_dir():
            fail(f"--out {str(out)!r} is a file; pass a folder for the <vid_name>.npz files")
    return {"backbone": args.backbone, "data_dir": data_dir, "images": images, "videos": videos, "out": out, "device": device}


def image_files(folders: list[Path]) -> dict[str, Path]:
    """img_id (file stem) -> image, over every folder; exits with one line on bad input."""
    found: dict[str, Path] = {}
    for folder in folders:
        if not folder.is_dir():
            fail(f"--images {str(folder)!r} is not a folder; pass a folder holding {'/'.join(IMAGE_SUFFIXES)} images")
        paths = sorted(
            path.resolve()
            for path in folder.rglob("*")
            if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file() and not _hidden(path, folder)
        )
        if not paths:
            fail(
                f"--images {str(folder)!r} holds no {'/'.join(IMAGE_SUFFIXES)} files (searched recursively); pass the folder of the images"
            )
        for path in paths:
            other = found.setdefault(path.stem, path)
            if other != path:
                fail(
                    f"image id {path.stem!r} comes from two files, {str(other)!r} and {str(path)!r}; "
                    "ids are file stems, so they must be unique: rename or remove one"
                )
    return found


def video_frames(folder: Path) -> dict[str, list[Path]]:
    """vid_name -> its frames in order, for a VALUE videos/ folder; exits with one line on bad input."""
    if not folder.is_dir():
        fail(f"--videos {str(folder)!r} is not a folder; pass a VALUE videos/ folder (one subfolder of {FRAME_PATTERN} per video)")
    videos = {}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        frames = sorted(sub.glob(FRAME_PATTERN))  # zero-padded numbers: the order tasks.video reads
        if not frames:
            fail(
                f"--videos: {str(sub)!r} holds no {FRAME_PATTERN}; each subfolder is one video's frames, so add them or move the folder out"
            )
        videos[sub.name] = [frame.resolve() for frame in frames]
    if not videos:
        fail(f"--videos {str(folder)!r} has no video subfolders; pass a VALUE videos/ folder (videos/<vid_name>/{FRAME_PATTERN})")
    return videos


def _hidden(path: Path, root: Path) -> bool:
    # macOS "._x.jpg" resource forks and editor folders are not images.
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def _run(
    backbone: str,
    data_dir: Path,
    images: dict[str, Path],
    videos: dict[str, list[Path]],
    out: Path | None,
    batch_size: int,
    device: torch.device,
    decode_workers: int | None = None,
) -> int:
    from models.features import encoder_identity, ensure_store
    from models.location import BackboneLocation
    from models.visual_encoder import build_visual_encoder, visual_feature_dim
    from training.pretrain.embedded import ensure_embedded_backbone

    preset = get_preset(backbone)
    if preset.embedded:
        ensure_embedded_backbone(data_dir, preset)
    location = BackboneLocation.resolve(backbone, data_dir)
    if preset.embedded and (location.clip_checkpoint is None or not Path(location.clip_checkpoint).is_file()):
        fail(f"--backbone {backbone!r} has no CLIP weights at {location.clip_checkpoint}; build that backbone first")
    if location.missing_weights:
        fail("; ".join(location.missing_weights))
    identity = encoder_identity(location, device)  # the key trials on that device look up
    built: list[tuple[GridEncoder, Callable[..., Any]]] = []

    def make_encoder():
        # Built at most once, and only when something is left to extract.
        if not built:
            encoder, preprocess = build_visual_encoder(location)
            built.append((encoder.to(device), preprocess))
        return built[0]

    if images:
        store = ensure_store(data_dir / "features", images, identity, make_encoder, batch_size, decode_workers=decode_workers)
        print(f"images: {len(images)} -> {store}")
    if videos:
        assert out is not None  # _arguments sets out whenever --videos is given
        extracted = extract_videos(videos, out, identity, visual_feature_dim(location), make_encoder, batch_size, decode_workers)
        print(f"videos: {extracted} extracted, {len(videos) - extracted} already there -> {out}")
    return 0


def extract_videos(
    videos: dict[str, list[Path]], out: Path, identity: dict, dim: int, make_encoder, batch_size: int, decode_workers: int | None = None
) -> int:
    """Write `<out>/<vid_name>.npz` for each video not already there; returns how many were written.

    A file is kept when it loads as (frames, dim) features and, if it records an encoder (every
    file written here does), that encoder is this one and it has every frame: a rerun resumes,
    and switching backbones never leaves a mix. Files without a record (released features) are kept.
    """
    import functools

    import numpy as np
    from tqdm.auto import tqdm

    from models.features import frame_features, write_atomically

    record = json.dumps(identity, sort_keys=True)
    todo = [vid for vid in sorted(videos) if not _video_done(out / f"{vid}.npz", len(videos[vid]), dim, record)]
    if not todo:
        return 0
    encoder, preprocess = make_encoder()
    with tqdm(total=len(videos), initial=len(videos) - len(todo), desc="video features", unit="video") as progress:
        for vid in todo:
            features = frame_features(encoder, preprocess, videos[vid], batch_size, decode_workers)
            write_atomically(out / f"{vid}.npz", functools.partial(np.savez, features=features, encoder=np.array(record)))
            progress.update()
    return len(todo)


def _video_done(path: Path, n_frames: int, dim: int, record: str) -> bool:
    import numpy as np

    from tasks import DatasetError, load_video_features

    if not path.is_file():
        return False
    try:
        features = load_video_features(path)
        with np.load(path, allow_pickle=False) as data:
            stored = str(data["encoder"]) if "encoder" in data.files else None
    except (DatasetError, OSError, ValueError):
        return False
    if features.shape[1] != dim:
        return False
    return stored is None or (stored == record and features.shape[0] == n_frames)
