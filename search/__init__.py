"""The search service: budgets, the search space, the Optuna objective and the CLIs."""
