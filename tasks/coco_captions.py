"""Load COCO captions in the Karpathy layout (real or generated).

Reads ``root/coco/dataset_coco.json``::

    {"images": [{"filename": ..., "filepath"?: ..., "imgid"?: ..., "cocoid"?: ...,
                 "split": "train" | "restval" | "val" | "test",
                 "sentences": [{"raw": ...}, ...]}, ...]}

Images are ``images_dir/<filepath>/<filename>`` (``filepath`` omitted when
absent; default ``images_dir`` is ``root/images``). As in the Karpathy split
used by VL-T5 / VL-Adapter, split ``train`` includes the ``restval`` images.
The generated benchmark adds ``test_ood`` (held-out attribute combinations).
"""

from __future__ import annotations

from pathlib import Path

from tasks._records import NONEMPTY_STR, check_record, check_split, check_unique, read_json
from tasks.errors import DatasetError
from tasks.examples import CaptionExample

__all__ = ["CAPTION_SPLITS", "load_caption_split"]

CAPTION_SPLITS: tuple[str, ...] = ("train", "val", "test", "test_ood")
_FILE_SPLITS = ("train", "restval", "val", "test", "test_ood")
_FIELDS = {
    "filename": NONEMPTY_STR,
    "split": (f"one of {list(_FILE_SPLITS)}", lambda v: v in _FILE_SPLITS),
    "sentences": (
        "a non-empty list of {'raw': <string>} objects",
        lambda v: isinstance(v, list) and bool(v) and all(isinstance(s, dict) and isinstance(s.get("raw"), str) for s in v),
    ),
}


def _image_id(record: dict, filename: str) -> int | str:
    for key in ("cocoid", "imgid"):
        if isinstance(record.get(key), int) and not isinstance(record.get(key), bool):
            return record[key]
    return Path(filename).stem


def load_caption_split(root: Path, split: str, images_dir: Path | None = None, folder: Path | None = None) -> list[CaptionExample]:
    """Load the images of one Karpathy split with their reference captions.

    Args:
        root: Dataset root (holds ``coco/dataset_coco.json``).
        split: One of :data:`CAPTION_SPLITS`; ``train`` includes ``restval``.
        images_dir: Where the images are; default ``root/images``.
        folder: The folder of the split files; default ``root/coco`` (a data
            file names it directly).

    Returns:
        The examples, in file order.

    Raises:
        DatasetError: For an unknown split, a missing or malformed file, a
            malformed image record, a duplicate image id, a missing image, or a
            split with no images.
    """
    check_split(split, CAPTION_SPLITS)
    root = Path(root)
    images = Path(images_dir) if images_dir is not None else root / "images"
    path = (Path(folder) if folder is not None else root / "coco") / "dataset_coco.json"
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise DatasetError(f"{path} must be an object with an 'images' list, as in the Karpathy dataset_coco.json.")
    wanted = {"train", "restval"} if split == "train" else {split}
    examples: list[CaptionExample] = []
    seen: set[int | str] = set()
    for i, record in enumerate(data["images"]):
        where = f"{path} image #{i}"
        check_record(record, where, _FIELDS)
        image_id = _image_id(record, record["filename"])
        check_unique(image_id, seen, where, "image id")
        if record["split"] not in wanted:
            continue
        filepath = record.get("filepath")
        image_path = images / filepath / record["filename"] if filepath else images / record["filename"]
        if not image_path.is_file():
            raise DatasetError(
                f"{where} (image id {image_id!r}) names {image_path}, which does not exist; "
                "regenerate the dataset, restore the image or pass the right images directory."
            )
        examples.append(
            CaptionExample(
                image_id=image_id,
                img_id=Path(record["filename"]).stem,
                image_path=image_path,
                references=tuple(s["raw"] for s in record["sentences"]),
                split=record["split"],
            )
        )
    if not examples:
        raise DatasetError(f"{path} has no images in split {split!r}; an empty split cannot be trained or evaluated.")
    return examples
