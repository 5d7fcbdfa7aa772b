"""The core package is the bottom layer: every layer imports it, it imports none of them."""

from __future__ import annotations

import subprocess
import sys


def test_core_imports_nothing_heavy_and_nothing_of_ours() -> None:
    # Every layer imports core, the torch-free dashboard included; core imports no other package of ours.
    code = (
        "import sys, core, core.budget, core.formats, core.pareto, core.recipes, core.results, core.trial_choice\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'torch', 'sqlalchemy', 'streamlit', 'optuna'})\n"
        "ours = sorted(m for m in sys.modules if m.split('.')[0] in {'search', 'training', 'models', 'storage', 'dashboard', 'tasks'})\n"
        "assert not heavy and not ours, (heavy, ours)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
