"""Images decoded in worker processes, in every mode a user's folder may hold, on the embedded backbone.

The features must not depend on how many processes decode (the encoder sees the same batches),
every PNG/JPEG mode must reach the encoder as the RGB image it shows, and a file that does not
decode must stop the extraction with an error that names it, raised in this process.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from models.features import UnreadableImageError, cached_features, content_key, decode_processes, encoder_identity, extract, rgb_image
from models.visual_encoder import build_visual_encoder, visual_feature_dim
from training.prepare import main


def _pixels(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth colour gradient with some noise: JPEG keeps it close, unlike pure noise."""
    y, x = np.mgrid[0:height, 0:width]
    noise = np.random.default_rng(seed).integers(0, 32, (height, width, 3))
    gradient = np.stack([255 * x / max(width - 1, 1), 255 * y / max(height - 1, 1), np.full(x.shape, 96)], axis=-1)
    return np.clip(gradient * 0.85 + noise, 0, 255).astype(np.uint8)


def _palette_with_alpha() -> Image.Image:
    image = Image.fromarray(_pixels(24, 32)).convert("P")
    image.info["transparency"] = bytes([0, 128] + [255] * 254)  # per-entry alpha: Pillow warns on a direct RGB
    return image


def _sixteen_bit() -> Image.Image:
    ramp = np.linspace(0, 65535, 40 * 30).reshape(30, 40).astype(np.uint16)
    return Image.fromarray(ramp)  # mode I;16


# name -> (file name, image): every mode of the task, and sizes from 1x1 to large.
SAMPLES = {
    "rgb": ("rgb.jpg", lambda: Image.fromarray(_pixels(48, 64))),
    "greyscale": ("grey.jpg", lambda: Image.fromarray(_pixels(40, 30)).convert("L")),
    "rgba": ("rgba.png", lambda: Image.fromarray(_pixels(20, 20)).convert("RGBA")),
    "la": ("la.png", lambda: Image.fromarray(_pixels(20, 28)).convert("LA")),
    "palette": ("palette.png", lambda: Image.fromarray(_pixels(24, 32)).convert("P")),
    "palette with transparency": ("palette-alpha.png", _palette_with_alpha),
    "cmyk": ("cmyk.jpg", lambda: Image.fromarray(_pixels(32, 32)).convert("CMYK")),
    "16-bit greyscale": ("grey16.png", _sixteen_bit),
    "1x1": ("tiny.png", lambda: Image.fromarray(_pixels(1, 1))),
    "large": ("large.jpg", lambda: Image.fromarray(_pixels(1200, 1600))),
}


def write_sample(folder: Path, name: str) -> Path:
    file_name, make = SAMPLES[name]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / file_name
    make().save(path)
    return path


@pytest.fixture(scope="module")
def built(env):
    # `env` builds the embedded backbone exactly as the rest of the suite does.
    return build_visual_encoder(env.location)


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("modes")
    return {name: write_sample(folder, name) for name in SAMPLES}


def test_features_are_the_same_whatever_the_number_of_decode_workers(env, built, samples, tmp_path):
    images = {path.stem: path for path in samples.values()}
    identity = encoder_identity(env.location)

    def make_encoder():
        return built

    # Batches of 3 in shards of 4: batches end at shard boundaries, which the workers must respect.
    tables = {
        workers: cached_features(
            tmp_path / f"w{workers}", images, identity, make_encoder, batch_size=3, shard_size=4, decode_workers=workers
        )
        for workers in (0, 2)
    }
    assert tables[0].index == tables[2].index
    assert torch.equal(tables[0].features, tables[2].features), "bit-identical, not merely close"
    # The store is the one a single process writes, under the same content key.
    names = {workers: [p.name for p in (tmp_path / f"w{workers}").iterdir()] for workers in tables}
    assert names[0] == names[2] == [f"features-{content_key(images, identity)}.safetensors"]
    one_pass = extract(built[0], built[1], images, batch_size=len(images), decode_workers=2)
    torch.testing.assert_close(one_pass.features, tables[0].features)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_image_mode_gives_rgb_and_features_of_the_right_shape(env, built, samples, name):
    path = samples[name]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. Pillow's warning on a palette with transparency
        image = rgb_image(path)
    assert image.mode == "RGB"
    with Image.open(path) as original:
        assert image.size == original.size
    table = extract(built[0], built[1], {path.stem: path}, batch_size=1, decode_workers=0)
    grid = env.location.preset.grid
    assert table.features.shape == (1, grid * grid, visual_feature_dim(env.location))
    assert torch.isfinite(table.features).all()


def test_sixteen_bit_greyscale_is_scaled_not_clipped(samples):
    pixels = np.asarray(rgb_image(samples["16-bit greyscale"]))
    ramp = np.asarray(_sixteen_bit(), dtype=np.float64) / 257
    assert np.array_equal(pixels[..., 0], pixels[..., 2]), "grey stays grey"
    assert np.abs(pixels[..., 0] - ramp).max() <= 0.5, "Pillow alone would clip everything above 255/65535 to white"
    assert pixels.min() == 0 and pixels.max() == 255


