"""Predict with a trained run: a data split, or new inputs, in each task's official results format.

    python -m search.predict --run DIR --split test --out predictions.json          # the run's own data
    python -m search.predict --run DIR --data DATA.yaml --split test --out FOLDER    # several tasks
    python -m search.predict --run DIR --task vqa --input questions.jsonl --out answers.json

`--run` is the --out folder of `python -m search.train`. On a data split the predictions are
made exactly as the run scored that split (same features, batches and decoding), so
`python -m search.evaluate` on the file gives the scores of the run's `metrics.json`. One task
writes the file `--out`; several write `--out/<task>.json`. Rows: VQA `[{question_id, answer}]`,
GQA `[{question_id, answer}]`, NLVR2 `[{identifier, prediction}]`, COCO captions
`[{image_id, caption}]`, JSONL tasks `[{id, answer}]` or `[{id, caption}]`, video tasks VALUE's.
The input file of `--input` is described in inference.inputs. The Python API is `inference.load_run`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from search.cli_common import add_device_argument, configure_logging, default_data_dir, device_or_fail, fail, fail_lines
from tasks._files import write_atomic

PROGRAM = "search.predict"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m {PROGRAM}", description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--run", required=True, type=Path, help="run folder written by python -m search.train --out")
    parser.add_argument("--out", required=True, type=Path, help="predictions file (.json); a folder when several tasks are predicted")
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--data", type=Path, default=None, help="data file (YAML, or a train.jsonl) to predict a split of (default: the run's)"
    )
    source.add_argument("--input", type=Path, default=None, help="JSONL file of new examples (needs --task unless the run has one task)")
    parser.add_argument("--split", default=None, help="split of the data to predict: val or test (default test; not with --input)")
    parser.add_argument("--task", default=None, help="the task to predict (default: every task of the run the data has)")
    parser.add_argument("--data-dir", type=Path, default=None, help="where the backbone's weights and feature cache are (default ./data)")
    parser.add_argument("--data-root", type=Path, default=None, metavar="DIR", help="this machine's copy of the run's data folder")
    add_device_argument(parser, help="where it predicts: auto (CUDA when present, else the CPU), cpu, cuda or cuda:N")
    parser.add_argument("--batch-size", type=int, default=None, help="examples per generation call with --input (default: the recipe's)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _check_options(args)

    from inference import RunFolderError, load_run

    device = device_or_fail(PROGRAM, args.device)
    configure_logging()
    try:
        run = load_run(args.run, args.data_dir or default_data_dir(), device)
    except RunFolderError as error:
        fail(PROGRAM, f"--run: {error}")
    if args.task is not None and args.task not in run.tasks:
        fail(PROGRAM, f"--task {args.task!r} is not a task of the run; its tasks: {', '.join(run.tasks)}")
    if args.input is not None:
        files = _predict_inputs(run, args)
    else:
        files = _predict_split(run, args)
    for name, path in files.items():
        print(f"{name}: predictions -> {path}")
    return 0


def _check_options(args) -> None:
    if args.input is not None and args.split is not None:
        fail(PROGRAM, "--split chooses a split of --data; with --input every line is predicted: drop --split")
    if args.input is not None and not args.input.is_file():
        state = "is a folder" if args.input.is_dir() else "does not exist"
        fail(PROGRAM, f"--input {str(args.input)!r} {state}; give a JSONL file of examples, one per line (see inference.inputs)")
    if args.split is not None and args.split not in ("val", "test"):
        fail(PROGRAM, f"--split {args.split!r} is not a split a run scores; use val or test")
    if args.batch_size is not None and args.batch_size < 1:
        fail(PROGRAM, f"--batch-size must be >= 1, got {args.batch_size}")
    if args.out.exists() and args.out.is_dir() and args.out.suffix == ".json":
        fail(PROGRAM, f"--out {str(args.out)!r} is a folder; give a file name ending in .json")
    if args.data_root is not None and not args.data_root.is_dir():
        fail(PROGRAM, f"--data-root {str(args.data_root)!r} is not a folder; give the folder holding this machine's copy of the data")
    if args.data_dir is not None and args.data_dir.exists() and not args.data_dir.is_dir():
        fail(PROGRAM, f"--data-dir {str(args.data_dir)!r} is a file; give the data folder that holds the backbone")


def _outputs(out: Path, names: list[str]) -> dict[str, Path]:
    """One task: `out` is the file; several: `out` is a folder of `<task>.json`."""
    if len(names) == 1:
        if out.is_dir():
            return {names[0]: out / f"{names[0]}.json"}
        return {names[0]: out}
    if out.suffix == ".json" or (out.exists() and not out.is_dir()):
        fail(PROGRAM, f"--out {str(out)!r}: {len(names)} tasks are predicted ({', '.join(names)}); give a folder, or pick one with --task")
    return {name: out / f"{name}.json" for name in names}


def _predict_inputs(run, args) -> dict[str, Path]:
    from inference.inputs import read_inputs
    from tasks.errors import DatasetError

    try:
        task, prompt = run.prompt(args.task)
    except ValueError as error:
        fail(PROGRAM, f"--task: {error}")
    try:
        inputs = read_inputs(args.input)
    except DatasetError as error:
        fail_lines(PROGRAM, [f"--input: {line}" for line in str(error).splitlines()])
    images = [group if len(group) > 1 else group[0] for group in inputs.images]
    texts = None if prompt.kind == "caption" else inputs.texts
    try:
        answers = run.predict(images, texts, task, choices=inputs.choices, batch_size=args.batch_size, show_progress=True)
    except ValueError as error:
        fail(PROGRAM, f"--input {str(args.input)!r}: {error}")
    outputs = _outputs(args.out, [task])
    _write(outputs[task], prompt.results(dict(zip(inputs.ids, answers))))
    return outputs


def _predict_split(run, args) -> dict[str, Path]:
    from tasks.data_spec import DataSpecError, load_data_file
    from tasks.errors import DatasetError
    from training.environment import load_data, prepare_environment
    from training.recipe_run import recipe_data
    from training.trial import score_model

    split = args.split or "test"
    data_dir = (args.data_dir or default_data_dir()).resolve()
    try:
        spec = load_data_file(args.data) if args.data is not None else recipe_data(dict(run.folder.recipe), run.tasks)
    except DataSpecError as error:
        fail_lines(PROGRAM, [f"--data: {line}" for line in error.problems])
    wanted = [args.task] if args.task is not None else [name for name in run.tasks if name in spec.names]
    if not wanted or any(name not in spec.names for name in wanted):
        fail(
            PROGRAM,
            f"the data ({spec.source}) has none of the tasks asked for ({', '.join(wanted or run.tasks)}); its tasks: {', '.join(spec.names)}",
        )
    try:
        loaded = load_data(data_dir, run.config.backbone, spec.subset(tuple(wanted)), data_root=args.data_root)
    except (DatasetError, DataSpecError) as error:
        fail_lines(PROGRAM, [f"data: {line}" for line in str(error).splitlines()])
    lacking = [name for name in wanted if split not in loaded.tasks[name].splits]
    if lacking:
        fail(PROGRAM, f"task(s) {lacking} have no {split} split in {spec.source}; pick --split val, or add the {split} file")
    outputs = _outputs(args.out, wanted)
    from models.backbone_pin import BackboneChanged
    from models.embedded import BuildChanged

    try:
        env = prepare_environment(data_dir, run.config.backbone, loaded, device=run.device)
    except (BuildChanged, BackboneChanged) as error:
        fail_lines(PROGRAM, [f"backbone of the run: {line}" for line in str(error).splitlines()])
    env = dataclasses.replace(env, for_search=False)
    for name in wanted:
        found: dict[str, dict] = {}
        config = dataclasses.replace(run.config, tasks=(name,))
        scores = score_model(run.model, run.tokenizer, config, env, show_progress=True, split=split, predictions=found)
        _write(outputs[name], env.tasks[name].splits[split].results(found[name]))
        print(f"{name} {split}: {scores[name]:.1f} (the task's official metric on these predictions)")
    return outputs


def _write(path: Path, rows: list[dict]) -> None:
    try:
        write_atomic(path, json.dumps(rows, indent=1, default=str) + "\n")
    except OSError as error:
        fail(PROGRAM, f"--out {str(path)!r} could not be written ({error.strerror or error}); nothing was changed", code=1)


if __name__ == "__main__":
    sys.exit(main())
