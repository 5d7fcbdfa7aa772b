"""Backbone digests (#21): what a study pins, how a difference is named, and a built folder's own check.

On fake files: nothing is pretrained here (tests/search/test_search_backbone_pin.py runs the
commands on the real embedded backbone).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.backbone_pin import BackboneChanged, backbone_digests, backbone_pin, compare_backbone
from models.embedded import FILES_KEY, BuildChanged, ensure_built, read_manifest
from models.features import file_digest
from models.location import BackboneLocation

VLP = "tiny-clip+tiny-t5-vlp"


def fake_vlp_backbone(data_dir: Path) -> Path:
    """The files of an embedded VL-pretrained preset's folder, with the build's records beside them."""
    root = data_dir / "backbones" / VLP
    for name, content in {
        "clip/open_clip_model.safetensors": b"clip weights",
        "clip/manifest.json": b"{}",
        "clip/pretraining_metrics.json": b"{}",
        "language_model/model.safetensors": b"lm weights",
        "language_model/config.json": b"{}",
        "language_model/tokenizer.json": b"{}",
        "vl_projection.safetensors": b"projection",
    }.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content)
    return root


def test_the_pin_lists_every_file_the_trials_read_under_machine_independent_keys(tmp_path):
    root = fake_vlp_backbone(tmp_path / "one")
    location = BackboneLocation.resolve(VLP, tmp_path / "one")
    digests = backbone_digests(location)
    assert digests == {
        "clip/open_clip_model.safetensors": file_digest(root / "clip/open_clip_model.safetensors"),
        "lm/config.json": file_digest(root / "language_model/config.json"),
        "lm/model.safetensors": file_digest(root / "language_model/model.safetensors"),
        "lm/tokenizer.json": file_digest(root / "language_model/tokenizer.json"),
        "vl_projection/vl_projection.safetensors": file_digest(root / "vl_projection.safetensors"),
    }, "the build's manifests and metrics are no trial's input"
    # Another machine's copy in another folder compares equal.
    fake_vlp_backbone(tmp_path / "two")
    assert backbone_digests(BackboneLocation.resolve(VLP, tmp_path / "two")) == digests
    pin = backbone_pin(location, digests)
    assert pin["backbone"] == VLP and pin["embedded"] is True and pin["files"] == digests
    compare_backbone(pin, location, digests, tmp_path / "one")  # equal: no error


def test_a_changed_missing_or_extra_file_is_named_with_the_way_to_the_studys_version(tmp_path):
    fake_vlp_backbone(tmp_path)
    location = BackboneLocation.resolve(VLP, tmp_path)
    pin = {**backbone_pin(location, backbone_digests(location)), "revision": "abc123"}
    root = tmp_path / "backbones" / VLP
    (root / "language_model/model.safetensors").write_bytes(b"other lm weights")
    (root / "vl_projection.safetensors").unlink()
    with pytest.raises(BackboneChanged) as raised:
        compare_backbone(pin, location, backbone_digests(location), tmp_path)
    message = str(raised.value)
    assert f"lm/model.safetensors ({root / 'language_model/model.safetensors'}) differs from the study's" in message
    assert "2 file(s) differ in all" in message
    assert "revision abc123" in message and f"delete {tmp_path / 'backbones'}" in message and "copy the backbones folder" in message
    (root / "language_model/model.safetensors").write_bytes(b"lm weights")
    (root / "language_model/added_tokens.json").write_text("{}")
    with pytest.raises(BackboneChanged, match=r"lm/added_tokens.json \(.*\) is read here but is not part of the study's backbone"):
        compare_backbone(pin, location, backbone_digests(location), tmp_path)
    (root / "language_model/added_tokens.json").unlink()
    with pytest.raises(BackboneChanged, match=r"vl_projection/vl_projection.safetensors is part of the study's backbone but missing here"):
        compare_backbone(pin, location, backbone_digests(location), tmp_path)


def test_user_provided_weights_that_differ_say_which_file_to_restore(tmp_path, monkeypatch):
    from models.backbones.availability import CLIP_CHECKPOINT_ENV, LANGUAGE_MODEL_ENV

    lm = tmp_path / "t5-base"
    lm.mkdir()
    (lm / "config.json").write_text("{}")
    (lm / "model.safetensors").write_bytes(b"weights")
    (lm / "tf_model.h5").write_bytes(b"another framework's weights, never read")
    checkpoint = tmp_path / "clip.safetensors"
    checkpoint.write_bytes(b"clip")
    monkeypatch.setenv(LANGUAGE_MODEL_ENV, str(lm))
    monkeypatch.setenv(CLIP_CHECKPOINT_ENV, str(checkpoint))
    location = BackboneLocation.resolve("clip-rn101+t5-base", tmp_path)
    digests = backbone_digests(location)
    assert sorted(digests) == ["clip/clip.safetensors", "lm/config.json", "lm/model.safetensors"]
    pin = backbone_pin(location, digests)
    checkpoint.write_bytes(b"other clip")
    with pytest.raises(BackboneChanged) as raised:
        compare_backbone(pin, location, backbone_digests(location), tmp_path)
    assert f"clip/clip.safetensors ({checkpoint}) differs" in str(raised.value)
    assert f"Restore {checkpoint} to the file the study was launched with" in str(raised.value)
    assert CLIP_CHECKPOINT_ENV in str(raised.value) and "revision" not in str(raised.value)


def build_folder(folder: Path) -> Path:
    def write(staging: Path) -> None:
        (staging / "sub").mkdir()
        (staging / "sub" / "model.safetensors").write_bytes(bytes(range(256)) * 8)
        (staging / "config.json").write_text("{}")

    return ensure_built(folder, {"format_version": 1}, write)


def test_a_build_records_its_files_and_a_later_change_is_named_on_reuse(tmp_path):
    folder = build_folder(tmp_path / "component")
    manifest = read_manifest(folder)
    assert manifest is not None and sorted(manifest[FILES_KEY]) == ["config.json", "sub/model.safetensors"]
    assert build_folder(folder) == folder  # intact: reused
    weights = folder / "sub" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # truncated
    with pytest.raises(BuildChanged) as raised:
        build_folder(folder)
    message = str(raised.value)
    assert f"{weights} differs from what the build wrote (changed or truncated since)" in message
    assert f"Delete {folder} and run again to rebuild it" in message
    weights.unlink()
    with pytest.raises(BuildChanged, match="model.safetensors is missing"):
        build_folder(folder)


def test_a_folder_built_before_digests_were_recorded_is_reused_unchecked(tmp_path):
    folder = build_folder(tmp_path / "component")
    manifest = read_manifest(folder)
    assert manifest is not None
    del manifest[FILES_KEY]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / "config.json").write_text('{"changed": true}')
    assert build_folder(folder) == folder


def test_a_truncated_weight_file_without_recorded_digests_is_named_before_loading(tmp_path):
    # A build from before digests were recorded, or the user's own weights: nothing to compare
    # with, but a truncated safetensors file is still named, with the fix, not a loader traceback.
    import torch
    from safetensors.torch import save_file

    from models.backbone_pin import check_readable

    root = fake_vlp_backbone(tmp_path)
    weights = root / "language_model" / "model.safetensors"
    for path in (weights, root / "clip/open_clip_model.safetensors", root / "vl_projection.safetensors"):
        save_file({"w": torch.zeros(64, 64)}, str(path))
    location = BackboneLocation.resolve(VLP, tmp_path)
    check_readable(location, tmp_path)  # intact: no error
    weights.write_bytes(weights.read_bytes()[:200])
    with pytest.raises(BackboneChanged) as raised:
        check_readable(location, tmp_path)
    message = str(raised.value)
    assert f"{weights} is not a readable weight file" in message and "truncated or damaged" in message
    assert f"Delete {root} and run again to rebuild it" in message
