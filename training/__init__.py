"""Training and evaluation of one configuration: task data -> batches -> steps -> scores.

Depends on `models` and `tasks`; knows nothing of Optuna or the database.
"""
