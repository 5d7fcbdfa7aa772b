"""`python -m models.pretrain`: the documented name of the command that builds the embedded backbones.

The pretraining itself lives in training.pretrain (it trains, and its corpus comes from
`tasks`, which models must not import); only the command's name stays here. Nothing imports
this package.
"""
