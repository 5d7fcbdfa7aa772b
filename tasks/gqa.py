"""Load a GQA split in the VL-T5 / VL-Adapter layout (real or generated).

Reads ``root/gqa/{split}.json``, a list of
``{img_id, sent, question_id, label: {answer: 1.0}}``; images are
``images_dir/<img_id>.{png,jpg,jpeg}`` (default ``root/images``). The
generated benchmark adds ``testdev_ood`` (held-out attribute combinations).
"""

from __future__ import annotations

from pathlib import Path

from tasks._records import ID, LABEL, NONEMPTY_STR, STR, check_record, check_split, check_unique
from tasks._records import find_image, read_json, require_list
from tasks.errors import DatasetError
from tasks.examples import QAExample

__all__ = ["GQA_SPLITS", "load_gqa_split"]

GQA_SPLITS: tuple[str, ...] = ("train", "valid", "testdev", "testdev_ood")
_FIELDS = {"img_id": NONEMPTY_STR, "sent": STR, "question_id": ID, "label": LABEL}


def load_gqa_split(root: Path, split: str, images_dir: Path | None = None, folder: Path | None = None) -> list[QAExample]:
    """Load one GQA split, checking every record and image.

    Args:
        root: Dataset root (holds ``gqa/``).
        split: One of :data:`GQA_SPLITS`.
        images_dir: Where the images are; default ``root/images``.
        folder: The folder of the split files; default ``root/gqa`` (a data
            file names it directly).

    Returns:
        The examples, in file order.

    Raises:
        DatasetError: For an unknown split, a missing or malformed file, a
            malformed record or label, an empty label, a duplicate question id,
            a missing image, or an empty split.
    """
    check_split(split, GQA_SPLITS)
    root = Path(root)
    images = Path(images_dir) if images_dir is not None else root / "images"
    path = (Path(folder) if folder is not None else root / "gqa") / f"{split}.json"
    records = require_list(read_json(path), path, "question records")
    examples: list[QAExample] = []
    seen: set[int | str] = set()
    for i, record in enumerate(records):
        where = f"{path} record #{i}"
        check_record(record, where, _FIELDS)
        if not record["label"]:
            raise DatasetError(
                f"{where} (question_id={record['question_id']!r}) has an empty label; GQA records need label {{answer: 1.0}}."
            )
        check_unique(record["question_id"], seen, where, "question_id")
        examples.append(
            QAExample(
                question_id=record["question_id"],
                img_ids=(record["img_id"],),
                image_paths=(find_image(images, record["img_id"], where),),
                question=record["sent"],
                label={a: float(s) for a, s in record["label"].items()},
            )
        )
    return examples
