"""One stored trial chosen by its number, for `search.export --trial N`.

Pure pandas, like core.pareto (whose `best_within_budget` is the other way to choose), so the
dashboard could name a trial the same way. The error lists what would have worked: the
completed trials' numbers, or their count and range when there are many.
"""

from __future__ import annotations

import pandas as pd

__all__ = ["TrialChoiceError", "completed_trial"]

_COMPLETE = "complete"
_LISTED = 20  # more completed trials than this are summarised as a count and a range


class TrialChoiceError(ValueError):
    """The number names no completed trial; the message says which trials there are."""


def completed_trial(df: pd.DataFrame, number: int, study: str) -> pd.Series:
    """Return the row of trial `number` when it completed.

    Args:
        df: Trial results of one study (`storage.load_results`).
        number: The trial's number in its study.
        study: The study's name, for the message.

    Raises:
        TrialChoiceError: No such trial, or it did not complete (failed, pruned, still running...).
    """
    rows = df[df["trial_number"] == number]
    complete = sorted(int(n) for n in df.loc[df["status"] == _COMPLETE, "trial_number"])
    if rows.empty:
        problem = f"--trial {number} is not a trial of study {study!r}"
    elif rows.iloc[0]["status"] != _COMPLETE:
        problem = f"--trial {number} of study {study!r} did not complete (status {rows.iloc[0]['status']!r})"
    else:
        return rows.iloc[0]
    raise TrialChoiceError(f"{problem}; {_listing(complete)}")


def _listing(numbers: list[int]) -> str:
    if not numbers:
        return "it has no completed trial yet: wait for one, or export with --budget later"
    if len(numbers) > _LISTED:
        return f"pass one of its {len(numbers)} completed trials, numbered {numbers[0]} to {numbers[-1]}"
    return f"pass one of its completed trials: {', '.join(map(str, numbers))}"
