"""How to ask a trained task about new inputs, without its dataset.

A run folder records one `TaskPrompt` per task (training.run_folder), so that a model loaded from the
folder answers a new image and question as it answered the task's own examples: the same
encoder text (the task's prefix), the same number of images, the same fixed answer set, the
same results rows. Video tasks record theirs too, but a video's encoder text carries its
subtitles and its features come from its frames: they are predicted from a data file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from training.text_examples import TextExample

# Markers put through a task's results function to learn where its rows put the id and the text.
_KEY_MARK = "\x00key\x00"
_TEXT_MARK = "\x00text\x00"


@dataclass(frozen=True)
class TaskPrompt:
    """What a task's encoder sees and how its predictions are written.

    Attributes:
        prefix: the encoder text before the question ("vqa: "; a JSONL task's own name).
        kind: "qa" (the text is a question or statement) or "caption" (the text is ignored).
        images: images per example (2 for NLVR2).
        choices: the task's fixed answer set ("true"/"false"), answered by the most likely
            choice rather than free generation; () when answers are generated.
        results_row: one row of the task's official results file, with the example's id and
            the predicted text replaced by the markers `_KEY_MARK` / `_TEXT_MARK`.
        video: the task reads videos (not predictable from an image and a question).
        max_target_tokens: generation stops after this many tokens.
        max_source_tokens: encoder-text truncation when the task needs more than the default.
    """

    prefix: str
    kind: str
    images: int
    choices: tuple[str, ...]
    results_row: Mapping[str, Any]
    video: bool = False
    max_target_tokens: int = 6
    max_source_tokens: int | None = None

    def example(self, key: int | str, img_ids: tuple[str, ...], text: str = "", choices: tuple[str, ...] = ()) -> TextExample:
        """The model input for one new example (no target: it is only predicted)."""
        source = self.prefix if self.kind == "caption" else self.prefix + text
        return TextExample(key, img_ids, source, (), (), choices=choices or self.choices)

    def results(self, predictions: Mapping[int | str, str]) -> list[dict]:
        """The official results rows of `predictions` (example key -> text), in their order."""
        return [_fill(self.results_row, key, text) for key, text in predictions.items()]

    def to_dict(self) -> dict[str, Any]:
        return {
            "prefix": self.prefix,
            "kind": self.kind,
            "images": self.images,
            "choices": list(self.choices),
            "results_row": dict(self.results_row),
            "video": self.video,
            "max_target_tokens": self.max_target_tokens,
            "max_source_tokens": self.max_source_tokens,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TaskPrompt":
        """Raises KeyError or TypeError: a field missing or of the wrong type (the caller names the file)."""
        prompt = cls(
            prefix=str(data["prefix"]),
            kind=str(data["kind"]),
            images=int(data["images"]),
            choices=tuple(str(c) for c in data["choices"]),
            results_row=dict(data["results_row"]),
            video=bool(data["video"]),
            max_target_tokens=int(data["max_target_tokens"]),
            max_source_tokens=None if data["max_source_tokens"] is None else int(data["max_source_tokens"]),
        )
        if prompt.kind not in ("qa", "caption") or prompt.images < 1:
            raise TypeError(f"kind must be 'qa' or 'caption' and images >= 1, got kind={prompt.kind!r}, images={prompt.images}")
        return prompt


def task_prompt(
    prefix: str,
    kind: str,
    train: list[TextExample],
    results: Callable[[Mapping[Any, str]], list[dict]],
    video: bool,
    max_target_tokens: int,
    max_source_tokens: int | None,
) -> TaskPrompt:
    """A task's prompt, read off its training examples and its results function.

    The results row is learnt by passing markers through the task's own results function, so
    every format's row (VQA's question_id/answer, NLVR2's identifier/prediction, VALUE's nested
    descs) is recorded by the code that writes it rather than by a second table that could drift.
    """
    first = train[0] if train else None
    shared = first.choices if first is not None and all(e.choices == first.choices for e in train) else ()
    try:
        rows = results({_KEY_MARK: _TEXT_MARK})
    except (KeyError, ValueError):  # a format whose rows need the example (VALUE QA's choice index)
        rows = []
    row = rows[0] if len(rows) == 1 and _holds_marks(rows[0]) else {"id": _KEY_MARK, "answer": _TEXT_MARK}
    images = len(first.img_ids) if first is not None else 1
    return TaskPrompt(prefix, kind, images, shared, row, video, max_target_tokens, max_source_tokens)


def _holds_marks(row: Any) -> bool:
    text = repr(row)
    return repr(_KEY_MARK) in text and repr(_TEXT_MARK) in text


def _fill(template: Any, key: int | str, text: str) -> Any:
    if isinstance(template, dict):
        return {name: _fill(value, key, text) for name, value in template.items()}
    if isinstance(template, list):
        return [_fill(value, key, text) for value in template]
    if template == _KEY_MARK:
        return key
    if template == _TEXT_MARK:
        return text
    return template
