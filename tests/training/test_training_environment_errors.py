"""A data image that does not decode reaches the commands as a DatasetError (one line each), not a traceback.

models.features raises its own UnreadableImageError (models does not import tasks); the
environment, which reads the data, raises it again as the DatasetError the commands catch.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

import training.environment as environment
from models.features import UnreadableImageError
from tasks.errors import DatasetError


def test_an_unreadable_image_is_a_dataset_error(monkeypatch, tmp_path):
    message = f"cannot read image {tmp_path / 'broken.jpg'}: OSError: truncated; fix or remove this file, then run again"

    def extract(*args, **kwargs):
        raise UnreadableImageError(message)

    monkeypatch.setattr(environment, "encoder_identity", lambda location, device=None: {"encoder": "test"})
    monkeypatch.setattr(environment, "cached_features", extract)
    location = SimpleNamespace(preset=SimpleNamespace(grid=2), clip_model=None)
    tasks = {"vqa": SimpleNamespace(image_paths={"broken": tmp_path / "broken.jpg"}, videos={})}
    with pytest.raises(DatasetError) as error:
        environment.visual_inputs(Path(tmp_path), location, tasks)
    assert str(error.value) == message
    assert isinstance(error.value.__cause__, UnreadableImageError)
