"""Generate a small synthetic VQA dataset in the real VQA v2 Karpathy layout.

The files are the ones VL-T5 / VL-Adapter read for VQA v2, so one loader
(:mod:`tasks.vqa`) serves both this dataset and the real one::

    root/images/<img_id>.png                        img_id like mini_train_000123
    root/vqa/karpathy_{train,val,test}.json         [{img_id, sent, question_id, label,
                                                      answer_type, question_type}]
    root/vqa/v2_mscoco_{split}_annotations.json     {"annotations": [... 10 raw answers ...]}
    root/vqa/v2_OpenEnded_mscoco_{split}_questions.json  {"questions": [...]}
    root/manifest.json                              generator, version, seed, sizes, counts

Splits are disjoint by image. The same arguments give byte-identical files, and
a second call with the same arguments returns at once. Run it with::

    python -m tasks generate-vqa data/vqa_mini --seed 0
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from tasks._files import build_dataset, write_json
from tasks.render import render_scene
from tasks.vqa_annotators import simulate_answers, soft_label
from tasks.vqa_questions import ask
from tasks.world import Scene, sample_scene

__all__ = ["GENERATOR", "GENERATOR_VERSION", "SPLITS", "add_vqa_records", "generate_vqa", "vqa_files_of", "write_vqa_split"]

GENERATOR = "tasks.vqa_generate"
# Bump whenever the output for the same arguments changes, so stale datasets
# are regenerated instead of reused.
GENERATOR_VERSION = 1
SPLITS: tuple[str, ...] = ("train", "val", "test")
MAX_QUESTIONS_PER_IMAGE = 5
# question_id = image_id * 1000 + k, the numbering of the real VQA v2 files.
_QUESTION_ID_STRIDE = 1000


def generate_vqa(
    root: Path,
    *,
    seed: int = 0,
    n_train_images: int = 1200,
    n_val_images: int = 150,
    n_test_images: int = 150,
    questions_per_image: int = 2,
    image_size: int = 64,
) -> Path:
    """Write the synthetic VQA dataset to ``root``, or reuse an identical one.

    The dataset is built in a temporary sibling directory and renamed into
    place when complete, so a crash never leaves a half-written dataset. A
    previous dataset from this generator with other arguments is replaced.

    Args:
        root: Dataset directory (created; its parent must be writable).
        seed: Seed of every random choice.
        n_train_images: Images in the train split.
        n_val_images: Images in the val split.
        n_test_images: Images in the test split.
        questions_per_image: Distinct questions per image, 1-5.
        image_size: Side of the square PNG images in pixels, at least 16.

    Returns:
        ``root``, as a Path.

    Raises:
        ValueError: If an argument is out of range (all problems listed).
        tasks.errors.DatasetError: If ``root`` holds something this generator
            did not write.
    """
    root = Path(root)
    sizes = {"train": n_train_images, "val": n_val_images, "test": n_test_images}
    _validate(seed, sizes, questions_per_image, image_size)
    manifest = _manifest(seed, sizes, questions_per_image, image_size)
    return build_dataset(
        root,
        manifest,
        GENERATOR,
        lambda out: _write_dataset(out, manifest),
        lambda existing: _is_complete(existing, manifest),
    )


def _validate(seed: int, sizes: dict[str, int], questions_per_image: int, image_size: int) -> None:
    problems = []
    if not isinstance(seed, int) or isinstance(seed, bool):
        problems.append(f"seed must be an int, but got {seed!r}")
    for split, n in sizes.items():
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            problems.append(f"n_{split}_images must be an int >= 1 (an empty split cannot be loaded), but got {n!r}")
    if not isinstance(questions_per_image, int) or not 1 <= questions_per_image <= MAX_QUESTIONS_PER_IMAGE:
        problems.append(f"questions_per_image must be an int in [1, {MAX_QUESTIONS_PER_IMAGE}], but got {questions_per_image!r}")
    if not isinstance(image_size, int) or image_size < 16:
        problems.append(f"image_size must be an int >= 16 pixels, but got {image_size!r}")
    if problems:
        raise ValueError("invalid generate_vqa arguments: " + "; ".join(problems) + ".")


def _manifest(seed: int, sizes: dict[str, int], questions_per_image: int, image_size: int) -> dict[str, Any]:
    # Every image gets exactly questions_per_image questions, so the counts are
    # known up front and the whole manifest can serve as the reuse key.
    return {
        "generator": GENERATOR,
        "version": GENERATOR_VERSION,
        "seed": seed,
        "image_size": image_size,
        "questions_per_image": questions_per_image,
        "sizes": dict(sizes),
        "counts": {split: {"images": n, "questions": n * questions_per_image} for split, n in sizes.items()},
    }


def vqa_files_of(split: str) -> tuple[str, ...]:
    return (
        f"karpathy_{split}.json",
        f"v2_mscoco_{split}_annotations.json",
        f"v2_OpenEnded_mscoco_{split}_questions.json",
    )


def _is_complete(root: Path, manifest: dict[str, Any]) -> bool:
    """Whether every file is still there: the manifest alone would hide deletions."""
    if not all((root / "vqa" / name).is_file() for s in SPLITS for name in vqa_files_of(s)):
        return False
    n_images: int = sum(manifest["sizes"].values())
    return sum(1 for _ in (root / "images").glob("*.png")) == n_images


def _write_dataset(out: Path, manifest: dict[str, Any]) -> None:
    (out / "images").mkdir()
    (out / "vqa").mkdir()
    next_image_id = 1  # image ids are unique across splits, as in COCO
    for split in SPLITS:
        n_images = manifest["sizes"][split]
        records = _split_records(split, range(next_image_id, next_image_id + n_images), manifest, out / "images")
        write_vqa_split(out / "vqa", split, records)
        next_image_id += n_images


def _split_records(
    split: str, image_ids: range, manifest: dict[str, Any], images_dir: Path
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Render one split's images and build its three record lists."""
    records: VQARecords = ([], [], [])
    for index, image_id in enumerate(image_ids):
        img_id = f"mini_{split}_{image_id:06d}"
        # One generator per image, seeded by a string (hashed with SHA-512, so
        # stable across processes): a scene does not depend on the split sizes.
        rng = random.Random(f"{GENERATOR}:{manifest['seed']}:{split}:{index}")
        scene = sample_scene(rng)
        render_scene(scene, manifest["image_size"]).save(images_dir / f"{img_id}.png", format="PNG")
        add_vqa_records(records, scene, rng, image_id, img_id, manifest["questions_per_image"])
    return records


