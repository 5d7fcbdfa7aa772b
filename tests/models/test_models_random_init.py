"""Base-size presets without their weights: a clear error saying how to provide them, local
overrides, and `--random-init` building a trainable model from the config (no network)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from models.backbones.availability import CLIP_CHECKPOINT_ENV, LANGUAGE_MODEL_ENV
from models.backbones.language_model import train_unigram_tokenizer
from models.backbones.presets import BART_BASE, PRESETS, T5_BASE, get_preset
from models.backbones.tiny_bart import train_bpe_tokenizer
from models.build import build_vl_model
from models.config import ConfigError, TrialConfig
from models.embedded import embedded_dir
from models.location import BackboneLocation, WeightsUnavailable
from models.params import count_parameters
from models.petl import get_method
from models.visual_encoder import build_visual_encoder
from search.study_settings import StudySettings
from training.pretrain.embedded import ensure_embedded_backbone


@pytest.fixture
def empty_caches(tmp_path, monkeypatch):
    """No hub model and no CLIP checkpoint anywhere, whatever this machine's caches hold."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv(LANGUAGE_MODEL_ENV, raising=False)
    monkeypatch.delenv(CLIP_CHECKPOINT_ENV, raising=False)
    return tmp_path


def trial(backbone: str, method: str = "adapter") -> TrialConfig:
    return TrialConfig(backbone=backbone, tasks=("vqa",), method=method, method_params={}, freeze=get_method(method).freeze)


def test_missing_weights_name_each_component_and_every_way_to_provide_them(empty_caches):
    location = BackboneLocation.resolve("clip-vit-b32+t5-base", empty_caches / "data")
    with pytest.raises(WeightsUnavailable) as raised:
        location.require_weights()
    text = str(raised.value)
    for needle in (
        "'t5-base'",
        "huggingface-cli download t5-base",
        LANGUAGE_MODEL_ENV,
        "ViT-B-32",
        "'openai'",
        "timm/vit_base_patch32_clip_224.openai",
        CLIP_CHECKPOINT_ENV,
        "--random-init",
        str(empty_caches / "hub"),
    ):
        assert needle in text, needle
    with pytest.raises(WeightsUnavailable):  # building never falls back to random weights silently
        build_visual_encoder(location)


def test_local_directories_stand_in_for_the_hub(empty_caches, monkeypatch, env):
    data_dir = env.data_dir
    # Any save_pretrained directory is accepted as the language model; an open_clip checkpoint file as CLIP.
    checkpoint = empty_caches / "vit.safetensors"
    checkpoint.write_bytes(b"placeholder: only its presence is checked here")
    lm_dir = embedded_dir(data_dir, get_preset("tiny-clip+tiny-t5")) / "language_model"
    monkeypatch.setenv(LANGUAGE_MODEL_ENV, str(lm_dir))
    monkeypatch.setenv(CLIP_CHECKPOINT_ENV, str(checkpoint))
    location = BackboneLocation.resolve("clip-vit-b32+t5-base", data_dir)
    assert location.weights_available and location.missing_weights == ()
    assert (location.language_model, location.clip_checkpoint) == (str(lm_dir), str(checkpoint))
    assert location.clip_quick_gelu, "OpenAI's CLIP weights need QuickGELU, which a checkpoint file does not carry"


def test_random_init_is_refused_for_the_pretrained_embedded_presets(tmp_path):
    with pytest.raises(ConfigError, match="base-size preset"):
        BackboneLocation.resolve("tiny-clip+tiny-t5", tmp_path, random_init=True)


@pytest.mark.parametrize(
    ("train_tokenizer", "base_config"), [(train_unigram_tokenizer, T5_BASE), (train_bpe_tokenizer, BART_BASE)], ids=["t5", "bart"]
)
def test_project_tokenizers_share_the_base_models_special_ids(train_tokenizer, base_config):
    # A random-init base model reads text with the embedded family's tokenizer: its pad and eos
    # ids must be the ones the base config generates and pads with.
    tokenizer = train_tokenizer(["a small red square left of a big blue circle"] * 4, 64)
    assert (tokenizer.pad_token_id, tokenizer.eos_token_id) == (base_config["pad_token_id"], base_config["eos_token_id"])


BASE_PRESETS = sorted(name for name, preset in PRESETS.items() if not preset.embedded)


@pytest.mark.parametrize("backbone", BASE_PRESETS)
def test_random_init_builds_the_exact_architecture_and_trains_a_step(backbone, data_dir, empty_caches):
    # Every base-size preset at full size: the real route end to end, minus the weights.
    location = BackboneLocation.resolve(backbone, data_dir, random_init=True)
    ensure_embedded_backbone(data_dir, get_preset(location.tokenizer_preset))  # what prepare_environment does
    model, tokenizer = build_vl_model(trial(backbone), location)
    meta_model, _ = build_vl_model(trial(backbone), location, meta=True)
    assert count_parameters(model) == count_parameters(meta_model), "random init keeps the base architecture"
    assert tokenizer is not None and len(tokenizer) < model.lm.config.vocab_size

    feat_dim = model.visual_embedding.feat_proj[0].in_features
    if location.clip_model is None:  # the video preset reads 512-d frame features, up to 64 frames
        feats = torch.randn(1, 64, feat_dim)
        assert feat_dim == 512
    else:
        encoder, _ = build_visual_encoder(location)
        again, _ = build_visual_encoder(location)
        image = torch.rand(1, 3, 224, 224)
        with torch.no_grad():
            feats = encoder(image)
            assert torch.equal(feats, again(image)), "the random tower is seeded, so cached features stay valid"
        assert feats.shape == (1, 36, feat_dim), "the paper's 6x6 grid"

    text = tokenizer(["vqa: what color is the square?"], return_tensors="pt")
    labels = tokenizer(["red"], return_tensors="pt").input_ids
    model.train()
    loss = model(text.input_ids, text.attention_mask, feats, labels).mean()
    loss.backward()
    assert torch.isfinite(loss)
    trained = [p for p in model.parameters() if p.requires_grad]
    assert any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in trained)
    model.eval()
    generated = model.generate(text.input_ids, text.attention_mask, feats, max_new_tokens=3)
    assert isinstance(tokenizer.batch_decode(generated, skip_special_tokens=True)[0], str)


def test_launch_without_weights_fails_before_writing_and_names_random_init(tmp_path, empty_caches):
    env = {"HF_HUB_CACHE": str(tmp_path / "hub"), "HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "search.launch",
            "--workers",
            "1",
            "--budget",
            "5%",
            "--backbone",
            "clip-rn101+t5-base",
            "--data-dir",
            str(tmp_path / "data"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert result.returncode == 2
    assert "'t5-base'" in result.stderr and "RN101" in result.stderr and "--random-init" in result.stderr
    assert not (tmp_path / "data").exists()


def test_studies_stored_before_random_init_existed_still_load():
    settings = StudySettings(
        budget="5%",
        backbone="clip-vit-b32+t5-base",
        tasks=("vqa",),
        target_trials=2,
        seed=0,
        steps=3,
        sampler="tpe",
        space_yaml="",
        space_source="default.yaml",
        count_clip=False,
        objectives=("score", "trainable_pct"),
        random_init=True,
    )
    assert StudySettings.from_attr(settings.to_attr()) == settings
    older = settings.to_attr()
    del older["random_init"]
    assert StudySettings.from_attr(older).random_init is False
