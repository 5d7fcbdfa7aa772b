"""A backbone named by its parts (#22): a user's open_clip checkpoint and save_pretrained language
model load through the spec, and `search.params` counts exactly what loads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from user_backbones import save_bart, save_clip, save_t5_v1_1

import search.params as params_cli
from models.backbone_pin import backbone_digests
from models.backbones.backbone_spec import canonical_backbone
from models.backbones.clip_encoder import grid_path_parameters
from models.backbones.presets import get_preset
from models.build import build_vl_model
from models.location import BackboneLocation
from models.petl.presets import RUN_PRESETS
from models.visual_encoder import build_visual_encoder, visual_feature_dim


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where a user keeps their weights: an RN50 safetensors, a ViT-B-32 .pt state dict, a T5 v1.1 and a BART folder."""
    root = tmp_path_factory.mktemp("user-weights")
    save_clip("RN50", root / "clip" / "rn50.safetensors")
    save_clip("ViT-B-32", root / "clip" / "vit-b-32.pt")
    save_t5_v1_1(root / "t5-v1_1-small")
    save_bart(root / "bart-small")
    return root


PAIRS = [("RN50", "clip/rn50.safetensors", "t5-v1_1-small"), ("ViT-B-32", "clip/vit-b-32.pt", "bart-small")]


def _spec(weights: Path, arch: str, checkpoint: str, lm: str) -> str:
    return f"clip={arch}:{weights / checkpoint},lm={weights / lm}"


@pytest.mark.parametrize(("arch", "checkpoint", "lm"), PAIRS)
def test_search_params_counts_exactly_the_loaded_model(arch, checkpoint, lm, weights: Path, tmp_path: Path, capsys) -> None:
    spec = _spec(weights, arch, checkpoint, lm)
    assert params_cli.main(["--backbone", spec, "--preset", "single-adapter", "--tasks", "vqa", "--json", "--data-dir", str(tmp_path)]) == 0
    counted = json.loads(capsys.readouterr().out)

    location = BackboneLocation.resolve(spec, tmp_path)
    model, tokenizer = build_vl_model(RUN_PRESETS["single-adapter"].trial_config(spec, ("vqa",)), location)
    # The language model is the user's: its weights are the saved ones, its family the saved one.
    saved = load_file(str(weights / lm / "model.safetensors"))
    name = next(n for n in saved if "layers.0" in n or "block.0" in n)
    assert torch.equal(model.lm.state_dict()[name], saved[name])
    assert tokenizer is not None and (weights / lm / "tokenizer.json").is_file()
    if lm.startswith("t5"):
        # T5 v1.1: a gated-GELU FFN (wi_0, wi_1) and unscaled decoder outputs (transformers 5 ties its
        # LM head to the embedding whatever the saved config says; the count follows what loads).
        assert model.lm.config.feed_forward_proj == "gated-gelu" and not model.lm.config.scale_decoder_outputs
        assert any(name.endswith("DenseReluDense.wi_1.weight") for name, _ in model.lm.named_parameters())
    # The paper's definition: every parameter of the VL model (LM with its visual-order rows,
    # V->L projection, PETL), each shared tensor once (parameters() yields it once); CLIP apart.
    assert counted["total"] == sum(p.numel() for p in model.parameters())
    assert counted["trainable"] == sum(p.numel() for p in model.parameters() if p.requires_grad)

    encoder, _ = build_visual_encoder(location)  # loads the user's checkpoint
    file_state = load_file(str(weights / checkpoint)) if checkpoint.endswith(".safetensors") else torch.load(weights / checkpoint)
    assert all(torch.equal(t, file_state[f"visual.{n}"]) for n, t in encoder.visual.state_dict().items())
    grid_path = grid_path_parameters(encoder.visual, "frozen")
    assert counted["breakdown"]["clip_visual"]["total"] == sum(n for n, _ in grid_path.values()) > 0
    assert counted["total_with_clip"] == counted["total"] + counted["breakdown"]["clip_visual"]["total"]
    # The V->L projection reads the tower's grid features at their true width.
    with torch.no_grad():
        features = encoder(torch.zeros(1, 3, 224, 224))
    assert features.shape == (1, 36, visual_feature_dim(location))
    assert model.visual_embedding.feat_proj[0].in_features == features.shape[-1]


def test_the_spec_is_described_from_the_files(weights: Path) -> None:
    rn50 = get_preset(_spec(weights, *PAIRS[0]))
    vit = get_preset(_spec(weights, *PAIRS[1]))
    # RN50's attention pool reads a 7x7 grid at 224 px, ViT-B-32's patch grid is 7x7: both pooled to the paper's 6x6.
    assert (rn50.grid, rn50.image_size, vit.grid, vit.image_size) == (6, 224, 6, 224)
    assert not rn50.embedded and rn50.lm_config is None  # counted from the folder's config and tokenizer, not a preset's


def test_the_stored_name_is_canonical_and_its_files_are_pinned(weights: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(weights)
    relative = "clip=RN50:clip/rn50.safetensors, lm=t5-v1_1-small"
    canonical = canonical_backbone(relative)
    assert canonical == _spec(weights, *PAIRS[0])
    assert canonical_backbone(canonical) == canonical
    monkeypatch.setenv("VLPETL_LANGUAGE_MODEL", str(weights / "bart-small"))  # a preset's override: a spec names its own
    digests = backbone_digests(BackboneLocation.resolve(canonical, tmp_path))
    assert {"clip/rn50.safetensors", "lm/model.safetensors", "lm/config.json", "lm/tokenizer.json"} <= set(digests)
