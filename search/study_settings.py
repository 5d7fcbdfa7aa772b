"""What defines a study, stored with it so that any worker can join it.

`search.launch` writes these settings as a study user attribute when it creates the study;
`search.worker` (another process, container or machine on the same storage) reads them back,
so every worker searches the same space under the same budget with the same recipe. The
search space travels as its YAML text, not as a path that may not exist on the worker.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

import yaml

SETTINGS_ATTR = "vlpetl_settings"
SETTINGS_VERSION = 1
# The digests of every data file the study reads (tasks.digests), by path: kept apart from the
# settings because a COCO-sized study's run to megabytes, and only workers need them.
INPUTS_ATTR = "vlpetl_inputs"
# The digests of every backbone file the trials read (models.backbone_pin.backbone_pin), so that
# a worker that built or copied another backbone refuses instead of mixing its rows in.
BACKBONE_ATTR = "vlpetl_backbone"


@dataclass(frozen=True)
class StudySettings:
    """Everything a worker needs besides the storage URL and its own data directory."""

    budget: str
    backbone: str
    tasks: tuple[str, ...]
    target_trials: int
    seed: int
    steps: int | None
    sampler: str
    space_yaml: str
    space_source: str
    count_clip: bool
    objectives: tuple[str, ...]
    random_init: bool = False  # added later: studies stored before it read as False
    rungs: int = 0  # multi-fidelity rungs per trial (search.fidelity); studies stored before had none
    data: dict[str, Any] | None = None  # the data description (tasks.data_spec); None: the generated benchmark
    step_budget: int | None = None  # training steps the study may use (search.fidelity.steps_spent); None: no step goal
    rung_measure: str = "score"  # what ranks trials at a rung (search.fidelity); studies stored before ranked by score
    rung_peers: str = "all"  # whom a trial is ranked against at a rung (search.fidelity.PEERS); studies stored before: every trial

    def goal_text(self) -> str:
        """The study's goal in words: "12 trained trials", "20,000 training steps", or both."""
        goals = [f"{self.target_trials} trained trials"] if self.target_trials > 0 else []
        if self.step_budget is not None:
            goals.append(f"{self.step_budget:,} training steps")
        return " or ".join(goals) + (", whichever comes first" if len(goals) > 1 else "")

    def to_attr(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data.update(tasks=list(self.tasks), objectives=list(self.objectives), version=SETTINGS_VERSION)
        return data

    @classmethod
    def from_attr(cls, data: Mapping[str, Any]) -> "StudySettings":
        """Raises ValueError when the stored settings are missing fields or of another version."""
        if data.get("version") != SETTINGS_VERSION:
            raise ValueError(f"study settings version {data.get('version')!r}; this code reads version {SETTINGS_VERSION}")
        fields = dataclasses.fields(cls)
        names = {f.name for f in fields}
        required = {f.name for f in fields if f.default is dataclasses.MISSING}
        missing = sorted(required - set(data))
        if missing:
            raise ValueError(f"study settings lack {missing}")
        values = {k: data[k] for k in names if k in data}
        values.update(tasks=tuple(data["tasks"]), objectives=tuple(data["objectives"]))
        return cls(**values)

    def data_spec(self):
        """The study's data description; studies stored before it read the generated benchmark.

        Raises:
            tasks.data_spec.DataSpecError: stored data that this code cannot read.
        """
        from tasks.data_spec import DataSpec, generated_spec

        if self.data is None:
            return generated_spec(self.tasks)
        return DataSpec.from_dict(self.data).subset(self.tasks)

    def space(self):
        """The search space, parsed and validated again from its stored text."""
        from search.space_file import parse_space

        return parse_space(yaml.safe_load(self.space_yaml), f"{self.space_source} (stored with the study)")
