"""Load a run folder onto its backbone and answer new questions with it.

    run = load_run("data/runs/best")                       # the backbone's weights from ./data
    run.predict(images=["cat.jpg"], texts=["what animal is this?"], task="vqa")      # ["cat"]
    run.predict(images=["cat.jpg", "dog.jpg"], task="caption")                        # two captions
    run.predict(images=[("left.jpg", "right.jpg")], texts=["both show dogs."], task="nlvr2")

Loading reads the folder's weights with safetensors (nothing is unpickled) and refuses a
backbone whose weight files differ from the ones the run trained on.
"""

from __future__ import annotations

import functools
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from core.data_dir import default_data_dir
from models.build import build_vl_model
from models.config import ConfigError, TrialConfig
from models.features import FeatureTable, UnreadableImageError, extract
from models.location import BackboneLocation
from models.visual_encoder import build_visual_encoder
from models.vl_model import VLSeq2Seq
from models.weight_digests import DIGEST_KEYS, weight_digests
from models.weights import load_trainable
from training.run_folder import RunFolder, RunFolderError, read_run_folder
from training.batches import Collator
from training.environment import default_device
from training.evaluate import generate_answers
from training.task_prompt import TaskPrompt
from training.visual_inputs import PixelTable, VisualInputs

ImageInput = Any  # a path (str or Path) or a PIL image
FEATURE_BATCH = 64  # images per CLIP call, as the feature cache extracts them


@dataclass
class LoadedRun:
    """A trained model with what it needs to answer: tokenizer, task prompts, device.

    Attributes:
        folder: the checked run folder.
        config: the trained configuration.
        model: the model with the run's weights, in eval mode on `device`.
        tokenizer: the run's tokenizer.
        location: where the backbone's weights were found.
    """

    folder: RunFolder
    config: TrialConfig
    model: VLSeq2Seq
    tokenizer: PreTrainedTokenizerBase
    location: BackboneLocation
    device: torch.device

    @property
    def tasks(self) -> tuple[str, ...]:
        return self.config.tasks

    def prompt(self, task: str | None) -> tuple[str, TaskPrompt]:
        """The task to answer (the only one when None) and its prompt.

        Raises:
            ValueError: a task the run was not trained on, or None for a run of several tasks.
        """
        if task is None:
            if len(self.tasks) != 1:
                raise ValueError(f"this run serves tasks {list(self.tasks)}; pass task= one of them")
            task = self.tasks[0]
        if task not in self.tasks or task not in self.folder.prompts:
            raise ValueError(f"task {task!r} is not a task of the run {str(self.folder.path)!r}; its tasks: {', '.join(self.tasks)}")
        return task, self.folder.prompts[task]

    def predict(
        self,
        images: Sequence[ImageInput | Sequence[ImageInput]],
        texts: Sequence[str] | None = None,
        task: str | None = None,
        choices: Sequence[Sequence[str]] | None = None,
        batch_size: int | None = None,
        show_progress: bool = False,
    ) -> list[str]:
        """Answer each (images, text) pair, or caption each image, as the task was trained to.

        Args:
            images: one image per example (a path or a PIL image), or a tuple of them for a
                task that sees several (NLVR2: two).
            texts: the question or statement of each example; None for captioning.
            task: which of the run's tasks; may be left out for a run of one task.
            choices: each example's answer options, for a task whose examples offer them
                (the most likely one is picked); the task's fixed set (NLVR2's) by default.
            batch_size: examples per generation call (default: the recipe's eval batch size).

        Returns:
            One answer or caption per example, in order.

        Raises:
            ValueError: unknown task, a video task, mismatched lengths, a wrong number of
                images per example, or an image that does not decode (the message names it).
        """
        name, prompt = self.prompt(task)
        if prompt.video:
            raise ValueError(
                f"task {name!r} reads videos; predict it from a data file: python -m search.predict --run DIR --data DATA.yaml"
            )
        groups = [tuple(item) if isinstance(item, (tuple, list)) else (item,) for item in images]
        if texts is not None and len(texts) != len(groups):
            raise ValueError(f"got {len(groups)} images but {len(texts)} texts; give one text per example")
        if texts is None and prompt.kind == "qa":
            raise ValueError(f"task {name!r} answers questions; pass texts= (one question or statement per example)")
        if choices is not None and len(choices) != len(groups):
            raise ValueError(f"got {len(groups)} examples but {len(choices)} choice lists; give one per example")
        wrong = [n for n, group in enumerate(groups) if len(group) != prompt.images]
        if wrong:
            raise ValueError(f"task {name!r} sees {prompt.images} image(s) per example, but example {wrong[0]} has {len(groups[wrong[0]])}")
        if not groups:
            return []
        with tempfile.TemporaryDirectory(prefix="vlpetl-predict-") as scratch:
            paths = _image_files(groups, Path(scratch))
            visual = self._visual_inputs(paths)
            examples = [
                prompt.example(
                    n,
                    tuple(f"image{paths.index_of(image)}" for image in group),
                    texts[n] if texts is not None else "",
                    tuple(choices[n]) if choices is not None else (),
                )
                for n, group in enumerate(groups)
            ]
            collator = Collator(
                self.tokenizer, visual, self.config.training.max_source_tokens, pixels=self.model.visual_encoder is not None
            )
            answers = generate_answers(
                self.model,
                collator,
                examples,
                name,
                batch_size or self.config.training.eval_batch_size,
                prompt.max_target_tokens,
                self.device,
                show_progress=show_progress,
                max_source_tokens=prompt.max_source_tokens,
                precision=self.config.training.precision,
            )
        return [answers[n] for n in range(len(groups))]

    @functools.cached_property
    def _encoder(self):
        # Built once per loaded run: each predict call reuses it.
        return build_visual_encoder(self.location)

    def _visual_inputs(self, paths: "_ImageFiles") -> VisualInputs:
        by_id = {f"image{n}": path for n, path in enumerate(paths.files)}
        if self.model.visual_encoder is not None:  # a CLIP that trained reads pixels, as in training
            return VisualInputs(pixels=PixelTable(by_id, lambda: build_visual_encoder(self.location)[1], self.location.preset.grid**2))
        encoder, preprocess = self._encoder
        try:
            # On the CPU, in batches of the cache's size: the features training read came so.
            table: FeatureTable = extract(encoder, preprocess, by_id, FEATURE_BATCH, decode_workers=0)
        except UnreadableImageError as error:
            raise ValueError(str(error)) from None
        return VisualInputs(images=table)


