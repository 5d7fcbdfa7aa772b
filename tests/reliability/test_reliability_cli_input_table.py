"""Input accepted before issue #26 and refused now: one line naming the value, the rule and the fix; exit 2; nothing written.

One test per command, over a table of (argv, words the message must hold). Each runs in an
empty folder holding only the fixtures below, and that folder must be unchanged afterwards.
The CLIs run in-process through their ``main``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import dashboard.__main__ as dashboard_cli
import dashboard.screenshot as screenshot_cli
import search.evaluate as evaluate_cli
import search.params as params_cli
import tasks.__main__ as tasks_cli
import training.prepare as prepare_cli
import training.pretrain.command as pretrain_cli
import training.vl_pretrain as vl_pretrain_cli
from search import confirm, export, launch, predict, train, worker

NOT_A_DB = "notes.db"  # a text file with a database's name
A_FILE = "a-file"
A_DIR = "a-dir"
SPACE_UTF16 = "space-utf16.yaml"
SPACE_BINARY = "space-binary.yaml"
SPACE_LOG_STEP = "space-log-step.yaml"
BROKEN_YAML = "broken.yaml"
FIXTURES = sorted([NOT_A_DB, A_FILE, A_DIR, SPACE_UTF16, SPACE_BINARY, SPACE_LOG_STEP, BROKEN_YAML])

MEMORY = ["in-memory", "vanish at exit", "sqlite:///path/to/studies.db"]
NEGATIVE = ["'-5%'", "negative", "must be positive"]
NON_ASCII = ["non-ASCII", "ASCII digits", "'5%'"]
IN_A_FILE = ["/a-file' is a file, not a folder", "sqlite:///path/to/studies.db"]
A_FOLDER = ["names the folder", "not a file", "sqlite:///path/to/studies.db"]
NOT_SQLITE = ["notes.db", "is not a SQLite database"]
EMPTY = ["--storage is empty", "give"]


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("VLPETL_STORAGE", raising=False)
    (tmp_path / NOT_A_DB).write_text("not a database\n")
    (tmp_path / A_FILE).write_text("")
    (tmp_path / A_DIR).mkdir()
    (tmp_path / SPACE_UTF16).write_bytes("methods:\n  lora:\n    rank: [4, 8]\n".encode("utf-16"))
    (tmp_path / SPACE_BINARY).write_bytes(bytes(range(256)))
    (tmp_path / SPACE_LOG_STEP).write_text("methods:\n  lora:\n    rank: {low: 1, high: 8, log: true, step: 1}\n")
    (tmp_path / BROKEN_YAML).write_text("config: [backbone\n")
    return tmp_path


def _refused(program, argv: list[str], needles: list[str], folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        program.main(argv)
    assert exited.value.code == 2
    message = capsys.readouterr().err
    for needle in needles:
        assert needle in message, (needle, message)
    assert "Traceback" not in message
    assert sorted(p.name for p in folder.iterdir()) == FIXTURES, "nothing may be written on bad input"
    assert not any((folder / A_DIR).iterdir())


# launch checks its backbone's weights before the storage; a random-init preset needs none.
LAUNCH = ["--backbone", "clip-vit-b32+bart-base", "--random-init", "--data-dir", "data"]


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (["--budget", "5%", "--storage", "sqlite://"], MEMORY),
        (["--budget", "5%", "--storage", "sqlite:///:memory:"], MEMORY),
        (["--budget", "5%", "--storage", ""], EMPTY),
        (["--budget", "5%", "--storage", f"sqlite:///{A_FILE}/studies.db"], IN_A_FILE),
        (["--budget", "5%", "--storage", f"sqlite:///{A_DIR}"], A_FOLDER),
        (["--budget", "5%", "--storage", f"sqlite:///{NOT_A_DB}"], NOT_SQLITE),
        (["--budget", "5%", "--time-limit", "nan"], ["--time-limit", "finite number > 0", "got nan"]),
        (["--budget", "5%", "--time-limit", "inf"], ["--time-limit", "finite number > 0", "got inf"]),
        (["--budget", "5%", "--time-limit", "-1"], ["--time-limit", "finite number > 0", "got -1"]),
        (["--budget", "５%"], NON_ASCII),
        (["--budget", "٥%"], NON_ASCII),
        (["--budget", "-5%"], NEGATIVE),
        (["--budget=-5%"], NEGATIVE),
        (["--budget", "5%", "--space", SPACE_UTF16], [SPACE_UTF16, "not UTF-8", "save it as UTF-8 YAML"]),
        (["--budget", "5%", "--space", SPACE_BINARY], [SPACE_BINARY, "not UTF-8", "save it as UTF-8 YAML"]),
        (["--budget", "5%", "--space", SPACE_LOG_STEP], ["methods.lora.rank", "log: true and step: 1 cannot be combined", "drop one"]),
        (["--budget", "5%", "--confirm-seeds", "0"], ["--confirm-seeds", "1 (no confirmation) to 10", "got 0"]),
        (["--budget", "5%", "--confirm-seeds", "11"], ["--confirm-seeds", "1 (no confirmation) to 10", "got 11"]),
        (["--budget", "5%", "--confirm", "all"], ["--confirm 'all'", "best", "front"]),
    ],
)
def test_launch_refuses(argv: list[str], needles: list[str], folder: Path, capsys) -> None:
    _refused(launch, [*argv, *LAUNCH], needles, folder, capsys)


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (["--storage", "sqlite://"], MEMORY),
        (["--storage", ""], EMPTY),
        (["--storage", f"sqlite:///{A_DIR}"], A_FOLDER),
        (["--storage", f"sqlite:///{NOT_A_DB}"], NOT_SQLITE),
        (["--storage", "sqlite:///studies.db", "--time-limit", "nan"], ["--time-limit", "finite number > 0", "got nan"]),
    ],
)
def test_worker_refuses(argv: list[str], needles: list[str], folder: Path, capsys) -> None:
    _refused(worker, ["--study", "s", *argv], needles, folder, capsys)


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (["--storage", "sqlite://"], MEMORY),
        (["--storage", ""], EMPTY),
        (["--storage", f"sqlite:///{NOT_A_DB}"], NOT_SQLITE),
        (["--storage", "sqlite:///studies.db", "--seeds", "1"], ["--seeds must be 2 to 10", "got 1", "own seed"]),
        (["--storage", "sqlite:///studies.db", "--seeds", "40"], ["--seeds must be 2 to 10", "got 40"]),
        (["--storage", "sqlite:///studies.db", "--time-limit", "nan"], ["--time-limit", "finite number > 0", "got nan"]),
        (["--storage", "sqlite:///studies.db"], ["--study 's' does not exist", "no database", "search.launch"]),
        (["--storage", "sqlite:///studies.db", "--data-dir", A_FILE], ["--data-dir", "is a file", "pass a folder"]),
    ],
)
def test_confirm_refuses_before_opening_the_study(argv: list[str], needles: list[str], folder: Path, capsys) -> None:
    _refused(confirm, ["--study", "s", *argv], needles, folder, capsys)


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (["--storage", "sqlite://", "--budget", "5%"], MEMORY),
        (["--storage", f"sqlite:///{NOT_A_DB}", "--budget", "5%"], NOT_SQLITE),
        (["--storage", "sqlite:///studies.db", "--budget", "-5%"], NEGATIVE),
        (["--storage", "sqlite:///studies.db", "--budget", "５%"], NON_ASCII),
    ],
)
def test_export_refuses(argv: list[str], needles: list[str], folder: Path, capsys) -> None:
    _refused(export, ["--study", "s", *argv, "--out", "r.yaml"], needles, folder, capsys)


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (["--storage", "sqlite://"], MEMORY),
        (["--storage", ""], EMPTY),
        (["--storage", f"sqlite:///{A_DIR}"], A_FOLDER),
        (["--storage", f"sqlite:///{A_FILE}/studies.db"], IN_A_FILE),
    ],
)
def test_dashboard_refuses(argv: list[str], needles: list[str], folder: Path, capsys) -> None:
    _refused(dashboard_cli, argv, needles, folder, capsys)


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (
            ["--preset", "single-adapter", "--tasks", "vqa,,zzz"],
            ["'vqa,,zzz'", "an empty name", "unknown tasks ['zzz']", "single commas: vqa, gqa"],
        ),
        (["--list", "--preset", "nope"], ["--preset 'nope' is unknown", "known presets:", "single-adapter"]),
    ],
)
def test_params_refuses(argv: list[str], needles: list[str], folder: Path, capsys) -> None:
    _refused(params_cli, argv, needles, folder, capsys)


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A user's weights folder, outside the checked folder: a good RN50 checkpoint and T5, and bad ones."""
    from user_backbones import save_clip, save_t5_v1_1

    root = tmp_path_factory.mktemp("weights")
    save_clip("RN50", root / "rn50.safetensors")
    save_t5_v1_1(root / "t5")
    for family in ("gpt2", "bert"):
        (root / family).mkdir()
        (root / family / "config.json").write_text(json.dumps({"model_type": family}))
    (root / "no-tokenizer").mkdir()
    shutil.copy(root / "t5" / "config.json", root / "no-tokenizer" / "config.json")
    import torch
    from safetensors.torch import save_file

    save_file({"feat_proj.0.weight": torch.zeros(32, 8)}, str(root / "narrow-proj.safetensors"))  # the T5 is 64 wide
    (root / "text-proj.safetensors").write_text("not a safetensors file")
    return root


