"""Extract visual features ahead of a study: a folder of images into the trials' store, or VALUE videos into per-video files.

An entry point only, kept for the command's name: the command lives in training.prepare, since
it builds the embedded backbone on first use (training.pretrain) and checks VALUE video features
with the task loaders (tasks), neither of which models may import. Same flags, same output;
nothing imports this module (tests/models/test_models_layering.py checks it).
"""

from __future__ import annotations

import sys

from training.prepare import main

if __name__ == "__main__":
    sys.exit(main())
