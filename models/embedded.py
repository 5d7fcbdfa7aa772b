"""The embedded tiny backbone family, built by the project so that nothing is downloaded.

Artifacts are written in the formats real checkpoints use (an open_clip config JSON plus a
safetensors checkpoint; a transformers `save_pretrained` directory with its tokenizer), so
they load through exactly the code path of real checkpoints.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Iterable

import open_clip
import torch
from safetensors.torch import save_file

from models.backbones.clip_encoder import tiny_clip_config, write_open_clip_config
from models.backbones.language_model import add_visual_order_tokens, tiny_t5, train_unigram_tokenizer
from models.backbones.presets import BackbonePreset

FORMAT_VERSION = 2
TOKENIZER_VOCAB = 1000


def embedded_dir(data_dir: Path, preset: BackbonePreset) -> Path:
    return data_dir / "backbones" / preset.name


def ensure_embedded_backbone(data_dir: Path, preset: BackbonePreset, corpus: Iterable[str], seed: int = 0) -> Path:
    """Build the preset's artifacts once; later calls reuse them.

    Args:
        data_dir: the project's data directory.
        preset: an embedded preset.
        corpus: training text for the tokenizer (the benchmark's training questions and answers).
        seed: initialisation seed.

    Returns:
        The artifact directory, holding `clip/` and `language_model/`.
    """
    target = embedded_dir(data_dir, preset)
    manifest = {"format_version": FORMAT_VERSION, "preset": preset.name, "seed": seed}
    manifest_file = target / "manifest.json"
    if manifest_file.exists() and json.loads(manifest_file.read_text()) == manifest:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{preset.name}-", dir=target.parent))
    try:
        _write_clip(staging / "clip", preset, seed)
        tokenizer = train_unigram_tokenizer(corpus, TOKENIZER_VOCAB)
        lm = tiny_t5(vocab_size=len(tokenizer), seed=seed)
        add_visual_order_tokens(lm, tokenizer)  # saved with the checkpoint, like a VL-pretrained model
        lm.save_pretrained(staging / "language_model")
        tokenizer.save_pretrained(staging / "language_model")
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2))
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)  # atomic on one filesystem: no half-built backbone is ever visible
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _write_clip(folder: Path, preset: BackbonePreset, seed: int) -> None:
    config_file = folder / f"{preset.clip_model}.json"
    write_open_clip_config(config_file, tiny_clip_config(preset.image_size))
    open_clip.add_model_config(config_file)
    torch.manual_seed(seed)
    model = open_clip.create_model(preset.clip_model, pretrained=None)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "open_clip_model.safetensors"))
