"""Which parameters of a VL model receive gradients: PETL modules plus what `config.freeze` names."""

from __future__ import annotations

from models.backbones.clip_encoder import GridEncoder, grid_path_parameters
from models.backbones.sites import is_layernorm, stack_modules, word_embedding_modules
from models.config import TrialConfig
from models.vl_model import VLSeq2Seq


def apply_freezing(model: VLSeq2Seq, config: TrialConfig) -> None:
    """Only PETL modules and what `config.freeze` names receive gradients."""
    freeze = config.freeze
    model.requires_grad_(False)
    lm = model.lm
    if freeze.train_language_model:
        lm.requires_grad_(True)
    if freeze.train_layernorm:
        # VL-PET trains the encoder's LayerNorms only (the decoder's keep text generation intact).
        scope = lm if freeze.train_decoder_layernorm else stack_modules(lm, "encoder")
        for module in scope.modules():
            if is_layernorm(module):
                module.requires_grad_(True)
    if freeze.train_embeddings:
        for module in word_embedding_modules(lm):
            module.requires_grad_(True)
    if freeze.train_lm_head and lm.get_output_embeddings() is not None:
        lm.get_output_embeddings().requires_grad_(True)
    if freeze.train_bias:
        for name, parameter in lm.named_parameters():
            if name.endswith(".bias"):
                parameter.requires_grad_(True)
    if freeze.train_vl_projection:
        model.visual_embedding.requires_grad_(True)
    petl = getattr(model, "petl", None)
    if petl is not None:
        petl.requires_grad_(True)


def attach_trainable_clip(model: VLSeq2Seq, encoder: GridEncoder, policy: str) -> None:
    """Put the CLIP grid encoder inside the model, training what `policy` names (images then
    go through it at every step instead of coming from the feature cache)."""
    trains = grid_path_parameters(encoder.visual, policy)
    for name, parameter in encoder.visual.named_parameters():
        parameter.requires_grad_(trains.get(name, (0, False))[1])
    model.set_visual_encoder(encoder)
