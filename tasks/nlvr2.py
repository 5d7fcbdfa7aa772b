"""Load an NLVR2 split in the VL-T5 / VL-Adapter layout (real or generated).

Reads ``root/nlvr/{split}.json``, a list of
``{identifier, img0, img1, sent, label: 0/1, uid}``; images are
``images_dir/<img0>.{png,jpg,jpeg}`` (default ``root/images``). The generated
benchmark adds ``test_ood`` (held-out attribute combinations).
"""

from __future__ import annotations

from pathlib import Path

from tasks._records import NONEMPTY_STR, STR, check_record, check_split, check_unique
from tasks._records import find_image, read_json, require_list
from tasks.examples import PairExample

__all__ = ["NLVR2_SPLITS", "load_nlvr2_split"]

NLVR2_SPLITS: tuple[str, ...] = ("train", "valid", "test", "test_ood")
_FIELDS = {
    "identifier": NONEMPTY_STR,
    "img0": NONEMPTY_STR,
    "img1": NONEMPTY_STR,
    "sent": STR,
    "label": ("the int 0 or 1", lambda v: type(v) is int and v in (0, 1)),
    "uid": NONEMPTY_STR,
}


def load_nlvr2_split(root: Path, split: str, images_dir: Path | None = None, folder: Path | None = None) -> list[PairExample]:
    """Load one NLVR2 split, checking every record and both images.

    Args:
        root: Dataset root (holds ``nlvr/``).
        split: One of :data:`NLVR2_SPLITS`.
        images_dir: Where the images are; default ``root/images``.
        folder: The folder of the split files; default ``root/nlvr`` (a data
            file names it directly).

    Returns:
        The examples, in file order.

    Raises:
        DatasetError: For an unknown split, a missing or malformed file, a
            malformed record (a label other than 0/1 included), a duplicate
            identifier, a missing image, or an empty split.
    """
    check_split(split, NLVR2_SPLITS)
    root = Path(root)
    images = Path(images_dir) if images_dir is not None else root / "images"
    path = (Path(folder) if folder is not None else root / "nlvr") / f"{split}.json"
    records = require_list(read_json(path), path, "statement records")
    examples: list[PairExample] = []
    seen: set[str] = set()
    for i, record in enumerate(records):
        where = f"{path} record #{i}"
        check_record(record, where, _FIELDS)
        check_unique(record["identifier"], seen, where, "identifier")
        examples.append(
            PairExample(
                identifier=record["identifier"],
                uid=record["uid"],
                img_ids=(record["img0"], record["img1"]),
                image_paths=(
                    find_image(images, record["img0"], where),
                    find_image(images, record["img1"], where),
                ),
                statement=record["sent"],
                label=record["label"] == 1,
            )
        )
    return examples
