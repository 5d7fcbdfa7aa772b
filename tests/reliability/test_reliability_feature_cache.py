"""A corrupt feature store is detected and rebuilt, never read as features.

Interrupted extractions (damaged shards) are covered by tests/models/test_models_prepare.py;
here the finished store itself is damaged on disk, as a full disk, a crash of a copy or bit rot
in its header would leave it, and the real cache and the real embedded CLIP rebuild it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from models.features import cached_features, encoder_identity
from models.visual_encoder import build_visual_encoder
from training.environment import benchmark_dir


def _truncate(store: Path) -> None:
    store.write_bytes(store.read_bytes()[:-1000])


def _scramble_header(store: Path) -> None:
    data = bytearray(store.read_bytes())
    data[8:40] = b"\xff" * 32  # the JSON header that says where each tensor is
    store.write_bytes(bytes(data))


def _foreign(store: Path) -> None:
    # A valid safetensors file, but of other images: a store copied from elsewhere by mistake.
    ids = torch.frombuffer(bytearray(b'["someone-else"]'), dtype=torch.uint8)
    save_file({"features": torch.zeros(1, 4, 8), "img_ids": ids}, str(store))


@pytest.mark.parametrize("damage", [_truncate, _scramble_header, _foreign], ids=["truncated", "scrambled header", "foreign"])
def test_a_damaged_store_is_extracted_again(env, tmp_path: Path, damage) -> None:
    folder = benchmark_dir(env.data_dir, 0, env.location.preset.image_size) / "images"
    images = {path.stem: path for path in sorted(folder.glob("*.png"))[:6]}
    identity = encoder_identity(env.location)
    built = []

    def make_encoder():
        built.append(1)
        return build_visual_encoder(env.location)

    cache = tmp_path / "features"
    reference = cached_features(cache, images, identity, make_encoder, batch_size=3).features.clone()
    (store,) = cache.iterdir()
    damage(store)

    table = cached_features(cache, images, identity, make_encoder, batch_size=3)
    assert len(built) == 2, "the damaged store was read instead of rebuilt"
    assert sorted(table.index) == sorted(images)
    torch.testing.assert_close(table.lookup(sorted(images)), reference)
    assert [p.name for p in cache.iterdir()] == [store.name], "the store is replaced in place, no leftovers"
