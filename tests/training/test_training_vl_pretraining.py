"""The VL-pretrained backbone variant: build, load, measure, cache, and stay off the benchmark."""

from __future__ import annotations

import hashlib

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

import training.pretrain.vl_variant as vlp
from models.backbones.presets import get_preset
from models.build import build_vl_model
from models.config import TrialConfig
from models.embedded import embedded_dir, read_manifest
from models.location import VL_PROJECTION_FILE, BackboneLocation
from models.params import count_parameters
from models.petl import get_method
from training.batches import Collator
from training.environment import benchmark_dir, prepare_environment
from training.pretrain.embedded import ensure_embedded_backbone
from training.pretrain.exclusion import exclusion_identity
from training.vl_pretrain import main as vl_pretrain_main

BASE, VARIANT = "tiny-clip+tiny-t5", "tiny-clip+tiny-t5-vlp"
STEPS = "12"


@pytest.fixture(scope="module")
def built(data_dir):
    """The variant built through prepare_environment."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(vlp.STEPS_ENV, STEPS)
        yield prepare_environment(data_dir, VARIANT, ("vqa",))


def trial(backbone: str, method: str = "full_ft") -> TrialConfig:
    return TrialConfig(backbone=backbone, tasks=("vqa",), method=method, freeze=get_method(method).freeze)


def test_the_variant_is_laid_out_like_its_base_plus_the_projection(built, data_dir):
    folder = embedded_dir(data_dir, get_preset(VARIANT))
    assert {p.name for p in folder.iterdir()} == {"clip", "language_model", VL_PROJECTION_FILE, "manifest.json"}
    base_clip = embedded_dir(data_dir, get_preset(BASE)) / "clip" / "open_clip_model.safetensors"
    assert (folder / "clip" / "open_clip_model.safetensors").read_bytes() == base_clip.read_bytes()
    manifest = read_manifest(folder)
    assert manifest["settings"]["steps"] == int(STEPS)
    # The base's own manifest, less the digests of its files (checked on the base's own reuse).
    base_manifest = read_manifest(embedded_dir(data_dir, get_preset(BASE)))
    assert base_manifest is not None and "files" in base_manifest
    assert manifest["base"] == {key: value for key, value in base_manifest.items() if key != "files"}


def test_it_loads_with_its_trained_projection(built, data_dir):
    location = BackboneLocation.resolve(VARIANT, data_dir)
    model, tokenizer = build_vl_model(trial(VARIANT), location)
    saved = load_file(location.vl_projection)
    state = model.visual_embedding.state_dict()
    assert saved.keys() == state.keys()
    assert all(torch.equal(state[k], saved[k]) for k in saved)
    fresh, _ = build_vl_model(trial(BASE), BackboneLocation.resolve(BASE, data_dir))
    assert not torch.equal(fresh.visual_embedding.feat_proj[0].weight, state["feat_proj.0.weight"])
    assert tokenizer.convert_tokens_to_ids("<vis_extra_id_0>") != tokenizer.unk_token_id


def test_held_out_caption_loss_drops_and_is_reproduced_by_the_saved_model(built, data_dir):
    results = read_manifest(embedded_dir(data_dir, get_preset(VARIANT)))["results"]
    assert results["held_out_caption_loss_after"] < results["held_out_caption_loss_before"]
    settings = vlp.VLPretrainSettings.from_env()
    root = benchmark_dir(data_dir, 0)
    _, held_pairs = vlp.vl_pretraining_pairs(settings, 64, root)
    held = vlp.held_out_examples(held_pairs)
    losses = {}
    for name in (BASE, VARIANT):
        location = BackboneLocation.resolve(name, data_dir)
        model, tokenizer = build_vl_model(trial(name), location)
        features = vlp.corpus_features(location, held_pairs)
        losses[name] = vlp.caption_loss(model, Collator(tokenizer, features, 24), held, torch.device("cpu"))
    assert losses[BASE] == pytest.approx(results["held_out_caption_loss_before"], abs=1e-4)
    assert losses[VARIANT] == pytest.approx(results["held_out_caption_loss_after"], abs=1e-4)


def test_rebuilding_is_a_no_op(built, data_dir, monkeypatch):
    folder = embedded_dir(data_dir, get_preset(VARIANT))
    stamps = {p: p.stat().st_mtime_ns for p in (folder / "manifest.json", folder / VL_PROJECTION_FILE)}

    def no_training(*args, **kwargs):
        raise AssertionError("a built variant was trained again")

    monkeypatch.setattr(vlp, "train", no_training)
    assert vlp.ensure_vl_pretrained_backbone(data_dir, get_preset(VARIANT), benchmark_dir(data_dir, 0)) == folder
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    # The base's builder accepts the variant: it builds (here: finds) the base.
    assert ensure_embedded_backbone(data_dir, get_preset(VARIANT)) == embedded_dir(data_dir, get_preset(BASE))


def test_the_corpus_is_disjoint_from_the_benchmark(built, data_dir):
    root = benchmark_dir(data_dir, 0)
    # The build steps run in their own process (training.pretrain.pinned): what the variant's
    # corpus excluded is read from its manifest, which records the benchmark it was given.
    assert read_manifest(embedded_dir(data_dir, get_preset(VARIANT)))["corpus_excludes"] == exclusion_identity(root)
    train_pairs, held_pairs = vlp.vl_pretraining_pairs(vlp.VLPretrainSettings.from_env(), 64, root)
    digest = lambda image: hashlib.sha256(image.convert("RGB").tobytes()).hexdigest()  # noqa: E731
    benchmark = set()
    for path in [*(root / "images").glob("*.png"), *(root / "videos").glob("*/frame_*.png")]:
        with Image.open(path) as image:
            benchmark.add(digest(image))
    assert benchmark
    assert not {digest(p.image) for p in [*train_pairs, *held_pairs]} & benchmark


def test_examples_are_captions_and_soft_scored_questions():
    settings = vlp.VLPretrainSettings(n_scenes=8, held_out=2)
    pairs, _ = vlp.vl_pretraining_pairs(settings, 64, None)
    examples = vlp.pretraining_examples(pairs, settings)
    assert len(examples["caption"]) == 6 and len(examples["vqa"]) == 12
    assert all(e.source == "caption: " and 1 <= len(e.targets) <= 5 for e in examples["caption"])
    assert all(e.source.startswith("vqa: ") and max(e.weights) == 1.0 for e in examples["vqa"])
    assert examples == vlp.pretraining_examples(pairs, settings)  # deterministic from the seed


def test_parameter_counts_equal_the_base(built, data_dir):
    counts = {
        name: count_parameters(build_vl_model(trial(name, "adapter"), BackboneLocation.resolve(name, data_dir), meta=True)[0])
        for name in (BASE, VARIANT)
    }
    assert counts[BASE] == counts[VARIANT]


def test_cli_prints_the_folder_and_losses_of_a_built_variant(built, data_dir, capsys):
    assert vl_pretrain_main(["--backbone", BASE, "--data-dir", str(data_dir), "--steps", STEPS]) == 0
    out = capsys.readouterr().out
    assert str(embedded_dir(data_dir, get_preset(VARIANT))) in out and "held-out caption loss" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--steps", "0"], "--steps must be >= 1, got 0"),
        (["--backbone", "clip-rn101+t5-base"], "has no VL-pretrained variant"),
        (["--frobnicate"], "unrecognized arguments: --frobnicate"),
    ],
)
def test_cli_rejects_bad_flags_in_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        vl_pretrain_main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
