"""Tasks prepared for training: text examples, images, the official metric, a baseline.

A task of a study's data description (tasks.data_spec) is read by its format's reader, one
per file layout (the four image layouts and the generic JSONL here, the video layouts in
training.video_task_readers), and assembled by :func:`assemble` into a :class:`PreparedTask`: the
training examples, and each evaluation split with its official metric and its results rows.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, Sequence, TypeVar

from tasks import (
    caption_majority_baseline,
    caption_metrics,
    gqa_accuracy,
    gqa_majority_baseline,
    load_caption_split,
    load_gqa_split,
    load_nlvr2_split,
    load_vqa_split,
    majority_baseline_accuracy,
    nlvr2_accuracy,
    nlvr2_majority_baseline,
    reported_score,
    vqa_accuracy,
)
from tasks.baselines import majority_answer
from tasks.custom import accepted_answers, load_custom_jsonl
from tasks.errors import DatasetError
from tasks.examples import VideoSource
from training.task_prompt import TaskPrompt, task_prompt
from training.text_examples import TextExample

K = TypeVar("K")
V = TypeVar("V")

# The paper's task prefixes (PAPER.md §1), by format; a JSONL task's prefix is its own name.
TASK_PREFIXES = {
    "vqa": "vqa: ",
    "gqa": "gqa: ",
    "nlvr2": "nlvr: ",
    "caption": "caption: ",
    "tvqa": "tvqa: ",
    "how2qa": "how2qa: ",
    "tvc": "tvc: ",
    "yc2c": "yc2c: ",
}

# Formats whose targets are captions: the encoder sees the prefix, never a question.
CAPTION_FORMATS = ("caption", "tvc", "yc2c")

Predictions = Mapping[Any, str]


def on_keys(truth: Mapping[K, V], predictions: Mapping[K, object]) -> dict[K, V]:
    """The ground truth of the predicted examples only."""
    return {key: truth[key] for key in predictions}


@dataclass(frozen=True)
class ScoredSplit:
    """One evaluation split: its examples, its official metric and its results format.

    Attributes:
        examples: the split's examples, in file order.
        score: predictions by example key -> the official metric, 0-100, over the examples
            predicted (a key the split does not have raises KeyError).
        results: predictions by example key -> rows of the task's official results file.
    """

    examples: list[TextExample]
    score: Callable[[Predictions], float]
    results: Callable[[Predictions], list[dict]]


@dataclass(frozen=True)
class PreparedTask:
    """One task ready to train and score.

    Attributes:
        name: task name, also the PETL task key.
        train: training examples.
        splits: the evaluation splits by canonical name ("val", "test"; the generated
            benchmark's "test_ood" on request).
        search_split: the split search trials are scored on.
        image_paths: every image the examples of every split see, by img_id.
        majority_baseline: the score of always answering the most frequent training answer,
            on the search split.
        max_target_tokens: targets are truncated to this many tokens; generation stops there.
        videos: every video the examples see, by vid_name (video tasks; their img_ids are
            vid_names).
        max_source_tokens: encoder-text truncation when the task needs more than the
            training config's default (video QA reads its choices and subtitles).
        format: the data format the task was read from.
        sampling_weight: multiplies the task's share of training steps.
        search_examples: a search scores at most this many examples of the search split.
        prompt: how to ask the task about new inputs (a run folder records it).
    """

    name: str
    train: list[TextExample]
    splits: Mapping[str, ScoredSplit]
    search_split: str
    image_paths: Mapping[str, Path]
    majority_baseline: float
    max_target_tokens: int = 6
    videos: Mapping[str, VideoSource] = field(default_factory=dict)
    max_source_tokens: int | None = None
    format: str = ""
    sampling_weight: float = 1.0
    search_examples: int | None = None
    prompt: TaskPrompt | None = None

    @property
    def evaluation(self) -> list[TextExample]:
        """The search split's examples (all of them; a search caps them at `search_examples`)."""
        return self.splits[self.search_split].examples

    @property
    def score(self) -> Callable[[Predictions], float]:
        return self.splits[self.search_split].score

    def limited(self, examples: int | None) -> "PreparedTask":
        """The same task scoring only the first `examples` of its search split (None: all)."""
        split = self.splits[self.search_split]
        shorter = dataclasses.replace(split, examples=split.examples[:examples])
        return dataclasses.replace(self, splits={**self.splits, self.search_split: shorter})


class FormatReader(Protocol):
    """What one data format contributes: how its splits are named and read, and scored.

    `read(split)` returns the format's own examples (tasks.examples); the other methods turn
    them into text examples, the official metric, the baseline and official results rows.
    """

    # Read-only members: the readers are frozen dataclasses or set these as class attributes.
    @property
    def split_names(self) -> Mapping[str, str]: ...  # canonical split -> the format's own name
    @property
    def max_target_tokens(self) -> int: ...
    @property
    def max_source_tokens(self) -> int | None: ...

    def read(self, split: str) -> list: ...
    def to_text(self, example: Any) -> TextExample: ...
    def scorer(self, examples: list) -> Callable[[Predictions], float]: ...
    def results(self, examples: list) -> Callable[[Predictions], list[dict]]: ...
    def baseline(self, train: list, evaluation: list) -> float: ...
    def media(self, examples: list) -> tuple[dict[str, Path], dict[str, VideoSource]]: ...


def assemble(
    name: str,
    fmt: str,
    reader: FormatReader,
    eval_splits: Sequence[str] = ("val",),
    search_split: str = "val",
    train_examples: int | None = None,
    weight: float = 1.0,
    search_examples: int | None = None,
) -> PreparedTask:
    """Read a task's training split and `eval_splits` with `reader` into a PreparedTask.

    Raises:
        tasks.DatasetError: every file's problem, one line each (each file's first defect;
            a JSONL file lists all of its bad records).
    """
    loaded, problems = {}, []
    for split in dict.fromkeys(("train", *eval_splits)):
        try:
            loaded[split] = reader.read(reader.split_names[split])
        except DatasetError as error:
            problems.append(str(error))
    if problems:
        raise DatasetError("\n".join(problems))
    train = loaded["train"][:train_examples] if train_examples else loaded["train"]
    images: dict[str, Path] = {}
    videos: dict[str, VideoSource] = {}
    for examples in loaded.values():
        found_images, found_videos = reader.media(examples)
        images.update(found_images)
        videos.update(found_videos)
    splits = {
        split: ScoredSplit([reader.to_text(e) for e in loaded[split]], reader.scorer(loaded[split]), reader.results(loaded[split]))
        for split in eval_splits
    }
    train_texts = [text for text in map(reader.to_text, train) if text.targets]
    kind = getattr(reader, "kind", None) or ("caption" if fmt in CAPTION_FORMATS else "qa")
    prompt = task_prompt(
        getattr(reader, "prefix", ""),
        kind,
        train_texts,
        reader.results(loaded["train"]),
        bool(videos),
        reader.max_target_tokens,
        reader.max_source_tokens,
    )
    return PreparedTask(
        name=name,
        train=train_texts,
        splits=splits,
        search_split=search_split,
        image_paths=images,
        majority_baseline=reader.baseline(train, loaded[search_split]),
        max_target_tokens=reader.max_target_tokens,
        videos=videos,
        max_source_tokens=reader.max_source_tokens,
        format=fmt,
        sampling_weight=weight,
        search_examples=search_examples,
        prompt=prompt,
    )


def _image_media(examples: list) -> tuple[dict[str, Path], dict[str, VideoSource]]:
    images: dict[str, Path] = {}
    for e in examples:
        ids = getattr(e, "img_ids", None) or (e.img_id,)
        paths = getattr(e, "image_paths", None) or (e.image_path,)
        images.update(zip(ids, paths))
    return images, {}


@dataclass(frozen=True)
class VQAReader:
    """VQA v2 in the Karpathy layout; scored by the official VQA accuracy."""

    root: Path
    folder: Path | None = None
    images: Path | None = None
    prefix: str = TASK_PREFIXES["vqa"]
    split_names: Mapping[str, str] = field(default_factory=lambda: {"train": "train", "val": "val", "test": "test", "test_ood": "test_ood"})
    max_target_tokens: int = 6
    max_source_tokens: int | None = None

    def read(self, split: str) -> list:
        examples = load_vqa_split(self.root, split, images_dir=self.images, folder=self.folder)
        unanswered = [e.question_id for e in examples if not e.answers]
        if split != "train" and unanswered:
            folder = self.folder or self.root / "vqa"
            raise DatasetError(
                f"{folder / f'v2_mscoco_{split}_annotations.json'}: {len(unanswered)} questions of karpathy_{split}.json "
                f"(e.g. question_id={unanswered[0]}) have no annotator answers there; the official VQA metric needs "
                "them: add the official annotations file for this split"
            )
        return examples

    def to_text(self, example) -> TextExample:
        # Questions no annotator answered alike have no positive target: nothing to train on.
        targets = tuple(a for a, s in example.label.items() if s > 0)
        return TextExample(
            example.question_id, (example.img_id,), self.prefix + example.question, targets, tuple(example.label[a] for a in targets)
        )

    def scorer(self, examples: list) -> Callable[[Predictions], float]:
        raw_answers = {e.question_id: e.answers for e in examples}
        return lambda predictions: vqa_accuracy(predictions, on_keys(raw_answers, predictions))

    def results(self, examples: list) -> Callable[[Predictions], list[dict]]:
        return lambda predictions: [{"question_id": key, "answer": answer} for key, answer in predictions.items()]

    def baseline(self, train: list, evaluation: list) -> float:
        return majority_baseline_accuracy(train, evaluation)

    media = staticmethod(_image_media)


@dataclass(frozen=True)
class GQAReader:
    """GQA in the VL-T5 layout; scored by exact match after the GQA normalisation."""

    root: Path
    folder: Path | None = None
    images: Path | None = None
    prefix: str = TASK_PREFIXES["gqa"]
    split_names: Mapping[str, str] = field(
        default_factory=lambda: {"train": "train", "val": "valid", "test": "testdev", "test_ood": "testdev_ood"}
    )
    max_target_tokens: int = 6
    max_source_tokens: int | None = None

    def read(self, split: str) -> list:
        return load_gqa_split(self.root, split, images_dir=self.images, folder=self.folder)

    def to_text(self, e) -> TextExample:
        targets = tuple(e.label)
        return TextExample(e.question_id, e.img_ids, self.prefix + e.question, targets, tuple(e.label[a] for a in targets))

    def scorer(self, examples: list) -> Callable[[Predictions], float]:
        labels = {e.question_id: e.label for e in examples}
        return lambda predictions: gqa_accuracy(predictions, on_keys(labels, predictions))

    def results(self, examples: list) -> Callable[[Predictions], list[dict]]:
        # The VL-T5 GQA evaluator's submission format.
        return lambda predictions: [{"questionId": key, "prediction": answer} for key, answer in predictions.items()]

    def baseline(self, train: list, evaluation: list) -> float:
        return gqa_majority_baseline(train, evaluation)

    media = staticmethod(_image_media)


NLVR2_CHOICES = ("true", "false")
# A statement names both images and its attributes at the end ("... contains exactly two
# triangles."); the default 24 tokens cut the attribute off where a small vocabulary spells
# words out letter by letter, which left most generated statements unanswerable.
NLVR2_SOURCE_TOKENS = 48


@dataclass(frozen=True)
class NLVR2Reader:
    """NLVR2: two images per example, target "true"/"false"; scored by accuracy.

    Evaluation compares the log-likelihoods of "true" and "false" (PAPER.md §1).
    """

    root: Path
    folder: Path | None = None
    images: Path | None = None
    prefix: str = TASK_PREFIXES["nlvr2"]
    split_names: Mapping[str, str] = field(
        default_factory=lambda: {"train": "train", "val": "valid", "test": "test", "test_ood": "test_ood"}
    )
    max_target_tokens: int = 8  # "false" is 7 tokens where a small vocabulary spells it out
    max_source_tokens: int | None = NLVR2_SOURCE_TOKENS

    def read(self, split: str) -> list:
        return load_nlvr2_split(self.root, split, images_dir=self.images, folder=self.folder)

    def to_text(self, e) -> TextExample:
        return TextExample(e.identifier, e.img_ids, self.prefix + e.statement, (e.target,), (1.0,), choices=NLVR2_CHOICES)

    def scorer(self, examples: list) -> Callable[[Predictions], float]:
        labels = {e.identifier: e.label for e in examples}
        return lambda predictions: nlvr2_accuracy(predictions, on_keys(labels, predictions))

    def results(self, examples: list) -> Callable[[Predictions], list[dict]]:
        return lambda predictions: [{"identifier": key, "prediction": answer} for key, answer in predictions.items()]

    def baseline(self, train: list, evaluation: list) -> float:
        return nlvr2_majority_baseline(train, evaluation)

    media = staticmethod(_image_media)


def _caption_scorer(references: Mapping[Any, Sequence[str]]) -> Callable[[Predictions], float]:
    def score(predictions: Predictions) -> float:
        return reported_score("caption", caption_metrics(on_keys(references, predictions), predictions, ("CIDEr",)))

    return score


@dataclass(frozen=True)
class CaptionReader:
    """COCO Karpathy captions; scored by CIDEr x 100 (pycocoevalcap, needs Java).

    Training samples one of an image's references uniformly (VL-T5 trains on every
    reference; with uniform weights the expected loss is the same).
    """

    root: Path
    folder: Path | None = None
    images: Path | None = None
    prefix: str = TASK_PREFIXES["caption"]
    split_names: Mapping[str, str] = field(default_factory=lambda: {"train": "train", "val": "val", "test": "test", "test_ood": "test_ood"})
    max_target_tokens: int = 40  # the generated world's captions list up to four objects
    max_source_tokens: int | None = None

    def read(self, split: str) -> list:
        return load_caption_split(self.root, split, images_dir=self.images, folder=self.folder)

    def to_text(self, e) -> TextExample:
        return TextExample(e.image_id, (e.img_id,), self.prefix, e.references, (1.0,) * len(e.references))

    def scorer(self, examples: list) -> Callable[[Predictions], float]:
        return _caption_scorer({e.image_id: e.references for e in examples})

    def results(self, examples: list) -> Callable[[Predictions], list[dict]]:
        return lambda predictions: [{"image_id": key, "caption": caption} for key, caption in predictions.items()]

    def baseline(self, train: list, evaluation: list) -> float:
        return caption_majority_baseline(train, evaluation)

    media = staticmethod(_image_media)


@dataclass(frozen=True)
class JSONLReader:
    """A user's generic JSONL task (tasks.custom): QA scored by exact match after the GQA
    normalisation against any listed answer, or captioning scored by CIDEr x 100.

    Image ids are made unique to the task (`<task>:<path>`), since two tasks' files may
    both say "images/1.jpg" about different images.
    """

    name: str
    files: Mapping[str, Path]  # canonical split -> the JSONL file
    split_names: Mapping[str, str] = field(default_factory=lambda: {"train": "train", "val": "val", "test": "test"})
    max_source_tokens: int | None = None

    @property
    def prefix(self) -> str:
        return f"{self.name}: "

    @property
    def max_target_tokens(self) -> int:
        return 40 if self.kind == "caption" else 16

    @cached_property
    def kind(self) -> str:
        """ "qa" or "caption", as the training file says (every split must agree)."""
        return load_custom_jsonl(self.files["train"]).kind

    def read(self, split: str) -> list:
        dataset = load_custom_jsonl(self.files[split])
        if split != "train" and dataset.kind != self.kind:
            raise DatasetError(
                f"{self.files[split]} holds {dataset.kind} examples but {self.files['train']} holds {self.kind} "
                "examples; every split of a task holds the same kind"
            )
        return [self._own_ids(e) for e in dataset.examples]

    def _own_ids(self, example):
        if hasattr(example, "img_ids"):
            return dataclasses.replace(example, img_ids=tuple(f"{self.name}:{i}" for i in example.img_ids))
        return dataclasses.replace(example, img_id=f"{self.name}:{example.img_id}")

    def to_text(self, e) -> TextExample:
        if hasattr(e, "references"):
            return TextExample(e.image_id, (e.img_id,), self.prefix, e.references, (1.0,) * len(e.references))
        targets = tuple(e.label)
        return TextExample(
            e.question_id, e.img_ids, self.prefix + e.question, targets, tuple(e.label[a] for a in targets), choices=e.choices
        )

    def scorer(self, examples: list) -> Callable[[Predictions], float]:
        if examples and hasattr(examples[0], "references"):
            return _caption_scorer({e.image_id: e.references for e in examples})
        accepted = {e.question_id: accepted_answers(e) for e in examples}
        return lambda predictions: gqa_accuracy(predictions, on_keys(accepted, predictions))

    def results(self, examples: list) -> Callable[[Predictions], list[dict]]:
        field_name = "caption" if self.kind == "caption" else "answer"
        return lambda predictions: [{"id": key, field_name: text} for key, text in predictions.items()]

    def baseline(self, train: list, evaluation: list) -> float:
        if train and hasattr(train[0], "references"):
            return caption_majority_baseline(train, evaluation)
        answer = majority_answer(train)
        return self.scorer(evaluation)({e.question_id: answer for e in evaluation})

    media = staticmethod(_image_media)


def prepare_vqa(root: Path, eval_split: str = "val") -> PreparedTask:
    """The generated VQA task (kept for scripts that read a benchmark root directly)."""
    return assemble("vqa", "vqa", VQAReader(root), (eval_split,), eval_split)


def prepare_gqa(root: Path, eval_split: str = "val") -> PreparedTask:
    return assemble("gqa", "gqa", GQAReader(root), (eval_split,), eval_split)


def prepare_nlvr2(root: Path, eval_split: str = "val") -> PreparedTask:
    return assemble("nlvr2", "nlvr2", NLVR2Reader(root), (eval_split,), eval_split)


def prepare_caption(root: Path, eval_split: str = "val") -> PreparedTask:
    return assemble("caption", "caption", CaptionReader(root), (eval_split,), eval_split)
