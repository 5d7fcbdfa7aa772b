"""Export a searched configuration: the best within a budget, or one trial, as a recipe or for peft.

    python -m search.export --study NAME --storage URL --budget 5% --out best.yaml
    python -m search.export --study NAME --storage URL --trial 7 --out trial-7.yaml
    python -m search.export --study NAME --storage URL --trial 7 --format peft --out trial-7-peft/
    python -m search.export --run RUN_DIR --format peft [--merge] --out lora-peft/

The recipe (YAML or JSON, by the file's suffix) holds the full trial configuration, the
scores and parameter counts the search measured, and where it came from; it is what
`python -m search.train --recipe FILE` trains. `--format peft` writes a folder with peft's
adapter_config.json for a LoRA or DoRA trial (rank, alpha, dropout, target modules, bias, base
model, `use_dora`, PiSSA's `init_lora_weights`), for users who train with peft themselves; other
methods have no peft form and keep to the recipe.
`--trial N` takes a completed trial by number: an unknown or unfinished one exits with 2 and
lists the completed trials; no trial within `--budget` exits with 1.

From a trained run folder (`--run`, written by `python -m search.train`), `--format peft` also
writes `adapter_model.safetensors` with the trained LoRA weights, which
`peft.PeftModel.from_pretrained` loads onto the Hugging Face language model; `--merge` instead
folds LoRA into the language model's weights and saves it (and the tokenizer) with
`save_pretrained`, for transformers alone. DoRA exports as peft's `use_dora`; a trained PiSSA
run only merges (its frozen weights are residuals that a peft adapter cannot carry). The V->L projection is not part of the language
model: a caption or a visual question still needs the run folder (`inference.load_run`).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

from core.budget import Budget, BudgetError, parse_budget
from search.cli_common import default_data_dir, fail, refuse_dash_values
from tasks._files import write_atomic

PROGRAM = "search.export"
FORMATS = {".yaml": "yaml", ".yml": "yaml", ".json": "json"}
OUTPUT_FORMATS = ("recipe", "peft")
USE_RECIPE = "use --format recipe, then python -m search.train --recipe FILE (its run folder holds trainable.safetensors)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m {PROGRAM}", description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--study", help="study name")
    parser.add_argument("--storage", help="SQLAlchemy URL of the study's database")
    parser.add_argument(
        "--run", type=Path, default=None, help="a run folder of python -m search.train (with --format peft), instead of a study"
    )
    parser.add_argument("--merge", action="store_true", help="with --run: fold LoRA into the language model and save it whole")
    parser.add_argument("--task", default=None, help="with --run: the task whose LoRA to export, when each task has its own")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--budget", help="the best trial within it: 5%%, 0.05 or an absolute count like 150k, 2M")
    which.add_argument("--trial", type=int, help="this completed trial, by its number in the study")
    parser.add_argument(
        "--format",
        dest="fmt",
        choices=OUTPUT_FORMATS,
        default="recipe",
        help="recipe (default) or peft (a LoRA trial's adapter_config.json)",
    )
    parser.add_argument("--data-dir", type=Path, default=None, help="--format peft: where a project-built backbone lives (default ./data)")
    parser.add_argument("--out", required=True, type=Path, help="recipe file (.yaml, .yml or .json), or a folder for --format peft")
    return parser


def main(argv: list[str] | None = None) -> int:
    refuse_dash_values(PROGRAM, argv, ("--budget",))
    args = build_parser().parse_args(argv)
    if args.run is not None:
        given = [
            flag
            for flag, value in (("--study", args.study), ("--storage", args.storage), ("--budget", args.budget), ("--trial", args.trial))
            if value is not None
        ]
        if given:
            fail(PROGRAM, f"--run exports a trained run folder; {', '.join(given)} choose a study's trial instead: drop one or the other")
        if args.fmt != "peft":
            fail(PROGRAM, "--run exports for peft: add --format peft (the run folder itself is the project's format: inference.load_run)")
        return export_run(run=args.run, out=args.out, merge=args.merge, task=args.task, data_dir=args.data_dir)
    missing = [flag for flag, value in (("--study", args.study), ("--storage", args.storage)) if value is None]
    if missing or (args.budget is None and args.trial is None):
        needs = missing + ([] if args.budget is not None or args.trial is not None else ["--budget or --trial"])
        fail(PROGRAM, f"{', '.join(needs)} required: name the study's trial to export (or --run DIR for a trained run folder)")
    if args.merge or args.task is not None:
        fail(PROGRAM, "--merge and --task export a trained run's weights: give --run DIR (a study holds configurations only)")
    return export(
        study=args.study,
        storage=args.storage,
        budget_text=args.budget,
        trial=args.trial,
        fmt=args.fmt,
        out=args.out,
        data_dir=args.data_dir,
    )


def export(
    *,
    study: str,
    storage: str,
    out: Path,
    budget_text: str | None = None,
    trial: int | None = None,
    fmt: str = "recipe",
    data_dir: Path | None = None,
) -> int:
    """Write the best completed trial of `study` within the budget, or trial number `trial`, to `out`.

    Exactly one of `budget_text` and `trial` is given. Returns 0; a bad option, an unknown or
    unfinished trial, or a trial peft cannot express prints one line and exits with 2, no
    trial within the budget or an unwritable `out` with 1 (SystemExit), and `out` is then unchanged.
    """
    from core.formats import PERCENT
    from core.pareto import best_within_budget
    from core.recipes import dump_recipe, recipe_from_row
    from core.seeds import by_configuration, closer_than_noise, mean_text
    from core.trial_choice import TrialChoiceError, completed_trial
    from storage import (
        StorageURLError,
        list_studies,
        load_results,
        make_readonly_engine,
        redact,
    )
    from storage.persistent import validate_persistent_storage_url

    if (budget_text is None) == (trial is None):
        raise ValueError("export() takes exactly one of budget_text and trial")
    budget: Budget | None = None
    try:
        budget = parse_budget(budget_text) if budget_text is not None else None
        url = validate_persistent_storage_url(storage)
    except (BudgetError, StorageURLError) as error:
        fail(PROGRAM, str(error))
    recipe_fmt = _check_out(out, fmt)
    data_dir = (data_dir or default_data_dir()).resolve()
    if fmt == "peft" and data_dir.exists() and not data_dir.is_dir():
        fail(PROGRAM, f"--data-dir {str(data_dir)!r} is a file; pass the folder the study was launched with")
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
    # A configuration confirmed with several seeds is chosen, and described, by its mean.
    configs = by_configuration(results)
    note = None
    if budget is not None:
        best = best_within_budget(configs, max_pct=budget.max_pct, max_params=budget.count)
        if best is None:
            fail(
                PROGRAM,
                f"no completed trial of study {study!r} fits the budget {budget.text!r}; raise the budget or run more trials",
                code=1,
            )
        others = configs[configs["trial_number"] != best["trial_number"]]
        second = best_within_budget(others, max_pct=budget.max_pct, max_params=budget.count)
        if second is not None and (close := closer_than_noise(best, second)) is not None:
            note = close.describe(int(best["trial_number"]), int(second["trial_number"]))
    else:
        assert trial is not None
        try:
            # A confirmation seed's own row is a trial too: exported as it ran, with its seed.
            best = completed_trial(configs if trial in set(configs["trial_number"]) else results, trial, study)
        except TrialChoiceError as error:
            fail(PROGRAM, str(error))
    number = int(best["trial_number"])
    if fmt == "peft":
        written = _write_peft(best["config"], number, out, data_dir)
        base = repr(written) if written else "BASE_MODEL"
        use = f"Train with peft: get_peft_model(AutoModelForSeq2SeqLM.from_pretrained({base}), LoraConfig.from_pretrained({str(out)!r}))"
    else:
        recipe = recipe_from_row(best, storage_url=redact(url), budget=budget.text if budget is not None else None)
        try:
            write_atomic(out, dump_recipe(recipe, recipe_fmt))
        except OSError as error:  # a full disk, a read-only folder: the old file, if any, is intact
            fail(PROGRAM, f"--out {str(out)!r} could not be written ({error.strerror or error}); nothing was changed", code=1)
        use = f"Train it: python -m search.train --recipe {out}"
    print(f"trial {number} ({best['method']}, {PERCENT(best['trainable_pct'])} trainable, score {mean_text(best)}) -> {out}")
    if note is not None:
        print(f"Note: {note}")
    print(use)
    return 0


def export_run(*, run: Path, out: Path, merge: bool = False, task: str | None = None, data_dir: Path | None = None) -> int:
    """Write a trained LoRA run's adapter for peft into the folder `out` (or, with `merge`, its
    language model with LoRA folded in, for transformers alone).

    Returns 0; a run folder that cannot be loaded, a method peft cannot express, or a bad
    option prints one line and exits with 2, an unwritable `out` with 1; `out` is then unchanged.
    """
    _check_out(out, "peft")
    if out.exists() and any(out.iterdir()):
        fail(PROGRAM, f"--out {str(out)!r} is a folder with files in it; pass a new or empty folder")
    from inference import RunFolderError, load_run
    from models.petl import get_method
    from models.petl.lora_merge import merge_lora
    from models.petl.peft_format import PEFT_METHODS, PeftFormatError, export_peft

    try:
        loaded = load_run(run, (data_dir or default_data_dir()).resolve(), device="cpu")
    except RunFolderError as error:
        fail(PROGRAM, f"--run: {error}")
    config = loaded.config
    if config.method not in PEFT_METHODS:
        fail(
            PROGRAM,
            f"--run {str(run)!r} trained method {config.method!r}, which peft's LoRA format cannot express; "
            "its run folder is the model (load it with inference.load_run, or predict with python -m search.predict)",
        )
    if task is not None and task not in config.tasks:
        fail(PROGRAM, f"--task {task!r} is not a task of the run; its tasks: {', '.join(config.tasks)}")
    lora = get_method(config.method).make_config(config.method_params, config.sharing)
    created = not out.exists()
    try:
        if merge:
            merge_lora(loaded.model, lora, out, task=task, tokenizer=loaded.tokenizer)
        else:
            export_peft(loaded.model, lora, out, task=task, base_model=loaded.location.language_model)
    except PeftFormatError as error:
        fail(PROGRAM, f"--run {str(run)!r}: {error}; the run folder itself is the model (inference.load_run)")
    except OSError as error:
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        fail(PROGRAM, f"--out {str(out)!r} could not be written ({error.strerror or error}); nothing was changed", code=1)
    if merge:
        print(f"run {run} (LoRA merged into the language model) -> {out}")
        print(f"Load it: AutoModelForSeq2SeqLM.from_pretrained({str(out)!r})")
    else:
        print(f"run {run} (LoRA adapter) -> {out}")
        print(
            f"Load it: PeftModel.from_pretrained(AutoModelForSeq2SeqLM.from_pretrained({loaded.location.language_model!r}), {str(out)!r})"
        )
    return 0


def _check_out(out: Path, fmt: str) -> str:
    # The recipe's serialisation by the file's suffix; peft's output is a folder.
    if fmt == "peft":
        if out.suffix.lower() in FORMATS or (out.exists() and not out.is_dir()):
            fail(PROGRAM, f"--out {str(out)!r}: --format peft writes a folder (adapter_config.json inside); pass a folder name")
        if importlib.util.find_spec("peft") is None:
            fail(PROGRAM, "--format peft needs the peft package, which is not installed: pip install -c constraints.txt -e '.[peft]'")
        return ""
    recipe_fmt = FORMATS.get(out.suffix.lower())
    if recipe_fmt is None:
        fail(PROGRAM, f"--out {str(out)!r} must end in one of {', '.join(FORMATS)}")
    return recipe_fmt


def _write_peft(config: dict, number: int, out: Path, data_dir: Path) -> str | None:
    """Write the trial's adapter_config.json into `out`; returns the base model it names."""
    from models.config import ConfigError
    from search.peft_config import ADAPTER_CONFIG, BackboneNotBuilt, PeftFormatError, adapter_config_text

    try:
        text, base_model = adapter_config_text(config, data_dir)
    except PeftFormatError as error:
        fail(PROGRAM, f"--format peft: trial {number}: {error}; {USE_RECIPE}")
    except BackboneNotBuilt as error:
        fail(PROGRAM, f"--data-dir: trial {number}: {error}")
    except ConfigError as error:
        detail = str(error).replace("\n", " ")
        fail(PROGRAM, f"trial {number}'s stored configuration does not rebuild: {detail}", code=1)
    created = not out.exists()
    try:
        write_atomic(out / ADAPTER_CONFIG, text)
    except OSError as error:
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # the folder this run made, left empty: nothing written
        fail(PROGRAM, f"--out {str(out)!r} could not be written ({error.strerror or error}); nothing was changed", code=1)
    return base_model


if __name__ == "__main__":
    sys.exit(main())
