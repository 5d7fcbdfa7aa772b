"""Video tasks: frame features as visual tokens, padding masks, and training on TVQA/TVC."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.build import build_vl_model
from models.config import TrainingConfig, TrialConfig
from models.features import cached_features, encoder_identity
from models.visual_encoder import build_visual_encoder
from tasks.errors import DatasetError
from tasks.examples import VideoSource
from training.batches import Collator
from training.environment import prepare_environment
from training.trial import run_trial
from training.visual_inputs import (
    FRAME_GRID,
    MAX_FRAMES,
    MAX_VIDEO_TOKENS,
    VideoTable,
    VisualInputs,
    build_video_table,
    frames_to_extract,
    pool_frame_grid,
    uniform_frames,
)


@pytest.fixture(scope="module")
def video_env(data_dir):
    return prepare_environment(data_dir, "tiny-clip+tiny-t5", ("tvqa", "tvc"))


def test_frames_are_subsampled_evenly_to_the_paper_limit():
    assert uniform_frames(8) == list(range(8))
    picked = uniform_frames(200)
    assert len(picked) == MAX_FRAMES and picked[0] == 0 and picked[-1] == 199
    assert picked == sorted(set(picked))


def _kept_frames(n_frames: int) -> int:
    # Frames of a generated video that fit the token budget, each with its whole pooled grid.
    return min(n_frames, MAX_VIDEO_TOKENS // FRAME_GRID**2)


def test_generated_videos_give_a_small_grid_per_frame_in_frame_order(video_env):
    table = video_env.features.videos
    n_frames = _kept_frames(len(next(iter(video_env.tasks["tvqa"].videos.values())).frames))
    cells = FRAME_GRID**2
    assert n_frames >= 2  # first and last frame at least: motion must be visible
    assert table.features.shape[1:] == (n_frames * cells, 128)
    assert torch.all(table.lengths == n_frames * cells)
    # Frame t's cells are tokens t * cells .. t * cells + cells - 1; objects move, so frames differ.
    first = table.features[0].unflatten(0, (n_frames, cells))
    assert not torch.allclose(first[0], first[-1])
    # Cells of one frame differ too: the grid keeps where things are.
    assert not torch.allclose(first[0, 0], first[0, -1])


def test_frame_grid_pooling_keeps_quadrants():
    # A 4x4 grid whose cell (r, c) holds 10 * r + c: the 2x2 pooling averages each quadrant.
    grid = torch.tensor([[10.0 * r + c for r in range(4) for c in range(4)]]).unsqueeze(-1)  # (1, 16, 1)
    pooled = pool_frame_grid(grid, 2)
    assert pooled.shape == (1, 4, 1)
    assert pooled.flatten().tolist() == [5.5, 7.5, 25.5, 27.5]  # row-major: top-left, top-right, ...
    assert pool_frame_grid(grid, 1).flatten().tolist() == [grid.mean().item()]


def test_npz_and_frame_videos_share_a_table_with_correct_masks(video_env, tmp_path):
    # Precomputed features stay one token per frame; frame grids give FRAME_GRID**2 each.
    vid, source = next(iter(video_env.tasks["tvqa"].videos.items()))
    path = tmp_path / "real.npz"
    np.savez(path, features=np.arange(3 * 128, dtype=np.float32).reshape(3, 128))
    store = _frame_store(video_env, vid, source)
    table = build_video_table({"real": VideoSource("real", path, ()), vid: source}, store, feature_dim=128)
    n_frames = _kept_frames(len(source.frames))
    feats, mask = table.lookup(["real", vid])
    assert feats.shape == (2, n_frames * FRAME_GRID**2, 128)
    assert mask[0].tolist() == [True] * 3 + [False] * (n_frames * FRAME_GRID**2 - 3)
    assert mask[1].all()
    torch.testing.assert_close(feats[0, :3], torch.arange(3 * 128, dtype=torch.float32).reshape(3, 128))


def test_long_videos_keep_frames_within_the_token_budget(video_env):
    vid, source = next(iter(video_env.tasks["tvqa"].videos.items()))
    store = _frame_store(video_env, vid, source)
    table = build_video_table({vid: source}, store, feature_dim=128, max_tokens=3 * FRAME_GRID**2)
    assert int(table.lengths[0]) == 3 * FRAME_GRID**2
    every_frame = len(source.frames) * FRAME_GRID**2
    full = build_video_table({vid: source}, store, feature_dim=128, max_tokens=every_frame).features[0]
    full = full.unflatten(0, (-1, FRAME_GRID**2))
    kept = table.features[0].unflatten(0, (3, FRAME_GRID**2))
    frames = uniform_frames(len(source.frames), 3)
    assert len(frames) == 3 and frames[0] == 0 and frames[-1] == len(source.frames) - 1
    for n, frame in enumerate(frames):  # first, middle and last frame, each with all its cells
        torch.testing.assert_close(kept[n], full[frame])


def _frame_store(env, vid, source):
    # The store of one video's frames, as trials read it.
    location = env.location
    paths = frames_to_extract({vid: source})
    return cached_features(env.data_dir / "features", paths, encoder_identity(location), lambda: build_visual_encoder(location))


def test_video_qa_source_carries_choices_and_subtitles(video_env):
    example = video_env.tasks["tvqa"].train[0]
    assert example.source.startswith("tvqa: ")
    assert " choices: " in example.source and "subtitles: " in example.source
    assert len(example.choices) == 5 and all(c in example.source for c in example.choices)
    assert example.targets[0] in example.choices  # the target is the answer's text


def test_video_qa_scores_the_index_of_the_chosen_answer_text(video_env):
    task = video_env.tasks["tvqa"]
    first, second = task.evaluation[:2]
    # The first gets its right answer's text, the second a wrong choice, so half are right.
    wrong = next(c for c in second.choices if c != second.targets[0])
    assert task.score({first.key: first.targets[0], second.key: wrong}) == 50.0
    # A text that is not one of the offered choices counts as wrong, never as a crash.
    assert task.score({first.key: "sideways", second.key: second.targets[0]}) == 50.0


def test_npz_features_of_the_wrong_width_are_rejected_with_the_file(tmp_path):
    path = tmp_path / "v1.npz"
    np.savez(path, features=np.zeros((5, 64), dtype=np.float32))
    with pytest.raises(DatasetError, match=r"v1\.npz has 64-d frame features.*reads 128-d"):
        build_video_table({"v1": VideoSource("v1", path, ())}, None, feature_dim=128)


def test_padded_frames_do_not_change_the_encoding(video_env):
    # A 3-token video padded to the longest in a batch must encode exactly as when it is alone.
    config = TrialConfig(backbone="tiny-clip+tiny-t5", tasks=("tvqa",), method="full_ft")
    model, tokenizer = build_vl_model(config, video_env.location)
    model.eval()
    full = video_env.features.videos
    short = full.features[:1, :3].clone()
    width = full.features.shape[1]
    padded = torch.nn.functional.pad(short, (0, 0, 0, width - 3))
    table = VideoTable({"short": 0, "long": 1}, torch.cat([padded, full.features[1:2]]), torch.tensor([3, width]))
    example = video_env.tasks["tvqa"].evaluation[0]
    collator = Collator(tokenizer, VisualInputs(videos=table), 128)
    alone_table = VideoTable({"short": 0}, short, torch.tensor([3]))
    alone = Collator(tokenizer, VisualInputs(videos=alone_table), 128)
    pair = [type(example)(**{**example.__dict__, "img_ids": (v,)}) for v in ("short", "long")]
    batch, single = collator.choices(pair), alone.choices(pair[:1])
    assert batch.feats.shape[1] == width and batch.visual_mask[0].tolist() == [True] * 3 + [False] * (width - 3)
    scores = model.score_choices(choice_labels=batch.choice_labels, choice_example=batch.choice_example, **batch.model_inputs())
    scores_alone = model.score_choices(choice_labels=single.choice_labels, choice_example=single.choice_example, **single.model_inputs())
    torch.testing.assert_close(scores[:5], scores_alone, atol=1e-4, rtol=1e-4)


def test_video_tasks_train_together_and_report_official_scores(video_env):
    config = TrialConfig(
        backbone="tiny-clip+tiny-t5",
        tasks=("tvqa", "tvc"),
        method="adapter",
        training=TrainingConfig(steps=6, batch_size=8, eval_batch_size=64),
    )
    outcome = run_trial(config, video_env, show_progress=False)
    assert set(outcome.task_scores) == {"tvqa", "tvc"}
    assert 0 <= outcome.task_scores["tvqa"] <= 100 and outcome.task_scores["tvc"] >= 0
    assert outcome.score == pytest.approx(sum(outcome.task_scores.values()) / 2)


def test_video_sources_are_not_cut_off(video_env):
    # The subtitles come last; a truncated line can be the one that names the object.
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(video_env.location.language_model)
    for name in ("tvqa", "tvc"):
        task = video_env.tasks[name]
        longest = max(len(tokenizer(e.source).input_ids) for e in [*task.train, *task.evaluation])
        assert longest <= task.max_source_tokens, name