VQARecords = tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]


def add_vqa_records(records: VQARecords, scene: Scene, rng: random.Random, image_id: int, img_id: str, questions_per_image: int) -> None:
    """Ask ``questions_per_image`` distinct questions about one image and append their records.

    Args:
        records: (Karpathy records, official annotations, official questions),
            extended in place.
        scene: The image's scene.
        rng: Source of randomness; it is advanced.
        image_id: The numeric COCO-style image id (unique across splits).
        img_id: The image file name without suffix.
        questions_per_image: How many questions, 1-5.
    """
    karpathy, annotations, questions = records
    asked: set[str] = set()
    for k in range(questions_per_image):
        spec = ask(scene, rng, exclude=frozenset(asked))
        asked.add(spec.question)
        raw = simulate_answers(spec, rng)
        question_id = image_id * _QUESTION_ID_STRIDE + k
        karpathy.append(
            {
                "img_id": img_id,
                "sent": spec.question,
                "question_id": question_id,
                "label": soft_label(raw),
                "answer_type": spec.answer_type,
                "question_type": spec.question_type,
            }
        )
        annotations.append(
            {
                "question_id": question_id,
                "image_id": image_id,
                "question_type": spec.question_type,
                "answer_type": spec.answer_type,
                # At least 5 of 10 annotators type the exact truth, so it is
                # always the most common answer.
                "multiple_choice_answer": spec.answer,
                "answers": [{"answer": a.answer, "answer_confidence": a.confidence, "answer_id": i} for i, a in enumerate(raw, start=1)],
            }
        )
        questions.append({"question_id": question_id, "image_id": image_id, "question": spec.question})


def write_vqa_split(vqa_dir: Path, split: str, records: VQARecords) -> None:
    """Write one split's three VQA v2 files into ``vqa_dir``."""
    karpathy, annotations, questions = records
    karpathy_name, annotations_name, questions_name = vqa_files_of(split)
    write_json(vqa_dir / karpathy_name, karpathy)
    write_json(vqa_dir / annotations_name, {"annotations": annotations})
    write_json(vqa_dir / questions_name, {"questions": questions})
