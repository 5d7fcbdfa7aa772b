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

from dataclasses import dataclass
from pathlib import Path

from tasks._records import NONEMPTY_STR, check_record, check_split, check_unique, read_json
from tasks.errors import DatasetError
from tasks.examples import CaptionExample

__all__ = ["CAPTION_SPLITS", "FILE_SPLITS", "KarpathyImage", "karpathy_references", "load_caption_split", "read_karpathy_images"]

CAPTION_SPLITS: tuple[str, ...] = ("train", "val", "test", "test_ood")
# The split values an image record may carry (``train`` of CAPTION_SPLITS is train + restval).
FILE_SPLITS: tuple[str, ...] = ("train", "restval", "val", "test", "test_ood")
_FIELDS = {
    "filename": NONEMPTY_STR,
    "split": (f"one of {list(FILE_SPLITS)}", lambda v: v in FILE_SPLITS),
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


@dataclass(frozen=True)
class KarpathyImage:
    """One image record of ``dataset_coco.json``, checked, before its image file is looked for.

    Attributes:
        image_id: ``cocoid``, else ``imgid``, else the file name's stem: the key of a
            caption split's examples and of its results rows (``image_id``).
        filename: The image's file name; ``filepath`` its folder, when the record has one.
        split: The record's own split value (one of :data:`FILE_SPLITS`).
        references: The ``raw`` text of each sentence (training and scoring read these, not
            the ``tokens``).
    """

    image_id: int | str
    filename: str
    filepath: str | None
    split: str
    references: tuple[str, ...]


def read_karpathy_images(path: Path) -> list[KarpathyImage]:
    """Every image record of a Karpathy ``dataset_coco.json``, in file order.

    Training (:func:`load_caption_split`) and scoring a results file
    (``python -m search.evaluate caption``) both read the file here, so the two
    cannot disagree on an image's id or references.

    Raises:
        DatasetError: For a missing or malformed file, a malformed image record or a
            duplicate image id (naming the file and the record).
    """
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise DatasetError(f"{path} must be an object with an 'images' list, as in the Karpathy dataset_coco.json.")
    out: list[KarpathyImage] = []
    seen: set[int | str] = set()
    for i, record in enumerate(data["images"]):
        where = f"{path} image #{i}"
        check_record(record, where, _FIELDS)
        image_id = _image_id(record, record["filename"])
        check_unique(image_id, seen, where, "image id")
        references = tuple(s["raw"] for s in record["sentences"])
        out.append(KarpathyImage(image_id, record["filename"], record.get("filepath") or None, record["split"], references))
    return out


def _file_splits(split: str) -> set[str]:
    # As in the Karpathy split used by VL-T5 / VL-Adapter, training reads restval too.
    return {"train", "restval"} if split == "train" else {split}


def karpathy_references(path: Path, split: str) -> dict[int | str, tuple[str, ...]]:
    """image id -> reference captions of one split of a Karpathy ``dataset_coco.json``,
    exactly as :func:`load_caption_split` gives them to training (no image file is needed).

    Args:
        path: The ``dataset_coco.json`` file.
        split: One of :data:`FILE_SPLITS`; ``train`` includes ``restval``, as for training.

    Raises:
        DatasetError: For an unknown split, what :func:`read_karpathy_images` refuses, or a
            split with no images.
    """
    check_split(split, FILE_SPLITS)
    wanted = _file_splits(split)
    refs = {image.image_id: image.references for image in read_karpathy_images(path) if image.split in wanted}
    if not refs:
        raise DatasetError(f"{path} has no images in split {split!r}; an empty split cannot be evaluated.")
    return refs


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
    wanted = _file_splits(split)
    examples: list[CaptionExample] = []
    for i, record in enumerate(read_karpathy_images(path)):
        if record.split not in wanted:
            continue
        image_path = images / record.filepath / record.filename if record.filepath else images / record.filename
        if not image_path.is_file():
            raise DatasetError(
                f"{path} image #{i} (image id {record.image_id!r}) names {image_path}, which does not exist; "
                "regenerate the dataset, restore the image or pass the right images directory."
            )
        examples.append(
            CaptionExample(
                image_id=record.image_id,
                img_id=Path(record.filename).stem,
                image_path=image_path,
                references=record.references,
                split=record.split,
            )
        )
    if not examples:
        raise DatasetError(f"{path} has no images in split {split!r}; an empty split cannot be trained or evaluated.")
    return examples
