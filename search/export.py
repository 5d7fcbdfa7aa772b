"""Export the best configuration within a budget as a training recipe.

    python -m search.export --study NAME --storage URL --budget 5% --out best.yaml

The recipe (YAML or JSON, by the file's suffix) holds the full trial configuration, the
scores and parameter counts the search measured, and where it came from; it is what
`python -m search.train --recipe FILE` trains.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from core.budget import BudgetError, parse_budget
from search.cli_common import fail

PROGRAM = "search.export"
FORMATS = {".yaml": "yaml", ".yml": "yaml", ".json": "json"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m {PROGRAM}", description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--study", required=True, help="study name")
    parser.add_argument("--storage", required=True, help="SQLAlchemy URL of the study's database")
    parser.add_argument("--budget", required=True, help="5%%, 0.05 or an absolute count like 150k, 2M")
    parser.add_argument("--out", required=True, type=Path, help="recipe file: .yaml, .yml or .json")
    return parser


def main(argv: list[str] | None = None) -> int:
    from core.formats import PERCENT, SCORE
    from core.pareto import best_within_budget
    from core.recipes import dump_recipe, recipe_from_row
    from storage import (
        StorageURLError,
        list_studies,
        load_results,
        make_readonly_engine,
        redact,
        validate_storage_url,
    )

    args = build_parser().parse_args(argv)
    try:
        budget = parse_budget(args.budget)
        url = validate_storage_url(args.storage)
    except (BudgetError, StorageURLError) as error:
        fail(PROGRAM, str(error))
    fmt = FORMATS.get(args.out.suffix.lower())
    if fmt is None:
        fail(PROGRAM, f"--out {str(args.out)!r} must end in one of {', '.join(FORMATS)}")
    from storage.engine import StorageUnreachableError, check_reachable

    try:
        check_reachable(url)
        engine = make_readonly_engine(url)
        studies = list_studies(engine)
    except FileNotFoundError as error:
        fail(PROGRAM, f"--storage {redact(url)!r}: {error}")
    except StorageUnreachableError as error:
        fail(PROGRAM, f"--storage: {error}")
    if args.study not in studies:
        fail(PROGRAM, f"--study {args.study!r} is not in {redact(url)}; studies there: {', '.join(studies) or '(none)'}")
    results = load_results(engine, args.study)
    best = best_within_budget(results, max_pct=budget.max_pct, max_params=budget.count)
    if best is None:
        fail(PROGRAM, f"no completed trial of study {args.study!r} fits the budget {budget.text!r}; raise the budget or run more trials", code=1)
    recipe = recipe_from_row(best, storage_url=redact(url), budget=budget.text)
    try:
        write_atomic(args.out, dump_recipe(recipe, fmt))
    except OSError as error:  # a full disk, a read-only folder: the old file, if any, is intact
        fail(PROGRAM, f"--out {str(args.out)!r} could not be written ({error.strerror or error}); nothing was changed", code=1)
    print(
        f"trial {int(best['trial_number'])} ({best['method']}, {PERCENT(best['trainable_pct'])} trainable, "
        f"score {SCORE(best['score'])}) -> {args.out}"
    )
    print(f"Train it: python -m search.train --recipe {args.out}")
    return 0


def write_atomic(path: Path, text: str) -> None:
    """Write through a temporary file and rename, so no partial file is ever left.

    The data reaches the disk (fsync) before the rename: otherwise a power loss right after it
    may leave the new name on an empty file. A crash before the rename leaves the old file.

    Raises:
        OSError: the folder cannot be created or the disk refuses the data; ``path`` is unchanged.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


if __name__ == "__main__":
    sys.exit(main())
