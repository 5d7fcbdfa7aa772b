"""Bad data given to `search.launch --data`: every problem is found before anything is written,
listed at once, one line each naming the file (and record), the rule and the fix; exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from PIL import Image

from search.launch import main


def _jsonl(path: Path, records: list) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))


@pytest.fixture
def folder(tmp_path) -> Path:
    """A valid JSONL task (QA, one image each) that each case breaks in one way."""
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    for i, mode in enumerate(("RGB", "L", "RGBA")):
        Image.new(mode, (8 + i, 8)).save(data / "images" / f"{i}.png")
    qa = [{"id": n, "image": f"images/{n % 3}.png", "text": "what colour?", "answer": "black"} for n in range(4)]
    for split in ("train", "val", "test"):
        _jsonl(data / "shapes" / f"{split}.jsonl", [{**r, "image": "../" + r["image"]} for r in qa])
    _write_file(data, {"shapes": _task()})
    return data


def _task(**changes) -> dict:
    return {"format": "jsonl", "train": "shapes/train.jsonl", "val": "shapes/val.jsonl", "test": "shapes/test.jsonl", **changes}


def _write_file(data: Path, tasks: dict) -> None:
    (data / "data.yaml").write_text(yaml.safe_dump({"tasks": tasks}))


def _break(data: Path, case: str) -> None:
    val = data / "shapes" / "val.jsonl"
    good = json.loads(val.read_text().splitlines()[0])
    if case == "unknown format":
        _write_file(data, {"shapes": _task(format="coco")})
    elif case == "name used twice":
        (data / "data.yaml").write_text(
            "tasks:\n  shapes: {format: jsonl, train: a, val: b}\n  shapes: {format: jsonl, train: a, val: b}\n"
        )
    elif case == "not YAML":
        (data / "data.yaml").write_text("tasks: [unclosed\n")
    elif case == "missing split key":
        _write_file(data, {"shapes": {"format": "jsonl", "train": "shapes/train.jsonl"}})
    elif case == "missing split file":
        _write_file(data, {"shapes": _task(val="shapes/nope.jsonl")})
    elif case == "malformed line":
        _jsonl(val, [good, "{not json"])
    elif case == "duplicate id":
        _jsonl(val, [good, good])
    elif case == "answer outside choices":
        _jsonl(val, [{**good, "choices": ["white", "grey"]}])
    elif case == "QA mixed with captions":
        _jsonl(val, [good, {"id": 99, "image": good["image"], "captions": ["a square."]}])
    elif case == "empty split":
        val.write_text("\n")
    elif case == "missing image":
        _jsonl(val, [{**good, "image": "../images/absent.png"}])
    elif case == "unreadable image":
        (data / "images" / "0.png").write_bytes(b"this is not a PNG")
    elif case == "bad weight":
        _write_file(data, {"shapes": _task(weight=-1)})
    elif case == "unknown key":
        _write_file(data, {"shapes": _task(imges="images")})
    elif case == "bad name":
        _write_file(data, {"1shapes": _task()})
    elif case == "split of another kind":
        _jsonl(val, [{"id": 1, "image": good["image"], "captions": ["a square."]}])
    elif case == "layout without its files":
        (data / "vqa").mkdir()
        _write_file(data, {"vqa": {"format": "vqa", "root": "vqa", "images": "images"}})
    elif case == "two tasks, two problems":
        _write_file(data, {"shapes": _task(weight=0), "other": _task(format="coco")})
    else:
        raise AssertionError(case)


CASES = {
    "unknown format": ["format 'coco' is unknown; use one of jsonl, vqa"],
    "name used twice": ["'shapes' is written twice (line 3)"],
    "not YAML": ["is not valid YAML", "fix the syntax"],
    "missing split key": ["task 'shapes': 'val' is missing; a jsonl task needs train and val"],
    "missing split file": ["val 'shapes/nope.jsonl' does not exist", "fix the path"],
    "malformed line": ["val.jsonl line 2 is not valid JSON"],
    "duplicate id": ["val.jsonl record #1 repeats id=0"],
    "answer outside choices": ["choices must be a list of strings that contains every answer"],
    "QA mixed with captions": ["record #1 is a caption record, but", "one file holds one kind"],
    "empty split": ["val.jsonl holds no records"],
    "missing image": ["names image '../images/absent.png'", "does not exist; fix the path"],
    "unreadable image": ["0.png is not a readable image", "replace the file"],
    "bad weight": ["weight must be a number > 0"],
    "unknown key": ["unknown key(s) ['imges']"],
    "bad name": ["the name must start with a letter"],
    "split of another kind": ["holds caption examples but", "holds qa examples"],
    "layout without its files": ["karpathy_train.json does not exist"],
    "two tasks, two problems": ["task 'shapes': weight must be a number > 0", "task 'other': format 'coco' is unknown"],
}


@pytest.mark.parametrize("case", CASES)
def test_bad_data_is_refused_before_anything_is_written(case, folder, tmp_path, capsys):
    _break(folder, case)
    data_dir, db = tmp_path / "data-dir", tmp_path / "studies.db"
    with pytest.raises(SystemExit) as stopped:
        main(["--budget", "5%", "--data", str(folder / "data.yaml"), "--data-dir", str(data_dir), "--storage", f"sqlite:///{db}"])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert lines and all(line.startswith("search.launch: error: ") for line in lines), err
    for words in CASES[case]:
        assert words in err, (words, err)
    assert "Traceback" not in err
    assert not data_dir.exists() and not db.exists()


def test_a_listed_task_name_must_be_in_the_data_file(folder, tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["--budget", "5%", "--data", str(folder / "data.yaml"), "--tasks", "vqa", "--data-dir", str(tmp_path / "d")])
    assert stopped.value.code == 2
    assert "--tasks names ['vqa'], which" in capsys.readouterr().err


def test_flags_are_matched_exactly(folder, capsys):
    """`--dat FILE` is not taken as `--data` (nor `--data` as `--data-dir`)."""
    with pytest.raises(SystemExit) as stopped:
        main(["--budget", "5%", "--dat", str(folder / "data.yaml")])
    assert stopped.value.code == 2
    assert "unrecognized arguments: --dat" in capsys.readouterr().err


def test_short_form_needs_val_beside_train(tmp_path, capsys):
    _jsonl(tmp_path / "train.jsonl", [{"id": 1, "image": "x.png", "answer": "a"}])
    with pytest.raises(SystemExit) as stopped:
        main(["--budget", "5%", "--data", str(tmp_path / "train.jsonl"), "--data-dir", str(tmp_path / "d")])
    assert stopped.value.code == 2
    assert "no val.jsonl beside it" in capsys.readouterr().err
