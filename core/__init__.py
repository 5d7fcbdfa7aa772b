"""Torch-free facts every layer shares: budgets, parameter counts, the result contract, Pareto analysis,
recipes and number formats.

Imports nothing of the project, so the commands, training, storage and the dashboard may
all import it; nothing here loads torch, SQLAlchemy or Streamlit.
"""
