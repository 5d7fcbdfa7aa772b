"""Export the best configuration within a budget as a training recipe.

    python -m search.export --study NAME --storage URL --budget 5% --out best.yaml

The recipe (YAML or JSON, by the file's suffix) holds the full trial configuration, the
scores and parameter counts the search measured, and where it came from; it is what
`python -m search.train --recipe FILE` trains.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.budget import BudgetError, parse_budget
from search.cli_common import fail
from tasks._files import write_atomic

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
    args = build_parser().parse_args(argv)
    return export(study=args.study, storage=args.storage, budget_text=args.budget, out=args.out)


def export(*, study: str, storage: str, budget_text: str, out: Path) -> int:
    """Write the best completed trial of `study` within the budget to the recipe file `out`.

    Returns 0; a bad option prints one line and exits with 2, no trial within the budget or an
    unwritable `out` with 1 (SystemExit), and `out` is then unchanged.
    """
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

    try:
        budget = parse_budget(budget_text)
        url = validate_storage_url(storage)
    except (BudgetError, StorageURLError) as error:
        fail(PROGRAM, str(error))
    fmt = FORMATS.get(out.suffix.lower())
    if fmt is None:
        fail(PROGRAM, f"--out {str(out)!r} must end in one of {', '.join(FORMATS)}")
    from storage.engine import StorageUnreachableError, check_reachable

    try:
        check_reachable(url)
        engine = make_readonly_engine(url)
        studies = list_studies(engine)
    except FileNotFoundError as error:
        fail(PROGRAM, f"--storage {redact(url)!r}: {error}")
    except StorageUnreachableError as error:
        fail(PROGRAM, f"--storage: {error}")
    if study not in studies:
        fail(PROGRAM, f"--study {study!r} is not in {redact(url)}; studies there: {', '.join(studies) or '(none)'}")
    results = load_results(engine, study)
    best = best_within_budget(results, max_pct=budget.max_pct, max_params=budget.count)
    if best is None:
        fail(PROGRAM, f"no completed trial of study {study!r} fits the budget {budget.text!r}; raise the budget or run more trials", code=1)
    recipe = recipe_from_row(best, storage_url=redact(url), budget=budget.text)
    try:
        write_atomic(out, dump_recipe(recipe, fmt))
    except OSError as error:  # a full disk, a read-only folder: the old file, if any, is intact
        fail(PROGRAM, f"--out {str(out)!r} could not be written ({error.strerror or error}); nothing was changed", code=1)
    print(
        f"trial {int(best['trial_number'])} ({best['method']}, {PERCENT(best['trainable_pct'])} trainable, "
        f"score {SCORE(best['score'])}) -> {out}"
    )
    print(f"Train it: python -m search.train --recipe {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
