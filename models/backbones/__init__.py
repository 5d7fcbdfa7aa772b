"""Backbones: the CLIP visual encoder, the seq2seq language model and their presets."""
