"""What a study searched: its tasks, data, backbone, budget and search settings (pure pandas).

``search.launch`` stores the study's settings and the digests of its data files as Optuna
study user attributes (``search.study_settings``), and every trial's row records the
digests of the backbone's weights and data it read (``environment["inputs"]``). This
module turns them into a two-column table for the Overview, so that the page (and a
screenshot of it) is a complete record of the search. Studies without these attributes
(recorded by other tools, or before they existed) are described from their rows alone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from core.formats import COUNT
from dashboard.processing import json_cell

__all__ = [
    "DIGEST_CHARS",
    "INPUTS_ATTR",
    "SETTINGS_ATTR",
    "StudyAttrs",
    "describe_study",
    "shown_path",
    "study_attrs",
]

# The attribute names of search.study_settings, which imports nothing heavy but is part of
# the search package; a test checks that the two agree.
SETTINGS_ATTR = "vlpetl_settings"
INPUTS_ATTR = "vlpetl_inputs"
# As on the Trial page: 64 bits name a file's content well enough for a reader to compare.
DIGEST_CHARS = 16
_WEIGHTS = (
    ("clip_weights_sha256", "CLIP"),
    ("language_model_weights_sha256", "language model"),
    ("vl_projection_sha256", "V→L projection"),
)


@dataclass(frozen=True)
class StudyAttrs:
    """The study-level facts ``search.launch`` stored, small enough to cache and pickle.

    Attributes:
        settings: ``StudySettings.to_attr()``, or None when the study has none.
        data_files: ``tasks.digests.summary`` of the pinned data files (``{"files", "sha256"}``),
            or None when none were pinned.
    """

    settings: Mapping[str, Any] | None
    data_files: Mapping[str, Any] | None

    @property
    def budget(self) -> str | None:
        """The budget as the study was launched with it (``5%``), or None."""
        budget = (self.settings or {}).get("budget")
        if budget is None:
            return None
        return str(budget).strip() or None


def study_attrs(user_attrs: Mapping[str, Any]) -> StudyAttrs:
    """Keep what the dashboard shows of a study's user attributes.

    The data files' digests can run to megabytes for a large dataset, so only their count
    and combined digest are kept (``tasks.digests.summary``, as each trial's row records it).

    Args:
        user_attrs: Optuna's study user attributes.

    Returns:
        The settings (when they are a mapping) and the data files' summary.
    """
    from tasks.digests import (
        summary,  # torch-free; imported here so `dashboard.study` stays light
    )

    settings = user_attrs.get(SETTINGS_ATTR)
    inputs = user_attrs.get(INPUTS_ATTR)
    files = inputs.get("files") if isinstance(inputs, Mapping) else None
    return StudyAttrs(
        settings=dict(settings) if isinstance(settings, Mapping) else None,
        data_files=summary(files) if isinstance(files, Mapping) and files else None,
    )


def shown_path(path: str, cwd: Path | None = None) -> str:
    """A path as a reader of the page needs it: relative under the working directory, ``~`` under home.

    Keeps machine-specific prefixes out of the page (and its screenshots) where they say nothing.
    """
    candidate = Path(path)
    if not candidate.is_absolute():
        return path
    for base, prefix in ((cwd or Path.cwd(), ""), (Path.home(), "~/")):
        try:
            return prefix + candidate.relative_to(base).as_posix()
        except ValueError:
            continue
    return path


def describe_study(attrs: StudyAttrs | None, results: pd.DataFrame) -> pd.DataFrame:
    """The study's description as rows of ``item`` and ``value`` (text).

    Args:
        attrs: The study's stored attributes, or None when the database has no Optuna record.
        results: The study's rows (``load_results``), whose ``environment["inputs"]`` hold
            the digests of the backbone and data each trial read.

    Returns:
        Rows tasks, data (and one per task of a data file), data files, backbone, backbone
        weights, budget, search, objectives, search space and code revision; a row is left
        out when nothing recorded it.
    """
    settings = (attrs.settings if attrs else None) or {}
    environments = [e for e in (json_cell(e) for e in results["environment"]) if isinstance(e, Mapping)]
    inputs = [i for i in (e.get("inputs") for e in environments) if isinstance(i, Mapping)]
    rows: list[tuple[str, str]] = []
    tasks = settings.get("tasks") or _distinct(c.get("tasks") for c in results["config"] if isinstance(c, Mapping))
    if tasks:
        rows.append(("tasks", ", ".join(_flatten_names(tasks))))
    rows += _data_rows(settings, inputs)
    files = (attrs.data_files if attrs else None) or _one(i.get("data_files") for i in inputs)
    if isinstance(files, Mapping) and files.get("sha256"):
        rows.append(("data files", f"{COUNT(files.get('files'))} files pinned by content, sha256 {_digest(files['sha256'])}"))
    rows += _backbone_rows(settings, inputs, results)
    if settings.get("budget"):
        rows.append(("budget", f"{settings['budget']} (as launched)"))
    rows += _search_rows(settings)
    revisions = _distinct(e.get("git_revision") for e in environments)
    if revisions:
        rows.append(("code revision", ", ".join(_revision(r) for r in revisions)))
    return pd.DataFrame(rows, columns=["item", "value"], dtype="object")


def _revision(revision: Any) -> str:
    # "+dirty" (uncommitted changes) matters more than the hash's tail.
    text = str(revision)
    return text[:12] + ("+dirty" if text.endswith("+dirty") else "")


def _distinct(values: Iterable[Any]) -> list[Any]:
    """Distinct non-empty values in first-seen order (dicts and lists compared by content).

    Digests and names, nearly every value, are hashed; the few unhashable ones (data
    descriptions, task lists), almost always all equal, are compared one by one.
    """
    hashed: dict[Any, None] = {}
    others: list[Any] = []
    order: list[Any] = []
    for value in values:
        if value is None or value == "" or (isinstance(value, list | dict) and not value):
            continue
        if isinstance(value, str | int | float | bool):
            if value not in hashed:
                hashed[value] = None
                order.append(value)
        elif value not in others:
            others.append(value)
            order.append(value)
    return order


def _one(values: Iterable[Any]) -> Any:
    """The value every trial recorded, or None when none or several were recorded."""
    distinct = _distinct(values)
    return distinct[0] if len(distinct) == 1 else None


def _flatten_names(tasks: Any) -> list[str]:
    # The settings hold a list of names; rows' configs a list per trial (distinct lists here).
    if tasks and isinstance(tasks[0], list | tuple):
        return list(dict.fromkeys(str(t) for group in tasks for t in group))
    return [str(t) for t in tasks]


def _digest(value: Any) -> str:
    return str(value)[:DIGEST_CHARS]


def _versions(values: list[Any]) -> str:
    """One digest, or how many differ: trials that read other weights are not comparable."""
    if len(values) == 1:
        return _digest(values[0])
    return f"{len(values)} different ({', '.join(_digest(v) for v in values)})"


def _data_rows(settings: Mapping[str, Any], inputs: list[Mapping[str, Any]]) -> list[tuple[str, str]]:
    # The settings are the study's word (None there: the generated benchmark); rows only
    # stand in for studies stored without them.
    data = settings.get("data") if settings else _one(i.get("data") for i in inputs)
    benchmarks = _distinct(i.get("benchmark") for i in inputs)
    manifests = _distinct(i.get("benchmark_manifest_sha256") for i in inputs)
    if not data or "generated" in data:  # the generated benchmark
        text = (data or {}).get("source") or "generated benchmark"
        if benchmarks:
            text += f" {', '.join(map(str, benchmarks))}"
        if manifests:
            text += f", manifest sha256 {_versions(manifests)}"
        return [("data", text)] if (data or benchmarks or manifests or settings) else []
    rows = [("data", shown_path(str(data.get("source", "a data file"))))]
    for name, entry in (data.get("tasks") or {}).items():
        if isinstance(entry, Mapping):
            details = [f"{k}: {shown_path(str(v)) if isinstance(v, str) else v}" for k, v in entry.items() if k != "format"]
            rows.append((f"data: {name}", " · ".join([str(entry.get("format", "?")), *details])))
    return rows


def _backbone_rows(settings: Mapping[str, Any], inputs: list[Mapping[str, Any]], results: pd.DataFrame) -> list[tuple[str, str]]:
    names = [settings["backbone"]] if settings.get("backbone") else _distinct(i.get("backbone") for i in inputs)
    if not names:
        names = _distinct(c.get("backbone") for c in results["config"] if isinstance(c, Mapping))
    if not names:
        return []
    random_init = settings.get("random_init") or any(i.get("random_init") for i in inputs)
    rows = [("backbone", ", ".join(map(str, names)) + (" (random weights: scores mean nothing)" if random_init else ""))]
    weights = []
    for key, label in _WEIGHTS:
        digests = _distinct(i.get(key) for i in inputs)
        if digests:
            weights.append(f"{label} {_versions(digests)}")
    if weights:
        rows.append(("backbone weights (sha256)", " · ".join(weights)))
    return rows


def _search_rows(settings: Mapping[str, Any]) -> list[tuple[str, str]]:
    if not settings:
        return []
    parts = []
    if settings.get("target_trials"):
        parts.append(f"{COUNT(settings['target_trials'])} trials")
    if settings.get("step_budget"):
        parts.append(f"{COUNT(settings['step_budget'])} training steps in all")
    parts.append(f"{COUNT(settings['steps'])} steps each" if settings.get("steps") else "default steps")
    if settings.get("rungs"):
        measure = "held-out loss" if settings.get("rung_measure") == "loss" else "score"  # studies before it ranked by score
        peers = "within each method" if settings.get("rung_peers") == "method" else "across methods"  # studies before it: across
        parts.append(f"{settings['rungs']} fidelity rungs by {measure}, {peers}")
    if settings.get("sampler"):
        parts.append(f"{settings['sampler']} sampler")
    if settings.get("seed") is not None:
        parts.append(f"seed {settings['seed']}")
    if settings.get("count_clip"):
        parts.append("CLIP counted in the total")
    rows = [("search", ", ".join(parts))]
    if settings.get("objectives"):
        rows.append(("objectives", ", ".join(map(str, settings["objectives"]))))
    if settings.get("space_yaml"):
        name = Path(str(settings.get("space_source") or "search space")).name
        digest = hashlib.sha256(str(settings["space_yaml"]).encode()).hexdigest()
        rows.append(("search space", f"{name}, sha256 {_digest(digest)} of its text"))
    return rows
