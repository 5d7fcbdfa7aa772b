"""Named backbone presets: a CLIP visual encoder paired with a seq2seq language model."""

from __future__ import annotations

from dataclasses import dataclass

from models.config import ConfigError


@dataclass(frozen=True)
class BackbonePreset:
    """A CLIP + seq2seq pairing.

    Attributes:
        name: the preset key users pass as `--backbone`.
        clip_model: open_clip model name.
        clip_pretrained: open_clip pretrained tag, or None for the project-built weights.
        grid: side of the pooled visual grid (6 -> 36 tokens for RN101, PAPER.md §1).
        language_model: hub name or local directory; None for the project-built model.
        embedded: built by the project under `<data_dir>/backbones/<name>`.
        image_size: input resolution of the visual encoder.
    """

    name: str
    clip_model: str
    clip_pretrained: str | None
    grid: int
    language_model: str | None
    embedded: bool
    image_size: int


PRESETS: dict[str, BackbonePreset] = {
    preset.name: preset
    for preset in (
        BackbonePreset(
            name="tiny-clip+tiny-t5",
            clip_model="tiny-clip-vit",
            clip_pretrained=None,
            grid=4,
            language_model=None,
            embedded=True,
            image_size=64,
        ),
    )
}

DEFAULT_BACKBONE = "tiny-clip+tiny-t5"


def get_preset(name: str) -> BackbonePreset:
    """Look a preset up by name.

    Raises:
        ConfigError: unknown name; the message lists the known presets.
    """
    if name not in PRESETS:
        raise ConfigError([f"unknown backbone {name!r}; known backbones: {sorted(PRESETS)}"])
    return PRESETS[name]
