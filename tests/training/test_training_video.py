"""Video tasks: frame features as visual tokens, padding masks, and training on TVQA/TVC."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.build import build_vl_model
from models.config import TrainingConfig, TrialConfig
from tasks.errors import DatasetError
from tasks.examples import VideoSource
from training.batches import Collator
from training.environment import prepare_environment
from training.trial import run_trial
from training.visual_inputs import MAX_FRAMES, VideoTable, VisualInputs, build_video_table, uniform_frames


@pytest.fixture(scope="module")
def video_env(data_dir):
    return prepare_environment(data_dir, "tiny-clip+tiny-t5", ("tvqa", "tvc"))


def test_frames_are_subsampled_evenly_to_the_paper_limit():
    assert uniform_frames(8) == list(range(8))
    picked = uniform_frames(200)
    assert len(picked) == MAX_FRAMES and picked[0] == 0 and picked[-1] == 199
    assert picked == sorted(set(picked))


def test_generated_videos_give_one_token_per_frame(video_env):
    table = video_env.features.videos
    n_frames = len(next(iter(video_env.tasks["tvqa"].videos.values())).frames)
    assert table.features.shape[1:] == (n_frames, 128)
    assert torch.all(table.lengths == n_frames)
    # Frames differ (objects move), so their pooled features do too.
    first = table.features[0]
    assert not torch.allclose(first[0], first[-1])


def test_video_qa_source_carries_choices_and_subtitles(video_env):
    example = video_env.tasks["tvqa"].train[0]
    assert example.source.startswith("tvqa: ")
    assert " a0: " in example.source and " a4: " in example.source and "subtitles: " in example.source
    assert example.choices == ("a0", "a1", "a2", "a3", "a4") and example.targets[0] in example.choices


def test_npz_features_of_the_wrong_width_are_rejected_with_the_file(tmp_path):
    path = tmp_path / "v1.npz"
    np.savez(path, features=np.zeros((5, 64), dtype=np.float32))
    with pytest.raises(DatasetError, match=r"v1\.npz has 64-d frame features.*reads 128-d"):
        build_video_table({"v1": VideoSource("v1", path, ())}, None, feature_dim=128)


def test_padded_frames_do_not_change_the_encoding(video_env):
    # A 3-frame video padded to 8 in a batch must encode exactly as when it is alone.
    config = TrialConfig(backbone="tiny-clip+tiny-t5", tasks=("tvqa",), method="full_ft")
    model, tokenizer = build_vl_model(config, video_env.location)
    model.eval()
    full = video_env.features.videos
    short = full.features[:1, :3].clone()
    table = VideoTable({"short": 0, "long": 1}, torch.cat([torch.nn.functional.pad(short, (0, 0, 0, 5)), full.features[1:2]]),
                       torch.tensor([3, 8]))
    example = video_env.tasks["tvqa"].evaluation[0]
    collator = Collator(tokenizer, VisualInputs(videos=table), 128)
    alone_table = VideoTable({"short": 0}, short, torch.tensor([3]))
    alone = Collator(tokenizer, VisualInputs(videos=alone_table), 128)
    pair = [type(example)(**{**example.__dict__, "img_ids": (v,)}) for v in ("short", "long")]
    batch, single = collator.choices(pair), alone.choices(pair[:1])
    assert batch.feats.shape[1] == 8 and batch.visual_mask[0].tolist() == [True] * 3 + [False] * 5
    scores = model.score_choices(choice_labels=batch.choice_labels, choice_example=batch.choice_example, **batch.model_inputs())
    scores_alone = model.score_choices(
        choice_labels=single.choice_labels, choice_example=single.choice_example, **single.model_inputs()
    )
    torch.testing.assert_close(scores[:5], scores_alone, atol=1e-4, rtol=1e-4)


def test_video_tasks_train_together_and_report_official_scores(video_env):
    config = TrialConfig(
        backbone="tiny-clip+tiny-t5", tasks=("tvqa", "tvc"), method="adapter",
        training=TrainingConfig(steps=6, batch_size=8, eval_batch_size=64),
    )
    outcome = run_trial(config, video_env, show_progress=False)
    assert set(outcome.task_scores) == {"tvqa", "tvc"}
    assert 0 <= outcome.task_scores["tvqa"] <= 100 and outcome.task_scores["tvc"] >= 0
    assert outcome.score == pytest.approx(sum(outcome.task_scores.values()) / 2)
