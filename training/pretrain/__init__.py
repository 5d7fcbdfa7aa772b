"""Pretraining of the embedded tiny backbones: the paper's recipe in miniature.

CLIP is trained contrastively on image-caption pairs, T5 by span corruption and BART by
text infilling, all on a corpus drawn from the generated visual world but disjoint from
every downstream split. `python -m models.pretrain` (its documented name; `python -m
training.pretrain` runs the same command) builds the whole family (embedded.py); vl_variant.py
adds the VL-pretrained variant (`python -m training.vl_pretrain`).
"""