def test_palette_and_alpha_modes_keep_their_colours(samples):
    with Image.open(samples["palette with transparency"]) as image, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        direct = np.asarray(image.convert("RGB"))
    assert np.array_equal(np.asarray(rgb_image(samples["palette with transparency"])), direct)
    with Image.open(samples["rgba"]) as image:
        assert np.array_equal(np.asarray(rgb_image(samples["rgba"])), np.asarray(image)[..., :3]), "alpha is dropped, as CLIP does"
    cmyk = np.asarray(rgb_image(samples["cmyk"]), dtype=np.int16)
    assert np.abs(cmyk - _pixels(32, 32)).mean() < 8, "a CMYK JPEG shows the colours it was saved from"


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("damage", ["not an image", "truncated"])
def test_an_unreadable_image_names_the_file(env, built, samples, tmp_path, workers, damage):
    images = {path.stem: path for path in samples.values() if path.suffix == ".jpg"}
    bad = tmp_path / "broken.jpg"
    if damage == "not an image":
        bad.write_bytes(b"<html>a download that failed</html>")
    else:
        bad.write_bytes(samples["large"].read_bytes()[:2000])
    images[bad.stem] = bad
    cache = tmp_path / "features"
    with pytest.raises(UnreadableImageError) as error:
        cached_features(cache, images, encoder_identity(env.location), lambda: built, batch_size=2, decode_workers=workers)
    message = str(error.value)
    assert str(bad) in message and "fix or remove" in message, message
    assert "Traceback" not in message and "worker" not in message, "the error is raised here, not re-raised from a worker"
    assert not list(cache.glob("features-*")), "no store is written"


def test_the_default_decodes_a_few_images_in_this_process():
    assert decode_processes(None, 5) == 0
    assert decode_processes(None, 100_000) >= 1
    assert decode_processes(3, 5) == 3
    with pytest.raises(ValueError, match="decode_workers >= 0"):
        decode_processes(-1, 5)


def test_a_negative_decode_workers_is_rejected_before_anything_runs(env, samples, tmp_path):
    def never():
        raise AssertionError("nothing may be extracted")

    with pytest.raises(ValueError, match="decode_workers >= 0"):
        cached_features(tmp_path, {"rgb": samples["rgb"]}, encoder_identity(env.location), never, decode_workers=-1)


def test_prepare_passes_decode_workers_through(env, samples, tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    (data / "backbones").symlink_to(env.data_dir / "backbones", target_is_directory=True)
    assert main(["--images", str(samples["rgb"].parent), "--data-dir", str(data), "--decode-workers", "2", "--batch-size", "4"]) == 0
    (store,) = (data / "features").iterdir()
    assert str(store) in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--decode-workers", "-1"], "--decode-workers must be >= 0, got -1"),
        (["--decode-workers", "two"], "invalid int value: 'two'"),
        (["--decode", "2"], "unrecognized arguments: --decode 2"),  # allow_abbrev=False
        (["--batch", "2"], "unrecognized arguments: --batch 2"),
    ],
)
def test_prepare_rejects_bad_decode_workers_with_one_line(samples, tmp_path, capsys, args, needle):
    with pytest.raises(SystemExit) as exit_info:
        main(["--images", str(samples["rgb"].parent), "--data-dir", str(tmp_path / "data"), *args])
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith("python -m models.prepare: error: ") or lines[-1].startswith("models.prepare: error: "), lines
    assert needle in lines[-1], lines
    assert not (tmp_path / "data").exists()


def test_pixels_preloaded_in_worker_processes_are_the_ones_a_lookup_decodes(built, samples, tmp_path):
    # A trial whose CLIP trains preloads its training images in DataLoader workers; every image
    # mode (16-bit greyscale, palette with alpha, CMYK...) must give the pixels decoded in-process.
    from training.visual_inputs import PixelTable

    images = {path.stem: path for path in samples.values()}
    one_by_one = PixelTable(images, lambda: built[1], tokens_per_image=4)
    expected = {img_id: one_by_one.lookup([img_id])[0] for img_id in images}
    preloaded = PixelTable(images, lambda: built[1], tokens_per_image=4)
    assert preloaded.preload([*images, *images], workers=2, batch_size=3) == len(images), "each image once"
    assert preloaded.preload(list(images), workers=2) == 0, "nothing left to decode"
    for img_id, pixels in expected.items():
        assert torch.equal(preloaded.lookup([img_id])[0], pixels), img_id
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    with pytest.raises(UnreadableImageError, match="broken.png"):
        PixelTable({"broken": broken}, lambda: built[1], tokens_per_image=4).preload(["broken"], workers=1)
