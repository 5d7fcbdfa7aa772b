"""Resumable feature extraction and `python -m models.prepare`, on the embedded backbone.

Extraction is interrupted the way Ctrl-C does it: the real image transform raises
KeyboardInterrupt after a given number of images.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from models.backbones.presets import DEFAULT_BACKBONE
from models.features import cached_features, content_key, encoder_identity, extract, file_digest, frame_features
from models.location import BackboneLocation
from models.visual_encoder import build_visual_encoder, visual_feature_dim
from tasks import load_video_features
from training.prepare import main

N_IMAGES = 5
SHARD = 2  # shards of [img_0, img_1], [img_2, img_3], [img_4]


class Transform:
    """The encoder's real transform, counting the images it sees; Ctrl-C after `stop_after`."""

    def __init__(self, built, stop_after: int | None = None):
        self.encoder, self.transform = built
        self.stop_after = stop_after
        self.calls = 0

    def __call__(self, image):
        if self.calls == self.stop_after:
            raise KeyboardInterrupt
        self.calls += 1
        return self.transform(image)

    def make_encoder(self):
        return self.encoder, self


def never():
    raise AssertionError("the encoder must not run: the store already holds these images")


def write_images(folder: Path, names: list[str], size: int = 64) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for n, name in enumerate(names):
        pixels = np.random.default_rng(n).integers(0, 256, (size, size, 3), dtype=np.uint8)
        path = folder / name
        Image.fromarray(pixels).save(path)
        paths[path.stem] = path
    return paths


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_ino, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


@pytest.fixture(scope="module")
def location(env) -> BackboneLocation:
    # `env` builds the embedded backbone exactly as the rest of the suite does.
    return env.location


@pytest.fixture(scope="module")
def built(location):
    return build_visual_encoder(location)


@pytest.fixture
def images(tmp_path) -> dict[str, Path]:
    return write_images(tmp_path / "images", [f"img_{n}.png" for n in range(N_IMAGES)])


@pytest.fixture
def data(env, tmp_path) -> Path:
    """A fresh data directory that shares the session's built backbone."""
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "backbones").symlink_to(env.data_dir / "backbones", target_is_directory=True)
    return folder


def test_encoder_identity_is_the_dict_trials_hash(location):
    assert encoder_identity(location) == {
        "clip_model": location.clip_model,
        "clip_weights": file_digest(location.clip_checkpoint),
        "grid": location.preset.grid,
        "image_size": location.preset.image_size,
    }


def test_an_interrupted_extraction_resumes_without_redoing_finished_shards(tmp_path, location, built, images, capsys):
    identity = encoder_identity(location)
    cache = tmp_path / "cache"
    partial = cache / f".partial-{content_key(images, identity)}"

    def run(transform: Transform):
        return cached_features(cache, images, identity, transform.make_encoder, batch_size=1, shard_size=SHARD)

    with pytest.raises(KeyboardInterrupt):
        run(Transform(built, stop_after=3))  # shard 0 done, interrupted inside shard 1
    assert sorted(p.name for p in partial.iterdir()) == ["shard-00000.safetensors"]
    first = snapshot(partial)

    resumed = Transform(built, stop_after=2)
    with pytest.raises(KeyboardInterrupt):
        run(resumed)  # shard 1 done, interrupted inside shard 2
    assert resumed.calls == 2, "shard 0 must not be encoded again"
    second = snapshot(partial)
    assert second["shard-00000.safetensors"] == first["shard-00000.safetensors"]
    assert sorted(second) == ["shard-00000.safetensors", "shard-00001.safetensors"]

    capsys.readouterr()
    last = Transform(built)
    table = run(last)
    assert last.calls == 1
    assert "4/5" in capsys.readouterr().err, "the progress bar starts at the images already extracted"
    assert not partial.exists()
    assert [p.name for p in cache.iterdir()] == [f"features-{content_key(images, identity)}.safetensors"]

    one_shot = cached_features(tmp_path / "one-shot", images, identity, Transform(built).make_encoder, batch_size=1, shard_size=SHARD)
    assert table.index == one_shot.index
    assert torch.equal(table.features, one_shot.features)
    reloaded = cached_features(cache, images, identity, never, batch_size=1, shard_size=SHARD)
    assert torch.equal(reloaded.features, one_shot.features)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "other images"])
