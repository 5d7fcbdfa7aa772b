"""End-of-study report: the Pareto front as a table, the hypervolume, where results live.

Every function takes the study's rows as `storage.load_results` gives them; a configuration
trained with several seeds (search.confirmation) is read as one, by its mean (core.seeds).
"""

from __future__ import annotations

import pandas as pd

from core.budget import Budget
from core.formats import COUNT, HYPERVOLUME, PERCENT
from core.pareto import best_within_budget, hypervolume_2d, pareto_front
from core.seeds import by_configuration, mean_text


def key_hyperparameters(config: dict) -> str:
    params = config.get("method_params") or {}
    parts = [f"{k.split('.')[-1]}={v}" for k, v in params.items()]
    if config.get("sharing") and config.get("method") not in ("full_ft", "vl_only", "vl_ln"):
        parts.append(f"sharing={config['sharing']}")
    lr = (config.get("training") or {}).get("learning_rate")
    if lr is not None:
        parts.append(f"lr={lr:g}")
    return " ".join(parts)


def front_table(results: pd.DataFrame, budget: Budget) -> str:
    """The Pareto front of complete configurations as an aligned text table, scores as mean ± std over seeds."""
    front = pareto_front(by_configuration(results))
    if front.empty:
        return "(no completed trials yet)"
    rows = [("trial", "method", "hyperparameters", "trainable %", "trainable", "score", "budget")]
    for _, row in front.iterrows():
        within = budget.allows_row(row["trainable_pct"], row["trainable_params"])
        rows.append(
            (
                str(row["trial_number"]),
                row["method"],
                key_hyperparameters(row["config"]),
                PERCENT.number(row["trainable_pct"]),
                COUNT(row["trainable_params"]),
                mean_text(row),
                "within" if within else "over (reference)",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def status_counts(results: pd.DataFrame) -> str:
    counts = results["status"].value_counts()
    return ", ".join(f"{int(counts[s])} {s}" for s in ("complete", "infeasible", "pruned", "failed", "running") if s in counts)


def hypervolume_text(results: pd.DataFrame) -> str:
    return f"{HYPERVOLUME(hypervolume_2d(by_configuration(results)))} (score x trainable-% area against reference (score 0, 100%))"


def reference_line(results: pd.DataFrame) -> str | None:
    """The full fine-tuning reference, shown even when an adapter dominates it."""
    configs = by_configuration(results)
    done = configs[(configs["method"] == "full_ft") & (configs["status"] == "complete")]
    if done.empty:
        return None
    row = done.iloc[0]
    return (
        f"Full fine-tuning reference: trial {row['trial_number']}, score {mean_text(row)} at "
        f"{PERCENT(row['trainable_pct'])} trainable ({COUNT(row['trainable_params'])} parameters)"
    )


def best_line(results: pd.DataFrame, budget: Budget) -> str:
    """The best configuration within the budget by mean score, with its seeds' spread, and a
    warning when the runner-up is closer to it than their seed noise."""
    from core.seeds import closer_than_noise

    configs = by_configuration(results)
    ranked = configs[configs["status"] == "complete"]
    best = best_within_budget(ranked, max_pct=budget.max_pct, max_params=budget.count)
    if best is None:
        return f"No completed configuration within the budget {budget.text}."
    line = (
        f"Best within {budget.text}: trial {best['trial_number']} ({best['method']} {key_hyperparameters(best['config'])}), "
        f"score {mean_text(best)} at {PERCENT(best['trainable_pct'])} trainable"
    )
    rest = ranked[ranked["trial_number"] != best["trial_number"]]
    second = best_within_budget(rest, max_pct=budget.max_pct, max_params=budget.count)
    if second is not None:
        close = closer_than_noise(best, second)
        if close is not None:
            line += f"\nNote: {close.describe(int(best['trial_number']), int(second['trial_number']))}"
    return line


def front_report(results: pd.DataFrame, budget: Budget) -> str:
    """The front table, the reference's line and the best within the budget: how a search ends."""
    lines = [front_table(results, budget)]
    reference = reference_line(results)
    if reference:
        lines.append(reference)
    lines.append(best_line(results, budget))
    return "\n".join(lines)


def nothing_fits(results: pd.DataFrame, budget: Budget) -> str | None:
    """Why a study has no trained trial within its budget, when every proposal was over it.

    Returns:
        One line naming the smallest configuration tried and the budget that would admit it;
        None when some trial within the budget completed, or none was infeasible.
    """
    complete = results[results["status"] == "complete"]
    if any(budget.allows_row(p, n) for p, n in zip(complete["trainable_pct"], complete["trainable_params"], strict=True)):
        return None
    over = results[results["status"] == "infeasible"]
    if over.empty:
        return None
    smallest = over.sort_values("trainable_params").iloc[0]
    return (
        f"no configuration tried fits the budget {budget.text}: all {len(over)} proposals were over it, the smallest "
        f"({smallest['method']} {key_hyperparameters(smallest['config'])}) with {COUNT(smallest['trainable_params'])} trainable "
        f"parameters ({PERCENT(smallest['trainable_pct'])}); raise --budget to at least {int(smallest['trainable_params'])} "
        f"or {smallest['trainable_pct']:.2f}%, or search smaller methods with --space"
    )
