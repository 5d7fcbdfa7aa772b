"""Score a predictions file with the official metric of its task.

    python -m search.evaluate vqa --annotations v2_mscoco_val_annotations.json --predictions results.json --json
    python -m search.evaluate gqa --annotations gqa/testdev.json --predictions results.json
    python -m search.evaluate nlvr2 --annotations nlvr/test.json --predictions results.json
    python -m search.evaluate tvqa --annotations tvqa/test.jsonl --predictions results.json   # also how2qa
    python -m search.evaluate caption --references coco/dataset_coco.json --split test --predictions results.json
    python -m search.evaluate caption --references captions_val2014.json --predictions results.json
    python -m search.evaluate tvc --references tvc/test.jsonl --predictions results.json      # also yc2c
    python -m search.evaluate jsonl --references my-data/test.jsonl --predictions results.json

Ground truth is in the official layouts (tasks/README.md) or a user's JSONL file (tasks.custom),
read as training reads it, so the file `python -m search.predict` writes for a split scores
exactly the run's `metrics.json`. Predictions are JSON lists in the official results formats:

* vqa: ``[{question_id, answer}]``;
* gqa: ``[{question_id, answer}]`` or the challenge's ``[{questionId, prediction}]``;
* nlvr2: ``[{identifier, prediction}]`` with "true"/"false" (any case) or 1/0;
* tvqa / how2qa: ``[{qid, answer}]`` with ``"a3"`` or ``3`` (or ``answer_idx``);
* caption: COCO results ``[{image_id, caption}]`` against the Karpathy ``dataset_coco.json``
  (``--split``: train, restval, val, test or test_ood as the file names them, train with
  restval as training reads it; default test) or COCO-format references
  ``{"images": [{id}], "annotations": [{image_id, caption}]}`` such as captions_val2014.json.
  As pycocoevalcap's COCOEvalCap, the predicted images are scored (a predicted image the
  references lack is an error);
* tvc / yc2c: VALUE results ``[{clip_id, descs: [{desc}]}]`` or ``[{clip_id, caption}]``;
* jsonl: ``[{id, answer}]`` for a QA file (exact match after the GQA normalisation against
  any listed answer) or ``[{id, caption}]`` for a captioning file (the caption metrics);
  ids as the file gives them, else the line number (from 1).

Ids written as ``"12"`` by one tool and ``12`` by another match. Every task but caption needs
one prediction per example. Prints the task's metrics, with ``score`` the number the paper
reports (accuracy in percent, or CIDEr x 100) and ``n`` the number of examples scored;
``--json`` prints one JSON object. Bad input prints one line naming the file and the problem
and exits with status 2. Imports no torch, so it starts fast. The scoring itself is
``tasks.metrics.prediction_files.score_predictions``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from search.cli_common import fail
from tasks.errors import DatasetError
from tasks.metrics.captioning import CAPTION_METRICS, CaptionMetricError
from tasks.coco_captions import FILE_SPLITS
from tasks.metrics.prediction_files import CAPTION_TASKS, JSONL_TASK, QA_TASKS, score_predictions

PROGRAM = "python -m search.evaluate"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROGRAM, description="Score predictions with a task's official metric.", allow_abbrev=False)
    commands = parser.add_subparsers(dest="task", required=True)
    for task in QA_TASKS:
        sub = commands.add_parser(task, help=f"{task} accuracy", allow_abbrev=False)
        sub.add_argument("--annotations", type=Path, required=True, help="ground truth in the official layout")
        sub.add_argument("--predictions", type=Path, required=True, help="results file (JSON list)")
        sub.add_argument("--json", action="store_true", help="print one JSON object")
    for task in (*CAPTION_TASKS, JSONL_TASK):
        what = "a JSONL task's accuracy or caption metrics" if task == JSONL_TASK else f"{task} BLEU/METEOR/ROUGE-L/CIDEr"
        sub = commands.add_parser(task, help=what, allow_abbrev=False)
        sub.add_argument(
            "--references", type=Path, required=True, help="the task's JSONL file" if task == JSONL_TASK else "reference captions"
        )
        sub.add_argument("--predictions", type=Path, required=True, help="results file (JSON list)")
        if task == "caption":
            sub.add_argument(
                "--split",
                choices=FILE_SPLITS,
                default=None,
                help="split of a Karpathy dataset_coco.json (default test; train includes restval)",
            )
        sub.add_argument("--metrics", default="", help=f"comma-separated subset of {','.join(CAPTION_METRICS)} (captioning)")
        sub.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def main(argv: list[str] | None = None) -> None:
    """Parse ``argv``, score, print; exit 2 with one line on bad input."""
    args = _parser().parse_args(argv)
    try:
        if args.task in QA_TASKS:
            result = score_predictions(args.task, args.predictions, annotations=args.annotations)
        else:
            metrics = tuple(m.strip() for m in args.metrics.split(",")) if args.metrics else None
            split = getattr(args, "split", None)
            result = score_predictions(args.task, args.predictions, references=args.references, metrics=metrics, split=split)
    except (DatasetError, CaptionMetricError) as err:
        fail(PROGRAM, str(err))
    except ValueError as err:  # ids that do not match, bad metric names
        fail(PROGRAM, f"{args.predictions}: {err}")
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        for key in sorted(result):
            print(f"{key}: {result[key]}")


if __name__ == "__main__":
    main(sys.argv[1:])
