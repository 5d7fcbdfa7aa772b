"""Build (pretrain) the embedded tiny backbone family: CLIP, T5 and BART, each from the generated scenes.

An entry point only, kept for the command's name: it runs training.pretrain's command, the same
flags and output. It is the one place where models reaches into training, and nothing imports it
(tests/models/test_models_layering.py checks both).
"""

from __future__ import annotations

import sys

from training.pretrain.command import main

if __name__ == "__main__":
    sys.exit(main())
