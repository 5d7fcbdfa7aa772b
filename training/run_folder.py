"""The run folder: what `python -m search.train` writes, and the checks that read it back.

    OUT/recipe.json                        the recipe as trained (config, data description, origin)
    OUT/trainable.safetensors              the trained weights (models.weights; the config in its metadata)
    OUT/tokenizer/                         the language model's tokenizer (save_pretrained)
    OUT/metrics.json                       {"val": {TASK: score}, "test": {TASK: score}, ...}
    OUT/curve.json                         the training curve: loss per 20 steps, scheduled evaluations
    OUT/predictions/<split>/<task>.json    val and test predictions in each task's results format
    OUT/run.json                           the manifest, written last: the backbone's identity and
                                           weight digests, each task's prompt, the software
                                           environment, and the SHA-256 of every file above

A folder without `run.json` is unfinished. Loading needs only the folder and the backbone's
weights, which are checked against the digests the run recorded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from models.embedded_digests import file_digests
from models.features import file_digest
from tasks._files import write_atomic
from training.task_prompt import TaskPrompt

MANIFEST = "run.json"
RECIPE = "recipe.json"
WEIGHTS = "trainable.safetensors"
TOKENIZER = "tokenizer"
METRICS = "metrics.json"
CURVE = "curve.json"
FORMAT = "vlpetl-run/1"
# What a folder must hold to load; the manifest's digests cover these and the predictions.
REQUIRED = (RECIPE, WEIGHTS, METRICS)


class RunFolderError(ValueError):
    """A run folder that cannot be used: the message names the file and the fix."""


@dataclass(frozen=True)
class RunFolder:
    """A run folder whose files are all present and match the manifest's digests.

    Attributes:
        path: the folder.
        recipe: the recipe as trained (`config` is the TrialConfig's dict).
        manifest: `run.json`.
        prompts: each task's TaskPrompt, by task name.
    """

    path: Path
    recipe: Mapping[str, Any]
    manifest: Mapping[str, Any]
    prompts: Mapping[str, TaskPrompt]

    @property
    def weights(self) -> Path:
        return self.path / WEIGHTS

    @property
    def tokenizer(self) -> Path:
        return self.path / TOKENIZER

    @property
    def backbone(self) -> Mapping[str, Any]:
        """`{"name", "random_init", "clip_weights_sha256", ...}` of the backbone the run trained on."""
        return self.manifest["backbone"]

    @property
    def metrics(self) -> dict[str, Any]:
        return json.loads((self.path / METRICS).read_text())


def write_manifest(out: Path, backbone: Mapping[str, Any], prompts: Mapping[str, TaskPrompt], environment: Mapping[str, Any]) -> Path:
    """Write `run.json` over the files now in `out` (everything but checkpoints): the last write
    of a run, so that a folder with a manifest is complete."""
    # Checkpoints are the training's own state (resume), not part of the result.
    files = {name: digest for name, digest in file_digests(out).items() if name != MANIFEST and not name.startswith("checkpoints/")}
    manifest = {
        "format": FORMAT,
        "backbone": dict(backbone),
        "tasks": {name: prompt.to_dict() for name, prompt in prompts.items()},
        "environment": dict(environment),
        "files": files,
    }
    target = out / MANIFEST
    write_atomic(target, json.dumps(manifest, indent=2) + "\n")
    return target


def read_run_folder(path: Path) -> RunFolder:
    """Check a run folder and read its recipe and manifest.

    Raises:
        RunFolderError: not a folder, no manifest (an unfinished or foreign folder), a file
            missing or changed since the run wrote it, or a manifest this code cannot read.
    """
    path = Path(path)
    if not path.is_dir():
        raise RunFolderError(f"run folder {str(path)!r} does not exist or is not a folder; give the --out folder of python -m search.train")
    manifest = _read_json(path / MANIFEST, "the run is unfinished or this is not a run folder: train it with python -m search.train")
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise RunFolderError(
            f"{path / MANIFEST} is not a {FORMAT} manifest (format {manifest.get('format') if isinstance(manifest, dict) else None!r}); "
            "train the run again with this version's python -m search.train"
        )
    files = manifest.get("files")
    if not isinstance(files, dict) or not all(name in files for name in REQUIRED):
        raise RunFolderError(f"{path / MANIFEST} does not list the run's files; train the run again with python -m search.train")
    for name, digest in sorted(files.items()):
        file = path / name
        if not file.is_file():
            raise RunFolderError(f"{file} is missing from the run folder; restore it, or train the run again with python -m search.train")
        if file_digest(file) != digest:
            raise RunFolderError(
                f"{file} has changed since the run wrote it (its SHA-256 differs from {MANIFEST}'s); "
                "restore the run's copy, or train the run again with python -m search.train"
            )
    recipe = _read_json(path / RECIPE, "train the run again with python -m search.train")
    if not isinstance(recipe, dict) or not isinstance(recipe.get("config"), dict):
        raise RunFolderError(f"{path / RECIPE} has no 'config' mapping; train the run again with python -m search.train")
    try:
        prompts = {str(name): TaskPrompt.from_dict(data) for name, data in manifest["tasks"].items()}
        backbone = manifest["backbone"]
        if not isinstance(backbone, dict) or not isinstance(backbone.get("name"), str):
            raise TypeError("no backbone name")
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise RunFolderError(f"{path / MANIFEST} is damaged ({error}); train the run again with python -m search.train") from None
    return RunFolder(path, recipe, manifest, prompts)


def _read_json(file: Path, fix: str) -> Any:
    if not file.is_file():
        raise RunFolderError(f"{file} is missing; {fix}")
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise RunFolderError(f"{file} is not valid JSON ({error}); {fix}") from None