SYNTAX = ["clip=ARCH:CHECKPOINT,lm=DIR_OR_HUB_ID"]
# Backbone specs (issue #22), with W the weights folder: (spec, words the message must hold).
BAD_SPECS = [
    ("clip=RN99:W/rn50.safetensors,lm=W/t5", ["clip='RN99' is not an open_clip architecture", "open_clip.list_models()"]),
    ("clip=ViT-B-32:W/rn50.safetensors,lm=W/t5", ["rn50.safetensors' does not fit the open_clip architecture 'ViT-B-32'", "missing"]),
    ("clip=RN50:W/rn50.safetensors,lm=W/no-tokenizer", ["no-tokenizer' has no tokenizer", "tokenizer.save_pretrained"]),
    ("clip=RN50:W/rn50.safetensors,lm=W/gpt2", ["is a 'gpt2' model", "T5 family", "BART family"]),
    ("clip=RN50:W/rn50.safetensors,lm=W/bert", ["is a 'bert' model", "T5 family", "BART family"]),
    ("clip=RN50:W/rn50.safetensors,lm=W/t5,proj=W/none.safetensors", ["none.safetensors' does not exist", "training.vl_pretrain"]),
    ("clip=RN50:W/rn50.safetensors,lm=W/t5,proj=W/rn50.safetensors", ["holds no V->L projection", "feat_proj.0.weight missing"]),
    ("clip=RN50:W/rn50.safetensors,lm=W/t5,proj=W/narrow-proj.safetensors", ["projects to width 32", "d_model is 64"]),
    ("clip=RN50:W/rn50.safetensors,lm=W/t5,proj=W/text-proj.safetensors", ["is not a readable safetensors file"]),
    ("clip=convnext_tiny:W/rn50.safetensors,lm=W/t5", ["clip='convnext_tiny'", "without the spatial grid", "ResNets", "ViTs"]),
    ("lm=W/t5", ["clip= missing", *SYNTAX]),
    ("clip=RN50:W/rn50.safetensors", ["lm= missing", *SYNTAX]),
    ("clip=RN50:W/rn50.safetensors,lm=W/t5,size=3", ["unknown key 'size'", *SYNTAX]),
    ("clip=RN50:,lm=W/t5", ["'RN50:' is not ARCH:CHECKPOINT", *SYNTAX]),
    ("clip=RN50:W/rn50.safetensors,lm=", ["'lm=' is not KEY=VALUE", *SYNTAX]),
    ("clip=RN50:W/missing.pt,lm=W/t5", ["missing.pt' does not exist", ".safetensors, .pt or .bin"]),
    ("clip=RN50:W/t5,lm=W/t5", ["t5' is a directory", "give the weight file in it"]),
    ("clip=RN50:W/rn50.safetensors,lm=W/none", ["none' is neither a directory nor a hub model", "nothing is downloaded"]),
]


