"""The digests of every backbone file a study's trials read, to pin the study to its backbone.

`search.launch` stores them with a new study (search.study_settings.BACKBONE_ATTR); a worker or a
relaunch computes them again on its own machine, after building what is missing, and refuses
before any feature is extracted or trial trained when a file differs, naming the first one and
how to get the study's version. Files are keyed by component and their path inside it, the same
on every machine: `clip/<file>` (the CLIP checkpoint, or the embedded CLIP's folder with its
config), `lm/<file>` (the language model's folder: weights, config, tokenizer), `vl_projection/<file>`
(the trained V->L projection) and `tokenizer/<file>` (a random-init preset's project-trained
tokenizer). Hashing is models.embedded_digests.file_digests / models.features.file_digest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from core.software import git_revision
from models.backbones.availability import CLIP_CHECKPOINT_ENV, LANGUAGE_MODEL_ENV, clip_checkpoint_file, language_model_dir
from models.embedded_digests import file_digests
from models.features import file_digest
from models.location import BackboneLocation

# Written by a build beside the weights, never read by a trial: the manifest gains fields over
# time (models.embedded), so pinning it would refuse a worker whose weights are the study's.
BUILD_RECORDS = frozenset({"manifest.json", "pretraining_metrics.json"})
# Weights of other frameworks in a hub snapshot: transformers loads the torch ones only.
OTHER_FRAMEWORKS = (".h5", ".msgpack", ".ot", ".onnx")


class BackboneChanged(ValueError):
    """A backbone file this machine would read differs from the study's: the message names it."""


def backbone_sources(location: BackboneLocation) -> dict[str, Path]:
    """Each component's key prefix and the file or folder it is read from on this machine."""
    sources: dict[str, Path] = {}
    if location.clip_checkpoint is not None and location.clip_model is not None:
        checkpoint = clip_checkpoint_file(location.clip_model, location.clip_checkpoint)
        if checkpoint is not None:  # the embedded CLIP's folder holds its open_clip config too
            sources["clip"] = checkpoint.parent if location.preset.embedded else checkpoint
    if not location.random_init:
        lm = language_model_dir(location.language_model)
        if lm is not None:
            sources["lm"] = lm
    if location.vl_projection is not None:
        sources["vl_projection"] = Path(location.vl_projection)
    if location.tokenizer_dir is not None:
        sources["tokenizer"] = Path(location.tokenizer_dir)
    return sources


def backbone_digests(location: BackboneLocation) -> dict[str, str]:
    """SHA-256 of every backbone file the trials read, keyed `<component>/<path in it>`, sorted.

    A missing file (a projection not built, say) is simply absent: the comparison names it.
    """
    digests: dict[str, str] = {}
    for prefix, source in backbone_sources(location).items():
        if source.is_dir():
            for name, digest in file_digests(source).items():
                if Path(name).name not in BUILD_RECORDS and not name.endswith(OTHER_FRAMEWORKS):
                    digests[f"{prefix}/{name}"] = digest
        elif (one := file_digest(source)) is not None:
            digests[f"{prefix}/{source.name}"] = one
    return dict(sorted(digests.items()))


def backbone_pin(location: BackboneLocation, digests: Mapping[str, str]) -> dict[str, Any]:
    """What a study stores of its backbone: the preset, how its weights came to be, the digests."""
    return {
        "backbone": location.preset.name,
        "random_init": location.random_init,
        "embedded": location.preset.embedded,
        "revision": git_revision(),  # embedded weights are built by the code: which code built them
        "files": dict(digests),
    }


