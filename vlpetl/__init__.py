"""The index of the project's commands: `vlpetl --help` lists them, `vlpetl COMMAND ARGS` runs one.

Each command is a module run as `python -m MODULE` (`vlpetl launch ARGS` is exactly
`python -m search.launch ARGS`); its one-line description is the first paragraph of that
module's docstring, read from its source, so the index imports none of them (no torch).
"""

from vlpetl.commands import COMMANDS, Command, describe, source_file

__all__ = ["COMMANDS", "Command", "describe", "source_file"]
