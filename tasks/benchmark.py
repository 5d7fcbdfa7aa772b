"""mini-VL: every task of the paper, generated from the seeded shapes world.

Each task is written in its real dataset's layout, so the real loaders read it::

    root/images/<img_id>.png                   shared image pool, img_id like mini_train_000123
    root/vqa/karpathy_{split}.json + v2_mscoco_{split}_annotations.json + ..._questions.json
    root/gqa/{train,valid,testdev,testdev_ood}.json
    root/nlvr/{train,valid,test,test_ood}.json  image pairs from the same split's pool
    root/coco/dataset_coco.json                 Karpathy layout, 5 references per image
    root/videos/<vid_name>/frame_<NNN>.png        shared video pool (8 frames, 2 fps)
    root/tvqa/{split}.jsonl + subtitles.jsonl   5-way video QA (VALUE layout)
    root/tvc/{split}.jsonl + subtitles.jsonl    video captioning (VALUE layout)
    root/scenes.json                            ground truth of every image and video
    root/manifest.json                          generator, version, seed, sizes, counts

Image and video splits are ``train``, ``val``, ``test`` and ``test_ood``
(each task names them as its real files do, e.g. GQA ``valid`` / ``testdev``).
VQA, GQA and captions share the image pool, as VQA v2 and COCO share images,
and every task uses an image only in that image's split, so multi-task
training never sees an evaluation image. In-distribution splits never contain
a colour-shape pair of :data:`~tasks.world.HELD_OUT_PAIRS`; every
``test_ood`` image and video has at least one.

Deterministic: each image, question set, pair and video draws from its own
generator seeded by a string, so the same arguments give byte-identical files,
and a second call with the same arguments returns at once. Run it with::

    python -m tasks generate data/mini-vl --seed 0
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tasks._files import build_dataset, write_json, write_jsonl
from tasks.captions import caption_scene
from tasks.gqa_questions import ask_gqa
from tasks.nlvr2_statements import TEMPLATES as NLVR2_TEMPLATES
from tasks.nlvr2_statements import make_statement
from tasks.render import render_scene
from tasks.video_text import ask_video, caption_clip, subtitles_for
from tasks.video_world import VideoClip, sample_clip
from tasks.vqa_generate import VQARecords, add_vqa_records, vqa_files_of, write_vqa_split
from tasks.world import HELD_OUT_PAIRS, Scene, sample_scene, with_held_out_pair

__all__ = ["GENERATOR", "GENERATOR_VERSION", "SPLITS", "TASK_SPLITS", "BenchmarkSizes", "generate_benchmark"]

GENERATOR = "tasks.benchmark"
# Bump whenever the output for the same arguments changes.
# 2: NLVR2 statements balanced per template, about what each image contains; 2,400 of them;
#    4 TVQA questions per video.
GENERATOR_VERSION = 2
SPLITS: tuple[str, ...] = ("train", "val", "test", "test_ood")
# Pool split -> the split name each task's real files use.
TASK_SPLITS: dict[str, dict[str, str]] = {
    "vqa": {s: s for s in SPLITS},
    "gqa": {"train": "train", "val": "valid", "test": "testdev", "test_ood": "testdev_ood"},
    "nlvr2": {"train": "train", "val": "valid", "test": "test", "test_ood": "test_ood"},
    "caption": {s: s for s in SPLITS},
    "tvqa": {s: s for s in SPLITS},
    "tvc": {s: s for s in SPLITS},
}
_ID_STRIDE = 1_000_000  # image and video numbers are split_index * stride + n


_NLVR2_PAIR_TRIES = 1000  # image pairs drawn for one statement before any template will do


def _nlvr2_plan(n: int, rng: random.Random) -> list[tuple[str, bool]]:
    """(template, label) of each statement: every template equally often, each with both
    labels equally often (to within one), in a shuffled order."""
    names = list(NLVR2_TEMPLATES)
    # Round r asks every template once; a template's label alternates from round to round and
    # neighbouring templates start on opposite labels, so every prefix stays balanced.
    plan = [(names[k % len(names)], (k // len(names) + k % len(names)) % 2 == 0) for k in range(n)]
    rng.shuffle(plan)
    return plan


def _per_split(train: int, held: int) -> dict[str, int]:
    return {"train": train, "val": held, "test": held, "test_ood": held}


@dataclass(frozen=True)
class BenchmarkSizes:
    """How much of each task to generate (defaults: about 10 s on 2 CPU cores).

    Attributes:
        images: Images per split (shared by VQA, GQA, captions and NLVR2 pairs).
        vqa_questions_per_image: VQA questions per image, 1-5.
        gqa_questions_per_image: GQA questions per image, 1-5.
        nlvr2_pairs: Statements (one per image pair) per split. Pairs reuse the
            image pool, so statements cost no feature extraction; a true/false label
            teaches grounding slowly, and 600 statements were too few to learn from.
        videos: Videos per split (shared by TVQA and TVC). Frames cost little (8 s of
            feature extraction for the default 1,140 videos), and the video tasks have
            the fewest examples: 960 videos give TVQA 3,840 training questions.
        frames_per_video: Frames per video, 2-64.
        tvqa_questions_per_video: TVQA questions per video, 1-4 (questions cost no
            frames, so the default asks the most).
    """

    images: dict[str, int] = field(default_factory=lambda: _per_split(1200, 150))
    vqa_questions_per_image: int = 2
    gqa_questions_per_image: int = 2
    nlvr2_pairs: dict[str, int] = field(default_factory=lambda: _per_split(2400, 300))
    videos: dict[str, int] = field(default_factory=lambda: _per_split(960, 60))
    frames_per_video: int = 8
    tvqa_questions_per_video: int = 4

    def problems(self) -> list[str]:
        """Every rule the sizes break (empty when valid)."""
        out = []
        for name in ("images", "nlvr2_pairs", "videos"):
            counts = getattr(self, name)
            if not isinstance(counts, dict) or set(counts) != set(SPLITS):
                out.append(f"{name} must map each of {list(SPLITS)} to a count, but got {counts!r}")
                continue
            out += [
                f"{name}[{s!r}] must be an int >= 1 (an empty split cannot be loaded), but got {n!r}"
                for s, n in counts.items()
                if not isinstance(n, int) or isinstance(n, bool) or n < 1
            ]
        if isinstance(self.images, dict) and any(isinstance(n, int) and n < 2 for n in self.images.values()):
            out.append(f"images needs at least 2 per split to form NLVR2 pairs, but got {self.images!r}")
        for name, low, high in (
            ("vqa_questions_per_image", 1, 5),
            ("gqa_questions_per_image", 1, 5),
            ("frames_per_video", 2, 64),
            ("tvqa_questions_per_video", 1, 4),
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                out.append(f"{name} must be an int in [{low}, {high}], but got {value!r}")
        return out


def generate_benchmark(root: Path, seed: int = 0, sizes: BenchmarkSizes | None = None, image_size: int = 64) -> Path:
    """Write the mini-VL benchmark to ``root``, or reuse an identical one.

    Built in a temporary sibling directory and renamed into place when
    complete; a previous benchmark with other arguments is replaced.

    Args:
        root: Benchmark directory (created; its parent must be writable).
        seed: Seed of every random choice.
        sizes: How much to generate; default :class:`BenchmarkSizes()`.
        image_size: Side of the square images and video frames in pixels, >= 16.

    Returns:
        ``root``, as a Path.

    Raises:
        ValueError: If an argument is out of range (all problems listed).
        tasks.errors.DatasetError: If ``root`` holds something this generator
            did not write.
    """
    sizes = sizes if sizes is not None else BenchmarkSizes()
    problems: list[str] = [] if isinstance(sizes, BenchmarkSizes) else [f"sizes must be a BenchmarkSizes, got {sizes!r}"]
    problems += sizes.problems() if not problems else []
    if not isinstance(seed, int) or isinstance(seed, bool):
        problems.append(f"seed must be an int, but got {seed!r}")
    if not isinstance(image_size, int) or image_size < 16:
        problems.append(f"image_size must be an int >= 16 pixels, but got {image_size!r}")
    if problems:
        raise ValueError("invalid generate_benchmark arguments: " + "; ".join(problems) + ".")
    manifest = _manifest(seed, sizes, image_size)
    return build_dataset(Path(root), manifest, GENERATOR, lambda out: _Writer(out, manifest).write(), lambda r: _is_complete(r, manifest))


def _manifest(seed: int, sizes: BenchmarkSizes, image_size: int) -> dict[str, Any]:
    counts = {
        split: {
            "images": sizes.images[split],
            "vqa_questions": sizes.images[split] * sizes.vqa_questions_per_image,
            "gqa_questions": sizes.images[split] * sizes.gqa_questions_per_image,
            "nlvr2_pairs": sizes.nlvr2_pairs[split],
            "videos": sizes.videos[split],
            "tvqa_questions": sizes.videos[split] * sizes.tvqa_questions_per_video,
        }
        for split in SPLITS
    }
    return {
        "generator": GENERATOR,
        "version": GENERATOR_VERSION,
        "seed": seed,
        "image_size": image_size,
        "sizes": asdict(sizes),
        "counts": counts,
        "held_out_pairs": sorted(list(p) for p in HELD_OUT_PAIRS),
        "task_splits": TASK_SPLITS,
    }


def _expected_files(manifest: dict[str, Any]) -> list[str]:
    files = ["coco/dataset_coco.json", "scenes.json", "tvqa/subtitles.jsonl", "tvc/subtitles.jsonl"]
    for split in SPLITS:
        files += [f"vqa/{name}" for name in vqa_files_of(split)]
        files += [f"gqa/{TASK_SPLITS['gqa'][split]}.json", f"nlvr/{TASK_SPLITS['nlvr2'][split]}.json"]
        files += [f"tvqa/{split}.jsonl", f"tvc/{split}.jsonl"]
    return files


def _is_complete(root: Path, manifest: dict[str, Any]) -> bool:
    if not all((root / name).is_file() for name in _expected_files(manifest)):
        return False
    sizes = manifest["sizes"]
    n_frames = sum(sizes["videos"].values()) * sizes["frames_per_video"]
    return (
        sum(1 for _ in (root / "images").glob("*.png")) == sum(sizes["images"].values())
        and sum(1 for _ in (root / "videos").glob("*/frame_*.png")) == n_frames
    )


def _scene_json(scene: Scene) -> list[list[Any]]:
    return [[o.shape, o.colour, o.size, o.x, o.y] for o in scene.objects]


class _Writer:
    """Writes one benchmark into an empty staging directory."""

    def __init__(self, out: Path, manifest: dict[str, Any]) -> None:
        self.out, self.manifest = out, manifest
        self.seed, self.size = manifest["seed"], manifest["image_size"]
        self.sizes = manifest["sizes"]
        self.truth: dict[str, Any] = {"images": {}, "videos": {}}

    def rng(self, *parts: object) -> random.Random:
        # Seeded by a string (hashed with SHA-512, stable across processes).
        return random.Random(":".join([GENERATOR, str(self.seed), *map(str, parts)]))

    def write(self) -> None:
        for name in ("images", "vqa", "gqa", "nlvr", "coco", "videos", "tvqa", "tvc"):
            (self.out / name).mkdir()
        coco_images: list[dict[str, Any]] = []
        subtitles: list[dict[str, Any]] = []
        for split_index, split in enumerate(SPLITS):
            pool = self._image_pool(split, split_index)
            self._write_image_tasks(split, pool, coco_images)
            self._write_nlvr2(split, pool)
            self._write_videos(split, split_index, subtitles)
        write_json(self.out / "coco" / "dataset_coco.json", {"dataset": "coco", "images": coco_images})
        write_jsonl(self.out / "tvqa" / "subtitles.jsonl", subtitles)
        write_jsonl(self.out / "tvc" / "subtitles.jsonl", subtitles)
        write_json(self.out / "scenes.json", self.truth)

    def _image_pool(self, split: str, split_index: int) -> list[tuple[int, str, Scene]]:
        pool = []
        for n in range(self.sizes["images"][split]):
            image_id = split_index * _ID_STRIDE + n + 1
            img_id = f"mini_{split}_{image_id:07d}"
            rng = self.rng("scene", split, n)
            scene = sample_scene(rng, forbidden_pairs=HELD_OUT_PAIRS)
            if split == "test_ood":
                scene = with_held_out_pair(scene, rng)
            render_scene(scene, self.size).save(self.out / "images" / f"{img_id}.png", format="PNG")
            self.truth["images"][img_id] = _scene_json(scene)
            pool.append((image_id, img_id, scene))
        return pool

    def _write_image_tasks(self, split: str, pool: list[tuple[int, str, Scene]], coco: list[dict[str, Any]]) -> None:
        vqa: VQARecords = ([], [], [])
        gqa = []
        for n, (image_id, img_id, scene) in enumerate(pool):
            add_vqa_records(vqa, scene, self.rng("vqa", split, n), image_id, img_id, self.sizes["vqa_questions_per_image"])
            rng = self.rng("gqa", split, n)
            asked: set = set()
            for k in range(self.sizes["gqa_questions_per_image"]):
                spec = ask_gqa(scene, rng, exclude=frozenset(asked))
                asked.add(spec.question)
                qid = str(image_id * 10 + k)  # GQA question ids are strings
                gqa.append({"img_id": img_id, "sent": spec.question, "question_id": qid, "label": {spec.answer: 1.0}})
            captions = caption_scene(scene, self.rng("caption", split, n))
            coco.append(
                {
                    "filename": f"{img_id}.png",
                    "imgid": len(coco),
                    "cocoid": image_id,
                    "split": split,
                    "sentids": [image_id * 10 + k for k in range(len(captions))],
                    "sentences": [
                        {"raw": c, "tokens": c.rstrip(".").replace(",", "").split(), "imgid": len(coco), "sentid": image_id * 10 + k}
                        for k, c in enumerate(captions)
                    ],
                }
            )
        write_vqa_split(self.out / "vqa", split, vqa)
        write_json(self.out / "gqa" / f"{TASK_SPLITS['gqa'][split]}.json", gqa)

    def _write_nlvr2(self, split: str, pool: list[tuple[int, str, Scene]]) -> None:
        name = TASK_SPLITS["nlvr2"][split]
        records = []
        plan = _nlvr2_plan(self.sizes["nlvr2_pairs"][split], self.rng("nlvr2-labels", split))
        for k, (template, label) in enumerate(plan):
            left_id, right_id, statement = self._nlvr2_statement(split, k, pool, template, label)
            records.append(
                {
                    "identifier": f"{name}-{k}-0-0",
                    "img0": left_id,
                    "img1": right_id,
                    "sent": statement,
                    "label": int(label),
                    "uid": f"nlvr2_{name}_{k}",
                }
            )
        write_json(self.out / "nlvr" / f"{name}.json", records)

    def _nlvr2_statement(self, split: str, k: int, pool: list[tuple[int, str, Scene]], template: str, label: bool) -> tuple[str, str, str]:
        """(img0, img1, statement) of statement k: a pair for which the template says `label`.

        The statement's words (colour, shape, side) are drawn once, from the same seed at every
        attempt, and only the pair is redrawn: words drawn until the truth matched would make
        common colours mark true statements. A pool too small for the words falls back to any
        template with redrawn words.
        """
        pairs = self.rng("nlvr2", split, k)
        for attempt in range(2 * _NLVR2_PAIR_TRIES):
            (_, left_id, left), (_, right_id, right) = pairs.sample(pool, 2)
            if attempt < _NLVR2_PAIR_TRIES:
                statement, truth = NLVR2_TEMPLATES[template](left, right, self.rng("nlvr2-words", split, k))
                found = statement if truth == label else None
            else:
                found = make_statement(left, right, pairs, label)
            if found is not None:
                return left_id, right_id, found
        raise RuntimeError(f"no NLVR2 statement with label {label} found for {split} pair {k}; enlarge the image pool")

    def _write_videos(self, split: str, split_index: int, subtitles: list[dict[str, Any]]) -> None:
        tvqa, tvc = [], []
        for n in range(self.sizes["videos"][split]):
            number = split_index * _ID_STRIDE + n + 1
            vid_name = f"mini_{split}_v{number:07d}"
            rng = self.rng("video", split, n)
            clip = sample_clip(rng, self.sizes["frames_per_video"], held_out=split == "test_ood")
            self._save_frames(vid_name, clip)
            speaker, pointed, subs = subtitles_for(clip, rng)
            subtitles.append({"vid_name": vid_name, "sub": subs})
            ts = [0.0, clip.duration]
            asked: set[str] = set()
            for k in range(self.sizes["tvqa_questions_per_video"]):
                for _ in range(20):  # distinct questions per video
                    question = ask_video(clip, rng, pointed, speaker)
                    if question.question not in asked:
                        break
                asked.add(question.question)
                record = {"vid_name": vid_name, "qid": number * 10 + k, "q": question.question}
                record.update({f"a{i}": c for i, c in enumerate(question.choices)})
                record.update({"answer_idx": question.answer_idx, "ts": ts})
                tvqa.append(record)
            descs = [{"desc": d} for d in caption_clip(clip, rng)]
            tvc.append({"vid_name": vid_name, "clip_id": number, "ts": ts, "duration": clip.duration, "descs": descs})
        write_jsonl(self.out / "tvqa" / f"{split}.jsonl", tvqa)
        write_jsonl(self.out / "tvc" / f"{split}.jsonl", tvc)

    def _save_frames(self, vid_name: str, clip: VideoClip) -> None:
        directory = self.out / "videos" / vid_name
        directory.mkdir()
        for t, frame in enumerate(clip.render(self.size)):
            frame.save(directory / f"frame_{t:03d}.png", format="PNG")
        self.truth["videos"][vid_name] = {"objects": _scene_json(clip.scene), "motions": list(clip.motions)}
