"""Exact parameter counts of a named run preset on a backbone, built on the meta device.

    python -m search.params --backbone clip-rn101+bart-base --preset single-adapter [--tasks vqa,gqa] [--json]
    python -m search.params --list
    python -m search.params --space > my-space.yaml      # the default search space, to edit
    python -m search.params --space --count-clip         # ... of a --count-clip study (CLIP's policy too)

Prints trainable / total parameters by the paper's definition (PAPER.md §3: CLIP excluded)
and with the CLIP image tower, and a breakdown by component. Nothing is downloaded or
allocated; task names only set how many per-task modules exist. Tasks default to the paper's
four image tasks (vqa, gqa, nlvr2, caption), or its four video tasks for a video backbone.
The counting is `models.preset_counts`.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from search.cli_common import default_data_dir, fail

PROGRAM = "search.params"
DEFAULT_BACKBONE = "clip-rn101+bart-base"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m {PROGRAM}", description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument(
        "--backbone",
        default=DEFAULT_BACKBONE,
        help=f"backbone preset (default {DEFAULT_BACKBONE}) or spec clip=ARCH:CHECKPOINT,lm=DIR_OR_HUB_ID",
    )
    parser.add_argument("--preset", default=None, help="run preset, e.g. single-adapter (see --list)")
    parser.add_argument("--list", action="store_true", help="list the run presets and backbones, then exit")
    parser.add_argument(
        "--space",
        action="store_true",
        help="print the default search space as YAML (every PETL method's search block): a template for search.launch --space FILE",
    )
    parser.add_argument(
        "--count-clip",
        action="store_true",
        help="with --space: the default space of a search.launch --count-clip study (it also searches CLIP's policy)",
    )
    parser.add_argument("--tasks", default=None, help="comma-separated task names (default: the paper's four)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--data-dir", type=Path, default=None, help="where the embedded tiny backbone lives (default ./data)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from models.petl.presets import IMAGE_TASKS, RUN_PRESETS, VIDEO_TASKS

    # Checked before --list too: a preset that --list silently ignores looks accepted.
    if args.preset is not None and args.preset not in RUN_PRESETS:
        fail(PROGRAM, f"--preset {args.preset!r} is unknown; known presets: {', '.join(sorted(RUN_PRESETS))}")
    if args.list:
        from models.preset_counts import preset_catalogue

        logging.basicConfig(level=logging.ERROR)  # open_clip warns that the meta tower has no weights
        print(preset_catalogue((args.data_dir or default_data_dir()).resolve()))
        return 0
    if args.space:
        from search.space_file import load_space

        print(load_space(search_clip=args.count_clip).text, end="")
        return 0
    if args.preset is None:
        fail(PROGRAM, "--preset is required; python -m search.params --list shows the run presets")

    from models.backbones.backbone_spec import canonical_backbone
    from models.config import ConfigError
    from models.preset_counts import counts_table, default_tasks, preset_counts

    try:  # a spec is described from its files: its counts are the user's model's
        args.backbone = canonical_backbone(args.backbone)
    except ConfigError as error:
        fail(PROGRAM, "--backbone " + "; ".join(error.problems))
    if args.tasks is None:
        tasks = default_tasks(args.backbone)
    else:
        given = [t.strip() for t in args.tasks.split(",")]
        known = (*IMAGE_TASKS, *VIDEO_TASKS)
        problems = ["an empty name (a stray comma)"] if "" in given else []
        unknown = [t for t in given if t and t not in known]
        problems += [f"unknown tasks {unknown}"] if unknown else []
        if problems:
            fail(
                PROGRAM,
                f"--tasks {args.tasks!r} has {' and '.join(problems)}; give known tasks separated by single commas: {', '.join(known)}",
            )
        tasks = tuple(given)
        if not tasks or len(set(tasks)) != len(tasks):
            fail(PROGRAM, f"--tasks must name distinct tasks separated by commas, got {args.tasks!r}")
    logging.basicConfig(level=logging.ERROR)  # open_clip warns that the meta tower has no weights

    data_dir = (args.data_dir or default_data_dir()).resolve()
    try:
        result = preset_counts(args.backbone, args.preset, tasks, data_dir)
    except ConfigError as error:
        fail(PROGRAM, str(error).replace("\n", " "))
    except OSError as error:
        fail(PROGRAM, f"backbone {args.backbone!r} is not built under {data_dir}: {error}; run python -m search.launch once")
    print(json.dumps(result, indent=2, default=list) if args.json else counts_table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