@pytest.mark.parametrize(("spec", "needles"), BAD_SPECS)
def test_launch_refuses_a_bad_backbone_spec(spec: str, needles: list[str], weights: Path, folder: Path, capsys) -> None:
    _refused(launch, ["--budget", "5%", "--backbone", spec.replace("W/", f"{weights}/"), "--data-dir", "data"], needles, folder, capsys)


@pytest.mark.parametrize(("spec", "needles"), BAD_SPECS)
def test_params_refuses_a_bad_backbone_spec(spec: str, needles: list[str], weights: Path, folder: Path, capsys) -> None:
    argv = ["--backbone", spec.replace("W/", f"{weights}/"), "--preset", "single-adapter", "--data-dir", "data"]
    _refused(params_cli, argv, needles, folder, capsys)


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (["generate", "bench", "--image-size", "0"], ["--image-size must be >= 1, got 0"]),
        (["generate-vqa", "vqa", "--train", "-3"], ["--train must be >= 1, got -3"]),
        (["generate-vqa", "vqa", "--questions-per-image", "9"], ["--questions-per-image must be 1-5, got 9"]),
        (["generate", A_FILE], ["'a-file' is a file", "give a folder"]),
        (["generate", f"{A_FILE}/bench"], ["'a-file' is a file", "give a folder"]),
    ],
)
def test_tasks_generate_refuses(argv: list[str], needles: list[str], folder: Path, capsys) -> None:
    _refused(tasks_cli, argv, needles, folder, capsys)


