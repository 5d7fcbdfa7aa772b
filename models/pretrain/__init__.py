"""Pretraining of the embedded tiny backbones: the paper's recipe in miniature.

CLIP is trained contrastively on image-caption pairs, T5 by span corruption and BART by
text infilling, all on a corpus drawn from the generated visual world but disjoint from
every downstream split. `python -m models.pretrain` builds the whole family.
"""
