"""Errors raised by the task data code."""

from __future__ import annotations

__all__ = ["DatasetError"]


class DatasetError(ValueError):
    """A dataset on disk is missing, malformed or inconsistent.

    Messages name the file (and the record, where there is one), the rule that
    was broken and how to fix it, so a bad dataset can be repaired without
    reading the loader.
    """