def test_a_damaged_shard_is_extracted_again(tmp_path, location, built, images, damage):
    identity = encoder_identity(location)
    cache = tmp_path / "cache"
    shard = cache / f".partial-{content_key(images, identity)}" / "shard-00000.safetensors"
    with pytest.raises(KeyboardInterrupt):
        cached_features(cache, images, identity, Transform(built, stop_after=SHARD).make_encoder, batch_size=1, shard_size=SHARD)
    assert shard.is_file()
    if damage == "garbage":
        shard.write_bytes(b"not a safetensors file")
    elif damage == "truncated":
        shard.write_bytes(shard.read_bytes()[:-100])
    else:
        ids = torch.frombuffer(bytearray(b'["img_3", "img_4"]'), dtype=torch.uint8)
        save_file({"features": torch.zeros(2, 16, 128), "img_ids": ids}, str(shard))

    again = Transform(built)
    table = cached_features(cache, images, identity, again.make_encoder, batch_size=1, shard_size=SHARD)
    assert again.calls == N_IMAGES, "the damaged shard and the missing ones are encoded, nothing else"
    assert not shard.parent.exists()
    reference = extract(built[0], built[1], images, batch_size=1)
    assert table.index == reference.index
    torch.testing.assert_close(table.features, reference.features)


def test_prepare_images_fills_the_store_a_trial_reads(data, images, capsys):
    assert main(["--images", str(images["img_0"].parent), "--data-dir", str(data), "--batch-size", "2"]) == 0
    stores = list((data / "features").iterdir())
    assert len(stores) == 1 and stores[0].name.startswith("features-"), "one store, no partial folder left"
    assert str(stores[0]) in capsys.readouterr().out

    location = BackboneLocation.resolve(DEFAULT_BACKBONE, data)
    table = cached_features(data / "features", images, encoder_identity(location), never)
    assert sorted(table.index) == sorted(images)
    assert table.features.shape[0] == N_IMAGES


def test_prepare_videos_writes_frame_features_and_resumes(data, tmp_path, location, built, capsys):
    videos = tmp_path / "value" / "videos"
    frames = {
        "vid_a": list(write_images(videos / "vid_a", [f"frame_{n:03d}.png" for n in range(3)]).values()),
        "vid_b": list(write_images(videos / "vid_b", [f"frame_{n:03d}.png" for n in range(2)]).values()),
    }
    out = tmp_path / "value" / "video_features"
    args = ["--videos", str(videos), "--data-dir", str(data)]
    assert main(args) == 0
    assert f"2 extracted, 0 already there -> {out}" in capsys.readouterr().out
    dim = visual_feature_dim(location)
    for vid, paths in frames.items():
        array = load_video_features(out / f"{vid}.npz")
        assert array.shape == (len(paths), dim)
        # The frames' grid tokens mean-pooled: what trials compute from a frame store.
        pooled = extract(built[0], built[1], {p.stem: p for p in paths}, batch_size=8).features.mean(dim=1)
        np.testing.assert_allclose(array, pooled.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(load_video_features(out / "vid_a.npz"), frame_features(built[0], built[1], frames["vid_a"]))

    before = snapshot(out)
    assert main(args) == 0
    assert "0 extracted, 2 already there" in capsys.readouterr().out
    assert snapshot(out) == before

    (out / "vid_b.npz").write_bytes(b"half a file")
    assert main(args) == 0
    assert "1 extracted, 1 already there" in capsys.readouterr().out
    assert snapshot(out)["vid_a.npz"] == before["vid_a.npz"]
    assert load_video_features(out / "vid_b.npz").shape == (2, dim)


def test_duplicate_image_ids_are_rejected_before_anything_is_written(tmp_path, capsys):
    first = write_images(tmp_path / "coco", ["COCO_1.png"])["COCO_1"]
    second = write_images(tmp_path / "vg" / "nested", ["COCO_1.jpg"])["COCO_1"]
    before = snapshot(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["--images", str(tmp_path / "coco"), "--images", str(tmp_path / "vg"), "--data-dir", str(tmp_path / "data")])
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and str(first.resolve()) in lines[0] and str(second.resolve()) in lines[0]
    assert "'COCO_1'" in lines[0] and "unique" in lines[0]
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--images", "missing"], "'missing' is not a folder"),
        (["--images", "empty"], "holds no .jpg/.jpeg/.png"),
        (["--images", "images", "--backbone", "gpt-9"], "known backbones: clip-rn101+bart-base"),
        (["--images", "images", "--backbone", "video-clip512+bart-base"], "no image tower"),
        (["--images", "images", "--batch-size", "0"], "--batch-size must be >= 1, got 0"),
        (["--videos", "images"], "has no video subfolders"),
        (["--images", "images", "--out", "features"], "--out 'features' only names where --videos writes"),
        ([], "pass --images DIR"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys, args, needle):
    monkeypatch.chdir(tmp_path)
    write_images(tmp_path / "images", ["a.png"])
    (tmp_path / "empty").mkdir()
    before = snapshot(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--data-dir", "data"])
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("models.prepare: error: ") and needle in lines[0], lines
    assert snapshot(tmp_path) == before


def test_runs_as_a_module(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "models.prepare", "--images", str(tmp_path / "missing"), "--data-dir", str(tmp_path / "data")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "is not a folder" in result.stderr
    assert list(tmp_path.iterdir()) == []
