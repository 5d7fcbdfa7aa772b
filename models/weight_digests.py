"""The content digests of a backbone's weight files: what a result or a run folder was trained on."""

from __future__ import annotations

from pathlib import Path

from models.features import file_digest
from models.location import BackboneLocation

# Each component's digest, under the names results rows have always used.
DIGEST_KEYS = ("clip_weights_sha256", "language_model_weights_sha256", "vl_projection_sha256")


def weight_digests(location: BackboneLocation) -> dict[str, str | None]:
    """SHA-256 of the CLIP checkpoint, the language model's safetensors and the trained V->L
    projection; None for a component with no file (random init, a hub id, a fresh projection)."""
    return {
        "clip_weights_sha256": file_digest(location.clip_checkpoint),
        "language_model_weights_sha256": file_digest(Path(location.language_model) / "model.safetensors"),
        "vl_projection_sha256": file_digest(location.vl_projection),
    }
