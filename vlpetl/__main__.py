"""Run any of the project's commands, or list them: `vlpetl --help`, `vlpetl COMMAND ARGS`.

    vlpetl --help                     # every command with its one-line description
    vlpetl launch --budget 5%         # the same as python -m search.launch --budget 5%
    vlpetl launch --help              # that command's flags

Installed as the `vlpetl` console script; `python -m vlpetl` works from a checkout. Listing the
commands imports none of them (no torch); running one runs its module as `python -m` does.
"""

from __future__ import annotations

import argparse
import runpy
import sys
from collections.abc import Sequence

from vlpetl.commands import COMMANDS, describe

PROGRAM = "vlpetl"


def build_parser() -> argparse.ArgumentParser:
    """The index's parser: its help lists every command, one line each."""
    names = max(len(command.name) for command in COMMANDS)
    modules = max(len(command.module) for command in COMMANDS) + len("python -m ")
    lines = [f"  {c.name:<{names}}  {'python -m ' + c.module:<{modules}}  {describe(c.module)}" for c in COMMANDS]
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        usage="%(prog)s [-h] COMMAND [ARGS ...]",
        description="AutoML search over parameter-efficient transfer learning configurations for CLIP + T5/BART. "
        f"`{PROGRAM} COMMAND ARGS` runs `python -m MODULE ARGS`; `{PROGRAM} COMMAND --help` shows its flags.",
        epilog="commands:\n" + "\n".join(lines),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("command", metavar="COMMAND", choices=[c.name for c in COMMANDS], help="one of the commands below")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Print the index (`--help`), or run `python -m MODULE ARGS` for `COMMAND ARGS`.

    Returns the command's exit status; an unknown command exits with 2, naming the known ones.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    modules = {command.name: command.module for command in COMMANDS}
    if not argv or argv[0] not in modules:
        build_parser().parse_args(argv)  # --help prints the index; anything else is an error (exit 2)
    name, args = argv[0], argv[1:]
    saved = sys.argv
    sys.argv = [sys.argv[0], *args]  # run_module puts the module's file in sys.argv[0], as python -m does
    try:
        runpy.run_module(modules[name], run_name="__main__", alter_sys=True)
    except SystemExit as exited:
        return _status(exited.code)
    finally:
        sys.argv = saved
    return 0


def _status(code: object) -> int:
    # SystemExit's code as the interpreter reads it: None is success, a message is 1.
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