# Device flags, in words that hold on a machine with GPUs as on one without.
NOT_A_DEVICE = ["is not a device", "use auto, cpu, cuda or cuda:N"]
NO_SUCH_GPU = ["--device 'cuda:99'", "CUDA device", "use"]
STUDY = ["--study", "s", "--storage", "sqlite:///studies.db"]


@pytest.mark.parametrize(
    ("program", "argv", "needles"),
    [
        (launch, [*LAUNCH, "--budget", "5%", "--device", "tpu"], ["--device 'tpu'", *NOT_A_DEVICE]),
        (launch, [*LAUNCH, "--budget", "5%", "--device", "cuda:99"], NO_SUCH_GPU),
        (launch, [*LAUNCH, "--budget", "5%", "--device", "cpu:1"], ["--device 'cpu:1'", *NOT_A_DEVICE]),
        (launch, [*LAUNCH, "--budget", "5%", "--gpus", "99"], ["--gpus '99'", "GPU 99 does not exist", "this machine has"]),
        (launch, [*LAUNCH, "--budget", "5%", "--gpus", "0,x"], ["--gpus '0,x'", "GPU indices separated by commas", "--gpus 0,1"]),
        (launch, [*LAUNCH, "--budget", "5%", "--device", "cpu", "--gpus", "0"], ["--gpus '0' names GPUs", "--device 'cpu'", "drop one"]),
        (worker, [*STUDY, "--device", "gpu"], ["--device 'gpu'", *NOT_A_DEVICE]),
        (worker, [*STUDY, "--device", "cuda:99"], NO_SUCH_GPU),
        (confirm, [*STUDY, "--device", "cuda:99"], NO_SUCH_GPU),
        (train, ["--recipe", "recipe.json", "--device", "cuda:99"], NO_SUCH_GPU),
        (predict, ["--run", A_DIR, "--out", "predictions", "--device", "cuda:99"], NO_SUCH_GPU),
        (prepare_cli, ["--images", A_DIR, "--device", "cuda:99"], NO_SUCH_GPU),
    ],
)
def test_device_flags_are_refused_in_one_line(program, argv: list[str], needles: list[str], folder: Path, capsys) -> None:
    _refused(program, argv, needles, folder, capsys)


LONG_NAME = "n" * 300


