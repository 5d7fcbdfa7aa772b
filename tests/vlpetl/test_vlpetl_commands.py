"""`vlpetl`: one index of every command, read from the commands' own docstrings, without torch."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

from vlpetl import COMMANDS, describe

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("dashboard", "inference", "models", "search", "storage", "tasks", "training")
# Run by `streamlit run` (which `python -m dashboard` starts), not by a user.
NOT_COMMANDS = {"dashboard.app"}
MAIN_BLOCK = re.compile(r"^if __name__ == [\"']__main__[\"']\s*:", re.MULTILINE)


def _runnable_modules() -> set[str]:
    """Every module `python -m` is meant to run: a `__main__.py`, or a main block."""
    found = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if path.name == "__main__.py":
                found.add(".".join(parts[:-1]))
            elif MAIN_BLOCK.search(path.read_text(encoding="utf-8")):
                found.add(".".join(parts))
    return found - NOT_COMMANDS


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_the_index_names_every_command_once() -> None:
    modules = [command.module for command in COMMANDS]
    names = [command.name for command in COMMANDS]
    assert len(set(modules)) == len(modules) and len(set(names)) == len(names)
    missing, stale = _runnable_modules() - set(modules), set(modules) - _runnable_modules()
    assert not missing, f"add these commands to vlpetl/commands.py COMMANDS (or to NOT_COMMANDS here): {sorted(missing)}"
    assert not stale, f"COMMANDS names modules that are not commands (moved or renamed?): {sorted(stale)}"


def test_each_description_is_the_first_paragraph_of_the_command_docstring() -> None:
    for command in COMMANDS:
        text = describe(command.module)
        assert text and "\n" not in text and text.endswith("."), (command, text)


def test_help_lists_every_command_on_a_line_and_imports_no_command() -> None:
    code = (
        "import sys\n"
        "from vlpetl.__main__ import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit as exited:\n"
        "    assert exited.code == 0, exited.code\n"
        "heavy = {'torch', 'transformers', 'open_clip', 'optuna', 'sqlalchemy', 'pandas', 'streamlit', 'numpy', *" + repr(PACKAGES) + "}\n"
        "print('LOADED', sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    result = _run("-c", code)
    assert result.returncode == 0, result.stderr
    assert "LOADED []" in result.stdout
    lines = result.stdout.splitlines()
    for command in COMMANDS:
        line = next((line for line in lines if line.split()[:1] == [command.name]), None)
        assert line is not None, f"{command.name} is not listed:\n{result.stdout}"
        assert f"python -m {command.module} " in line and line.endswith(describe(command.module))


def test_a_command_runs_as_python_m_with_the_same_output_and_exit_status(tmp_path: Path) -> None:
    args = ["vqa", "--annotations", str(tmp_path / "missing.json"), "--predictions", str(tmp_path / "p.json")]
    through_index, direct = _run("-m", "vlpetl", "evaluate", *args), _run("-m", "search.evaluate", *args)
    assert through_index.returncode == direct.returncode == 2
    assert through_index.stderr == direct.stderr and "python -m search.evaluate: error:" in direct.stderr
    through_index, direct = _run("-m", "vlpetl", "evaluate", "--help"), _run("-m", "search.evaluate", "--help")
    assert through_index.returncode == direct.returncode == 0 and through_index.stdout == direct.stdout


def test_an_unknown_command_exits_2_naming_the_known_ones() -> None:
    result = _run("-m", "vlpetl", "lanch", "--budget", "5%")
    assert result.returncode == 2
    assert "invalid choice: 'lanch'" in result.stderr and "'launch'" in result.stderr


def test_the_index_is_installed_as_the_vlpetl_script() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["scripts"]["vlpetl"] == "vlpetl.__main__:main"
    assert "vlpetl*" in project["tool"]["setuptools"]["packages"]["find"]["include"]


def test_the_readme_commands_table_has_a_row_per_command() -> None:
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Commands\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    listed = [tuple(cell.strip().strip("`") for cell in row.split("|")[1:3]) for row in rows]
    assert listed == [(c.name, f"python -m {c.module}") for c in COMMANDS]