def compare_backbone(pin: Mapping[str, Any], location: BackboneLocation, found: Mapping[str, str], data_dir: Path) -> None:
    """Raise BackboneChanged naming the first file (in key order) that differs, is missing or is extra.

    Args:
        pin: the study's, as `backbone_pin` made it at launch.
        found: this machine's `backbone_digests(location)`.
        data_dir: this machine's data directory (where an embedded backbone is rebuilt).
    """
    pinned: Mapping[str, str] = pin.get("files") or {}
    changed = sorted(key for key in set(pinned) | set(found) if pinned.get(key) != found.get(key))
    if not changed:
        return
    key = changed[0]
    path = _path_of(key, backbone_sources(location))
    if key not in found:
        problem = f"{key} is part of the study's backbone but missing here ({path})"
    elif key not in pinned:
        problem = f"{key} ({path}) is read here but is not part of the study's backbone"
    else:
        problem = f"{key} ({path}) differs from the study's (content {found[key][:12]} here, {pinned[key][:12]} in the study)"
    raise BackboneChanged(
        f"backbone {location.preset.name!r}: {problem}; {len(changed)} file(s) differ in all. {_how_to_fix(key, pin, path, data_dir)}"
    )


def check_readable(location: BackboneLocation, data_dir: Path) -> None:
    """Parse the header of every safetensors weight file the trials read: a truncated file (which
    no digest may have recorded: a build from before they were, or the user's own weights) is
    named here, before anything is written, instead of failing inside the loader without a name.

    Raises:
        BackboneChanged: naming the unreadable file and how to get a good copy.
    """
    from safetensors import SafetensorError, safe_open

    for prefix, source in backbone_sources(location).items():
        files = sorted(source.rglob("*.safetensors")) if source.is_dir() else [source] if source.suffix == ".safetensors" else []
        for path in files:
            try:
                with safe_open(str(path), framework="pt"):
                    pass
            except (SafetensorError, OSError) as error:
                embedded = location.preset.embedded or prefix == "tokenizer"
                raise BackboneChanged(
                    f"backbone {location.preset.name!r}: {path} is not a readable weight file ({error}): it is truncated or "
                    f"damaged. " + (_rebuild_hint(path, data_dir) if embedded else _restore_hint(prefix, path))
                ) from None


def _rebuild_hint(path: Path, data_dir: Path) -> str:
    backbones = data_dir / "backbones"
    try:
        folder = backbones / path.relative_to(backbones).parts[0]
    except ValueError:
        folder = path.parent
    return f"Delete {folder} and run again to rebuild it (the build is reproducible), or copy it intact from another machine"


def _restore_hint(prefix: str, path: Path | str) -> str:
    variable = {"lm": LANGUAGE_MODEL_ENV, "clip": CLIP_CHECKPOINT_ENV}.get(prefix)
    where = f", or set {variable} to a good copy" if variable else ""
    return f"Restore {path} (copy it again from where it came{where})"


def _path_of(key: str, sources: Mapping[str, Path]) -> Path | str:
    prefix, _, rest = key.partition("/")
    source = sources.get(prefix)
    if source is None:
        return f"no {prefix} here"
    return source / rest if source.is_dir() else source  # a folder's file, or the component's one file


def _how_to_fix(key: str, pin: Mapping[str, Any], path: Path | str, data_dir: Path) -> str:
    prefix = key.partition("/")[0]
    if pin.get("embedded") or prefix == "tokenizer":  # built by this project's code, bit-reproducibly: the same code builds the same bytes
        revision = pin.get("revision") or "unknown"
        here = git_revision()
        at = "" if here == revision else f" (this checkout is at {here or 'an unknown revision'})"
        backbones = data_dir / "backbones"
        return (
            f"The study's backbone was built by this project's code at revision {revision}{at}: delete {backbones} and run "
            f"again to rebuild it with this code (the build is reproducible: the same revision and package versions give "
            f"the same files), or copy the backbones folder of the machine that launched the study to {backbones}"
        )
    variable = {"lm": LANGUAGE_MODEL_ENV, "clip": CLIP_CHECKPOINT_ENV}.get(prefix)
    where = f", or set {variable} to a copy of the study's" if variable else ""
    return f"Restore {path} to the file the study was launched with (copy it from the machine that launched the study){where}"