@pytest.mark.parametrize(
    ("program", "argv", "needles"),
    [
        # models.pretrain
        (pretrain_cli, ["--data-dir", A_FILE], ["--data-dir 'a-file' is a file", "pass a folder"]),
        (pretrain_cli, ["--data-dir", f"{A_FILE}/x"], ["cannot be created", "a-file' is a file"]),
        (pretrain_cli, ["--data-dir", "/proc/vlpetl"], ["cannot be created in '/proc'", "a folder you can write to"]),
        (pretrain_cli, ["--data-dir", f"{A_DIR}/{LONG_NAME}"], ["longer than 255 bytes", "shorter path"]),
        (pretrain_cli, ["--digests", "--preset", "tiny-clip+tiny-t5"], ["--digests lists every built backbone; drop --preset"]),
        (pretrain_cli, ["--preset", "nope"], ["invalid choice: 'nope'", "tiny-clip+tiny-t5"]),
        # search.train
        (train, ["--recipe", A_DIR], ["recipe 'a-dir' is a folder", "give the recipe file"]),
        (train, ["--recipe", "missing.yaml"], ["recipe 'missing.yaml' does not exist", "python -m search.export"]),
        (train, ["--recipe", BROKEN_YAML], ["recipe 'broken.yaml' is not valid YAML at line 2", "fix it or export it again"]),
        (train, ["--recipe", NOT_A_DB], ["has no 'config' mapping", "python -m search.export"]),
        (train, ["--recipe", BROKEN_YAML, "--steps", "0"], ["--steps must be >= 1, got 0"]),
        # search.predict
        (predict, ["--run", A_DIR, "--out", "predictions"], ["run.json is missing", "python -m search.train"]),
        (predict, ["--run", "missing", "--out", "predictions"], ["'missing' does not exist or is not a folder", "--out folder"]),
        (predict, ["--run", A_FILE, "--out", "predictions"], ["'a-file' does not exist or is not a folder"]),
        # search.evaluate
        (evaluate_cli, ["vqa", "--annotations", A_DIR, "--predictions", A_FILE], ["a-dir is a folder, not a file", "give the file itself"]),
        (evaluate_cli, ["vqa", "--annotations", "missing.json", "--predictions", A_FILE], ["missing.json does not exist"]),
        (evaluate_cli, ["jsonl", "--references", NOT_A_DB, "--predictions", A_FILE], ["line 1 is not valid JSON", "one JSON object"]),
        # dashboard.screenshot
        (screenshot_cli, ["--out", f"{A_FILE}/shot.png"], ["cannot be written", "a-file' is a file"]),
        (screenshot_cli, ["--out", "shot.jpg"], ["must name a .png file"]),
        (screenshot_cli, ["--storage", "sqlite:///missing.db", "--out", "shot.png"], ["No study database", "missing.db"]),
        (screenshot_cli, ["--storage", f"sqlite:///{NOT_A_DB}", "--out", "shot.png"], NOT_SQLITE),
        (screenshot_cli, ["--storage", "", "--out", "shot.png"], ["--storage is empty"]),
        # training.vl_pretrain
        (vl_pretrain_cli, ["--steps", "0"], ["--steps must be >= 1, got 0"]),
        (vl_pretrain_cli, ["--seed", "-1"], ["--seed must be >= 0, got -1"]),
        (vl_pretrain_cli, ["--backbone", "nope"], ["unknown backbone 'nope'"]),
        (vl_pretrain_cli, ["--out", "vlp"], ["--out applies to VL pretraining on your data", "pass --data FILE"]),
        (vl_pretrain_cli, ["--data", A_FILE], ["--data needs --out DIR"]),
        (vl_pretrain_cli, ["--data-dir", A_FILE], ["--data-dir", "is a file", "pass a folder"]),
        (vl_pretrain_cli, ["--data", A_FILE, "--out", A_DIR, "--learning-rate", "3"], ["--learning-rate must be in (0, 1), got 3.0"]),
    ],
)
def test_every_other_command_refuses_bad_input_in_one_line(program, argv: list[str], needles: list[str], folder: Path, capsys) -> None:
    _refused(program, argv, needles, folder, capsys)


@pytest.mark.parametrize("value", ["abc", "-1", "0"])
def test_models_pretrain_refuses_a_bad_step_count_in_the_environment(value: str, folder: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("VLPETL_PRETRAIN_STEPS", value)
    _refused(
        pretrain_cli, ["--data-dir", "data"], [f"VLPETL_PRETRAIN_STEPS={value!r} must be a positive integer", "unset it"], folder, capsys
    )
