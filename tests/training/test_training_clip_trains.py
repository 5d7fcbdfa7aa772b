"""A CLIP that trains: images go through the encoder inside the model at every step."""

from __future__ import annotations

import torch

from models.build import build_vl_model
from models.config import FreezeConfig, TrainingConfig, TrialConfig
from models.params import count_parameters, parameter_report
from models.petl import get_method
from training.batches import Collator
from training.trial import train_trial


def _config(policy: str, steps: int = 3) -> TrialConfig:
    freeze = FreezeConfig(**{**get_method("adapter").freeze.__dict__, "visual_encoder": policy})
    return TrialConfig(
        backbone="tiny-clip+tiny-t5",
        tasks=("vqa",),
        method="adapter",
        freeze=freeze,
        training=TrainingConfig(steps=steps, batch_size=8, eval_batch_size=64),
    )


def test_pixels_through_the_models_clip_match_the_cached_features(env):
    model, tokenizer = build_vl_model(_config("last_block"), env.location)
    model.eval()
    examples = env.tasks["vqa"].evaluation[:4]
    cached = Collator(tokenizer, env.features, 24).inputs(examples)
    pixels = Collator(tokenizer, env.features, 24, pixels=True).inputs(examples)
    assert pixels.feats.dim() == 5 and pixels.image_index.shape == cached.image_index.shape
    with torch.no_grad():
        from_cache, _ = model.encoder_inputs(**cached.model_inputs())
        from_pixels, _ = model.encoder_inputs(**pixels.model_inputs())
    torch.testing.assert_close(from_pixels, from_cache, atol=1e-4, rtol=1e-4)


def test_last_block_policy_trains_only_clips_last_block_and_the_paper_count_excludes_clip(env):
    frozen, _ = build_vl_model(_config("frozen"), env.location)
    model, _ = build_vl_model(_config("last_block"), env.location)
    trains = {n for n, p in model.visual_encoder.named_parameters() if p.requires_grad}
    assert trains and all(n.startswith("visual.transformer.resblocks.2.") for n in trains)
    assert count_parameters(model) == count_parameters(frozen)
    report = parameter_report(_config("last_block"), env.location)
    clip_trainable = sum(p.numel() for p in model.visual_encoder.parameters() if p.requires_grad)
    assert report.with_clip.trainable == report.paper.trainable + clip_trainable


def test_a_trial_with_clip_training_updates_its_last_block_only(env):
    config = _config("last_block")
    reference, _ = build_vl_model(config, env.location)
    trained = train_trial(config, env, show_progress=False)
    before = dict(reference.visual_encoder.named_parameters())
    changed = {n for n, p in trained.model.visual_encoder.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all(n.startswith("visual.transformer.resblocks.2.") for n in changed)
    assert 0 <= trained.outcome.task_scores["vqa"] <= 100


def test_clip_batchnorm_statistics_are_not_updated_in_training_mode(env):
    model, _ = build_vl_model(_config("trainable"), env.location)
    model.train()
    assert model.lm.training and not model.visual_encoder.training