class _ImageFiles:
    """The distinct images of a request as files: paths as given, PIL images saved losslessly."""

    def __init__(self) -> None:
        self.files: list[Path] = []
        self._index: dict[int | str, int] = {}

    def add(self, image: ImageInput, scratch: Path) -> None:
        key: int | str = str(Path(image).resolve()) if isinstance(image, (str, Path)) else id(image)
        if key in self._index:
            return
        if isinstance(image, (str, Path)):
            if not Path(image).is_file():
                raise ValueError(f"image {str(image)!r} does not exist; give the path of an image file")
            path = Path(image)
        elif hasattr(image, "save") and hasattr(image, "convert"):  # a PIL image: PNG keeps every pixel
            path = scratch / f"image{len(self.files)}.png"
            image.convert("RGB").save(path)
        else:
            raise ValueError(f"images must be paths or PIL images, got {type(image).__name__}")
        self._index[key] = len(self.files)
        self.files.append(path)

    def index_of(self, image: ImageInput) -> int:
        return self._index[str(Path(image).resolve()) if isinstance(image, (str, Path)) else id(image)]


def _image_files(groups: Sequence[tuple[ImageInput, ...]], scratch: Path) -> _ImageFiles:
    files = _ImageFiles()
    for group in groups:
        for image in group:
            files.add(image, scratch)
    return files


def load_run(path: str | Path, data_dir: str | Path | None = None, device: str | torch.device | None = None) -> LoadedRun:
    """Load a run folder written by `python -m search.train` onto its backbone.

    Args:
        path: the run folder.
        data_dir: where the backbone's weights are (`$VLPETL_DATA_DIR`, else ./data), as for
            the search that trained it.
        device: "cpu", "cuda", "cuda:1", ...; CUDA when present by default.

    Raises:
        RunFolderError: the folder is incomplete or changed, its recipe does not build, its
            weights do not fit the recipe, or the backbone's weights are missing or differ
            from the ones the run trained on (the message names the file and the fix).
    """
    folder = read_run_folder(Path(path))
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    try:
        config = TrialConfig.from_dict(folder.recipe["config"])
        location = BackboneLocation.resolve(config.backbone, data_dir, random_init=bool(folder.backbone.get("random_init")))
        location.require_weights()
    except ConfigError as error:
        raise RunFolderError(f"{folder.path / 'recipe.json'}: " + "; ".join(error.problems)) from None
    _check_backbone(folder, location, data_dir)
    model, tokenizer = build_vl_model(config, location)
    try:
        load_trainable(model, folder.weights)
    except ValueError as error:
        raise RunFolderError(f"{error} (the run folder's weights do not fit its recipe.json; train the run again)") from None
    # The run's own tokenizer; the backbone's, as built, for a folder written without one.
    if folder.tokenizer.is_dir():
        tokenizer = AutoTokenizer.from_pretrained(str(folder.tokenizer))
    assert tokenizer is not None, "build_vl_model gives a tokenizer off the meta device"
    target = torch.device(device) if device is not None else default_device()
    model.to(target).eval()
    return LoadedRun(folder, config, model, tokenizer, location, target)


def _check_backbone(folder: RunFolder, location: BackboneLocation, data_dir: Path) -> None:
    found = weight_digests(location)
    for key in DIGEST_KEYS:
        if folder.backbone.get(key) != found[key]:
            component = key.removesuffix("_sha256").replace("_", " ")
            where = {
                "clip_weights_sha256": location.clip_checkpoint,
                "language_model_weights_sha256": location.language_model,
                "vl_projection_sha256": location.vl_projection,
            }[key]
            run, digest = str(folder.path), str(folder.backbone.get(key))[:12]
            state = (
                f"is missing (the run {run!r} trained on sha256 {digest}...)"
                if found[key] is None
                else f"differs from the one the run {run!r} trained on (sha256 {digest}...)"
            )
            raise RunFolderError(
                f"backbone {location.preset.name!r} in {str(data_dir)!r}: its {component} ({where}) {state}; "
                "point --data-dir (data_dir=) at the data folder the run was trained with, or copy that backbone here"
            )
