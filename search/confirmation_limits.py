"""What a confirmation may be asked for: its scopes and seed counts.

Apart from search.confirmation, which imports Optuna, pandas and the trial's objective (seconds
of imports), so that the command lines can check these flags and fail on a bad one at once.
"""

SCOPES = ("best", "front")  # the reference and the best within the budget, or the whole Pareto front
DEFAULT_SEEDS = 2
MAX_SEEDS = 10
