"""End-of-study report: the Pareto front as a table, the hypervolume, where results live."""

from __future__ import annotations

import pandas as pd

from core.budget import Budget
from core.formats import COUNT, HYPERVOLUME, PERCENT, SCORE
from core.pareto import hypervolume_2d, pareto_front


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
    """The Pareto front of complete trials as an aligned text table."""
    front = pareto_front(results)
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
                SCORE(row["score"]),
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
    return f"{HYPERVOLUME(hypervolume_2d(results))} (score x trainable-% area against reference (score 0, 100%))"


def reference_line(results: pd.DataFrame) -> str | None:
    """The full fine-tuning reference, shown even when an adapter dominates it."""
    done = results[(results["method"] == "full_ft") & (results["status"] == "complete")]
    if done.empty:
        return None
    row = done.iloc[0]
    return (
        f"Full fine-tuning reference: trial {row['trial_number']}, score {SCORE(row['score'])} at "
        f"{PERCENT(row['trainable_pct'])} trainable ({COUNT(row['trainable_params'])} parameters)"
    )
