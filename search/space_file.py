"""Search spaces as files a user reads and edits; the default space is derived from the methods.

A space file is YAML (`python -m search.params --space` prints the default space in this
format, a template to edit and pass with `--space FILE`):

    methods: the PETL methods the search may pick, each with the parameters it searches. A
    parameter is a list of choices, or a range {low: L, high: H} (integers when both bounds are
    integers; `log: true` samples on a log scale; `step: S` makes a grid). A parameter left out
    keeps the method's default (`python -m search.params --list` shows the paper's values).
    Besides a method's own parameters (its config fields) a method may search:
      sharing               across tasks: single, multiple, half-shared (where the method has it)
      freeze.<flag>         train_layernorm, train_bias, train_embeddings, train_lm_head,
                            train_vl_projection (true/false); visual_encoder (frozen,
                            last_block, trainable: CLIP then trains, image tasks only)
      learning_rate         an absolute rate, or
      learning_rate_scale   a multiple of the method's base rate (the paper's, PAPER.md §4; on
                            the embedded tiny backbone the rate tuned for a few hundred steps)
    optimizer: adamw (the paper's) and/or sam (sharpness-aware minimisation, beyond the paper);
    sam_rho: SAM's neighbourhood radius, searched only when sam is picked.

    Full fine-tuning is also trained once as the study's reference point; it is searched only
    when the budget allows it.

The default space takes each registered method's block (`MethodSpec.search`, in the
registry's order) and searches AdamW and SAM; a method added to the registry is searched
without touching any other file. It also searches the freezing choices of `DEFAULT_FREEZE`
that each method names in `MethodSpec.searched_freeze` (every method with modules of its own:
LayerNorms, biases, the V->L projection, the word embedding; the baselines, whose freezing is
what they are, none), so the method's own default freeze is one of the choices and the warm
starts keep it. CLIP's policy (frozen or its last block) is searched only when the study counts
CLIP in the budget (`search.launch --count-clip`) and CLIP can train (a backbone with a CLIP
image tower, image tasks only: `clip_trainable`): under the paper's counting CLIP costs
nothing, so the budget could not bound it, and a trial whose CLIP trains reads pixels at every
step instead of cached features. A space file that would train CLIP where it cannot is refused
before the study starts (`study_problems`), one line per method. Per study, `search.study_runner.study_defaults` drops a
freezing choice that trains nothing more on the backbone or that cannot fit the budget.

A space maps an Optuna trial to a `TrialConfig`. Parameter names are prefixed by their method
(`adapter.reduction_factor`, `lora.sharing`, `compacter.freeze.train_layernorm`) so that the
conditional parameters of different methods never collide, and TPE's `group` option samples
each method's parameters as one group.

Loading checks everything before a study starts and reports every problem at once: unknown
methods, parameters and keys, empty or inverted ranges, values the method rejects, and
contradictions (a sharing mode the method lacks, an absolute and a relative learning rate).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from models.config import OPTIMIZERS, VIDEO_TASK_NAMES, VISUAL_ENCODER_POLICIES, ConfigError, FreezeConfig
from models.petl import get_method, method_names
from models.petl.registry import methods

DEFAULT_SPACE_SOURCE = "the default space (each PETL method's search block)"
# Beyond the paper's AdamW, sharpness-aware minimisation; its radius on a log scale.
DEFAULT_OPTIMIZERS = ["adamw", "sam"]
DEFAULT_SAM_RHO = {"low": 0.01, "high": 0.2, "log": True}
_TOP_LEVEL = ("methods", "optimizer", "sam_rho")
# The freezing choices of the default space (each method searches those its MethodSpec names in
# `searched_freeze`), the paper's usual value first. Measured on the default backbone
# (tiny-clip+tiny-t5-vlp, VQA; BENCHMARKS.md "Freezing choices"): LayerNorms 0.15% and the V->L
# projection 1.8% of the model, the tied word embedding 4.7% (never within 5% beside any
# method), CLIP's last block 14% of the model counted with CLIP and about a fifth more time per
# trial, its whole grid path 43%; so "trainable" CLIP is left to full fine-tuning comparisons
# (a space file may name it). `search.study_runner.study_defaults` drops, per study, a choice
# that trains nothing more (biases on T5) or whose method's default configuration with it is
# over the budget.
DEFAULT_FREEZE: Mapping[str, tuple[Any, ...]] = {
    "train_layernorm": (True, False),
    "train_bias": (False, True),
    "train_vl_projection": (True, False),
    "train_embeddings": (False, True),
    "visual_encoder": ("frozen", "last_block"),
}
_FREEZE_FLAGS = tuple(f.name for f in dataclasses.fields(FreezeConfig))
_COMMON = ("sharing", "learning_rate", "learning_rate_scale")
OUTSIDE = object()  # "not a value of this parameter" (None can be a legitimate choice)


class SpaceError(ValueError):
    """A search-space file broke one or more rules; the message lists every problem."""

    def __init__(self, source: str, problems: list[str]):
        self.problems = list(problems)
        super().__init__(f"search space {source} is invalid:\n  - " + "\n  - ".join(self.problems))


@dataclass(frozen=True)
class Choices:
    values: tuple[Any, ...]

    def suggest(self, trial, name: str) -> Any:
        # Optuna's categorical values are scalars; lists (LoRA targets) travel as JSON text.
        encoded = [json.dumps(v) if isinstance(v, (list, tuple)) else v for v in self.values]
        picked = trial.suggest_categorical(name, encoded)
        return tuple(json.loads(picked)) if isinstance(picked, str) and picked.startswith("[") else picked

    def first(self) -> Any:
        return self.encode(self.values[0])

    def encode(self, value: Any) -> Any:
        """The Optuna value of `value` when it is one of the choices, else OUTSIDE."""
        normal = tuple(value) if isinstance(value, list) else value
        for choice in self.values:
            if (tuple(choice) if isinstance(choice, list) else choice) == normal:
                return json.dumps(list(normal)) if isinstance(normal, tuple) else normal
        return OUTSIDE


@dataclass(frozen=True)
class Range:
    low: float
    high: float
    log: bool = False
    step: float | None = None

    @property
    def integer(self) -> bool:
        return all(isinstance(v, int) and not isinstance(v, bool) for v in (self.low, self.high))

    def suggest(self, trial, name: str) -> Any:
        if self.integer:
            return trial.suggest_int(name, self.low, self.high, step=int(self.step or 1), log=self.log)
        return trial.suggest_float(name, self.low, self.high, step=self.step, log=self.log)

    def first(self) -> Any:
        return self.low

    def encode(self, value: Any) -> Any:
        """`value` when it lies in the range, else OUTSIDE."""
        inside = isinstance(value, (int, float)) and not isinstance(value, bool) and self.low <= value <= self.high
        return value if inside else OUTSIDE


Parameter = Choices | Range


@dataclass(frozen=True)
class MethodSpace:
    """One method's searched parameters: its own, `sharing`, `freeze.<flag>` and the learning rate."""

    name: str
    params: Mapping[str, Parameter] = field(default_factory=dict)


@dataclass(frozen=True)
class SearchSpace:
    """A loaded, validated search space.

    Attributes:
        source: where it came from (a path, or the default space), for messages.
        methods: the searched methods, in file order.
        optimizer: the optimiser choices.
        sam_rho: SAM's radius, when SAM can be picked.
    """

    source: str
    methods: Mapping[str, MethodSpace]
    optimizer: Choices = Choices(("adamw",))
    sam_rho: Parameter | None = None
    text: str = ""  # the space as YAML, stored with a study so any worker parses the same space

    def without(self, methods: set[str]) -> "SearchSpace":
        return dataclasses.replace(self, methods={k: v for k, v in self.methods.items() if k not in methods})

    def narrowed(self, method: str, name: str, values: tuple[Any, ...]) -> "SearchSpace":
        """This space with `method`'s parameter `name` reduced to the choices `values`."""
        params = {**self.methods[method].params, name: Choices(values)}
        return dataclasses.replace(self, methods={**self.methods, method: MethodSpace(method, params)})

    def sample(self, trial) -> dict[str, Any]:
        """Draw one point: {"method", "params", "sharing", "freeze", "learning_rate"|"learning_rate_scale",
        "optimizer", "sam_rho"}; conditional parameters are asked for only where they apply."""
        method = trial.suggest_categorical("method", list(self.methods))
        point: dict[str, Any] = {"method": method, "params": {}, "freeze": {}}
        for name, parameter in self.methods[method].params.items():
            value = parameter.suggest(trial, f"{method}.{name}")
            if name.startswith("freeze."):
                point["freeze"][name.removeprefix("freeze.")] = value
            elif name in _COMMON:
                point[name] = value
            else:
                point["params"][name] = value
        point["optimizer"] = self.optimizer.suggest(trial, "optimizer") if len(self.optimizer.values) > 1 else self.optimizer.values[0]
        if point["optimizer"] == "sam" and self.sam_rho is not None:
            point["sam_rho"] = self.sam_rho.suggest(trial, "sam_rho")
        return point

    def fixed_params(self, method: str, values: Mapping[str, Any]) -> dict[str, Any] | None:
        """Complete Optuna params that make `sample` return these values (warm starts).

        Searched parameters without a value take the method's default (learning-rate scale 1,
        AdamW), or the first choice when the default is outside the space. Returns None when a
        given value lies outside the space (the configuration cannot be reached).
        """
        if method not in self.methods:
            return None
        params: dict[str, Any] = {"method": method}
        for name, parameter in self.methods[method].params.items():
            if name in values:
                encoded = parameter.encode(values[name])
                if encoded is OUTSIDE:
                    return None
            else:
                encoded = parameter.encode(_default(method, name))
                if encoded is OUTSIDE:
                    encoded = parameter.first()
            params[f"{method}.{name}"] = encoded
        if len(self.optimizer.values) > 1:
            optimizer = self.optimizer.encode(values.get("optimizer", "adamw"))
            params["optimizer"] = self.optimizer.first() if optimizer is OUTSIDE else optimizer
            if params["optimizer"] == "sam" and self.sam_rho is not None:
                params["sam_rho"] = self.sam_rho.first()
        return params


def _default(method: str, name: str) -> Any:
    spec = get_method(method)
    if name == "sharing":
        return "single"
    if name == "learning_rate_scale":
        return 1.0
    if name.startswith("freeze."):
        return getattr(spec.freeze, name.removeprefix("freeze."))
    fields = {f.name: f for f in dataclasses.fields(spec.config_cls)}
    if name in fields and fields[name].default is not dataclasses.MISSING:
        return fields[name].default
    return OUTSIDE


def load_space(path: Path | str | None = None, search_clip: bool = False) -> SearchSpace:
    """Read and validate a space file (the default space when `path` is None).

    Args:
        search_clip: the default space searches CLIP's policy too: for a study that counts CLIP
            in its budget (`search.launch --count-clip`) where CLIP can train (`clip_trainable`).
            A file says for itself.

    Raises:
        SpaceError: every problem in the file, with the value, the rule and the fix.
    """
    if path is None:
        data = default_space_data(search_clip)
        return dataclasses.replace(
            parse_space(data, DEFAULT_SPACE_SOURCE), text=yaml.safe_dump(data, sort_keys=False, default_flow_style=None)
        )
    path = Path(path)
    source = str(path)
    try:
        raw = path.read_bytes()
        # Binary and UTF-16 files (Windows editors save these) would fail later in YAML with a
        # message about a character; say what the file is and how to save it instead.
        if b"\x00" in raw:
            raise UnicodeDecodeError("utf-8", raw[:1], 0, 1, "NUL byte")
        text = raw.decode("utf-8")
        data = yaml.safe_load(text)
    except FileNotFoundError:
        raise SpaceError(source, ["file not found; pass an existing YAML file or omit --space for the default space"])
    except UnicodeDecodeError:
        raise SpaceError(source, ["is not UTF-8 text (binary, or UTF-16?); save it as UTF-8 YAML"])
    except (OSError, yaml.YAMLError) as error:
        raise SpaceError(source, [f"cannot be read as YAML ({error}); fix the syntax"])
    return dataclasses.replace(parse_space(data, source), text=text)


def default_space_data(search_clip: bool = False) -> dict[str, Any]:
    """The default space as a space file's mapping: every registered method's search block, with
    the freezing choices of `DEFAULT_FREEZE` it searches (`MethodSpec.searched_freeze`) where its
    block does not name them; CLIP's policy only with `search_clip`."""
    return {
        "methods": {spec.name: {**_plain(spec.search), **_freeze_block(spec, search_clip)} for spec in methods()},
        "optimizer": list(DEFAULT_OPTIMIZERS),
        "sam_rho": dict(DEFAULT_SAM_RHO),
    }


def _freeze_block(spec, search_clip: bool) -> dict[str, list[Any]]:
    named = {key.removeprefix("freeze.") for key in spec.search if key.startswith("freeze.")} | set(spec.search.get("freeze", {}))
    return {
        f"freeze.{flag}": list(DEFAULT_FREEZE[flag])
        for flag in spec.searched_freeze
        if flag in DEFAULT_FREEZE and flag not in named and (flag != "visual_encoder" or search_clip)
    }


def _plain(block: Mapping[str, Any]) -> dict[str, Any]:
    # YAML-ready copies: the specs hold lists and dicts that a caller must not mutate.
    return {
        key: list(value) if isinstance(value, (list, tuple)) else dict(value) if isinstance(value, Mapping) else value
        for key, value in block.items()
    }


def clip_trainable(clip_model: str | None, tasks: tuple[str, ...]) -> bool:
    """Whether a study's CLIP can train: the backbone has a CLIP image tower (`clip_model`; None:
    it reads precomputed features) and every task reads images (video tasks read cached
    per-frame features). Where it cannot, the default space does not search CLIP's policy, and a
    space file that does is refused (`study_problems`)."""
    return clip_model is not None and not set(tasks) & set(VIDEO_TASK_NAMES)


def study_problems(space: SearchSpace, clip_model: str | None, tasks: tuple[str, ...]) -> list[str]:
    """Freezing choices of `space` that contradict the study's backbone or tasks, one line each.

    A trial whose CLIP trains reads images through it at every step, so a space that can pick
    a policy other than "frozen" needs a backbone with a CLIP image tower (`clip_model`; None:
    it reads precomputed features) and image tasks only (video tasks read cached per-frame
    features). `models.validation.trial_problems` says the same of one trial; this says it of
    the space before the study starts, so no trial is drawn only to fail.
    """
    problems = []
    video = sorted(set(tasks) & set(VIDEO_TASK_NAMES))
    for method, searched in space.methods.items():
        parameter = searched.params.get("freeze.visual_encoder")
        training = [v for v in _values(parameter) if v != "frozen"] if parameter is not None else []
        if not training:
            continue
        where = f"methods.{method}.freeze.visual_encoder {training}"
        if clip_model is None:
            problems.append(
                f"{where}: this backbone reads precomputed (cached) features and has no CLIP image tower to train; use [frozen]"
            )
        if video:
            problems.append(f"{where}: video tasks {video} read cached per-frame features; train CLIP on image tasks only, or use [frozen]")
    return problems


def parse_space(data: Any, source: str = "<mapping>") -> SearchSpace:
    """Validate a space given as a mapping (the parsed YAML).

    Raises:
        SpaceError: every problem found.
    """
    problems: list[str] = []
    if not isinstance(data, Mapping):
        raise SpaceError(source, [f"must be a mapping with keys {list(_TOP_LEVEL)}, got {type(data).__name__}"])
    unknown = sorted(set(data) - set(_TOP_LEVEL))
    if unknown:
        problems.append(f"unknown top-level keys {unknown}; accepted: {list(_TOP_LEVEL)}")
    raw_methods = data.get("methods")
    methods: dict[str, MethodSpace] = {}
    if not isinstance(raw_methods, Mapping) or not raw_methods:
        problems.append(f"methods must be a non-empty mapping of method -> parameters; known methods: {method_names()}")
        raw_methods = {}
    for name, raw in raw_methods.items():
        if name not in method_names():
            problems.append(f"methods.{name}: unknown PETL method; known methods: {method_names()}")
            continue
        methods[name] = _method_space(name, raw if raw is not None else {}, problems)
    optimizer = _parameter("optimizer", data.get("optimizer", ["adamw"]), problems)
    if isinstance(optimizer, Range) or (isinstance(optimizer, Choices) and set(optimizer.values) - set(OPTIMIZERS)):
        problems.append(f"optimizer must list choices among {list(OPTIMIZERS)}, got {data.get('optimizer')!r}")
        optimizer = Choices(("adamw",))
    sam_rho = _parameter("sam_rho", data["sam_rho"], problems) if "sam_rho" in data else None
    if sam_rho is not None:
        _check_values("sam_rho", sam_rho, lambda v: v > 0, "a radius > 0", problems)
        if isinstance(optimizer, Choices) and "sam" not in optimizer.values:
            problems.append("sam_rho is set, but optimizer never picks sam; add sam to optimizer or remove sam_rho")
    if isinstance(optimizer, Choices) and "sam" in optimizer.values and sam_rho is None:
        sam_rho = Choices((0.05,))  # SAM's published default radius
    if problems:
        raise SpaceError(source, problems)
    return SearchSpace(source, methods, optimizer or Choices(("adamw",)), sam_rho)


def _method_space(method: str, raw: Any, problems: list[str]) -> MethodSpace:
    where = f"methods.{method}"
    if not isinstance(raw, Mapping):
        problems.append(f"{where} must be a mapping of parameter -> choices or range, got {raw!r}")
        return MethodSpace(method)
    spec = get_method(method)
    own = {f.name for f in dataclasses.fields(spec.config_cls)}
    accepted = sorted(own) + list(_COMMON) + [f"freeze.{f}" for f in _FREEZE_FLAGS]
    flat: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "freeze" and isinstance(value, Mapping):
            flat.update({f"freeze.{k}": v for k, v in value.items()})
        else:
            flat[key] = value
    params: dict[str, Parameter] = {}
    for key, value in flat.items():
        if key not in accepted:
            problems.append(f"{where}.{key}: unknown parameter of {method!r}; accepted: {accepted}")
            continue
        parameter = _parameter(f"{where}.{key}", value, problems)
        if parameter is not None:
            params[key] = parameter
            _check_parameter(method, key, parameter, problems)
    if "learning_rate" in params and "learning_rate_scale" in params:
        problems.append(f"{where}: learning_rate and learning_rate_scale contradict each other; keep one")
    return MethodSpace(method, params)


def _parameter(where: str, value: Any, problems: list[str]) -> Parameter | None:
    if isinstance(value, list):
        if not value:
            problems.append(f"{where}: empty list of choices; give at least one value")
            return None
        return Choices(tuple(value))
    if isinstance(value, Mapping) and {"low", "high"} <= set(value):
        extra = sorted(set(value) - {"low", "high", "log", "step"})
        low, high = value["low"], value["high"]
        if extra:
            problems.append(f"{where}: unknown range keys {extra}; a range takes low, high, log, step")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)):
            problems.append(f"{where}: range bounds must be numbers, got low={low!r}, high={high!r}")
            return None
        if low > high:
            problems.append(f"{where}: inverted range low={low} > high={high}; swap the bounds")
            return None
        if value.get("log") and value.get("step") is not None:
            problems.append(f"{where}: log: true and step: {value['step']} cannot be combined (Optuna refuses it); drop one")
            return None
        if value.get("log") and low <= 0:
            problems.append(f"{where}: a log range needs low > 0, got low={low}")
            return None
        return Range(low, high, bool(value.get("log", False)), value.get("step"))
    problems.append(f"{where}: {value!r} is neither a list of choices nor a range {{low: L, high: H}}")
    return None


def _values(parameter: Parameter) -> tuple[Any, ...]:
    return parameter.values if isinstance(parameter, Choices) else (parameter.low, parameter.high)


def _check_values(where: str, parameter: Parameter, ok, rule: str, problems: list[str]) -> None:
    bad = [v for v in _values(parameter) if not (isinstance(v, (int, float)) and not isinstance(v, bool) and ok(v))]
    if bad:
        problems.append(f"{where}: values {bad} break the rule: {rule}")


def _check_parameter(method: str, key: str, parameter: Parameter, problems: list[str]) -> None:
    where = f"methods.{method}.{key}"
    spec = get_method(method)
    if key == "sharing":
        supported = [m.value for m in spec.sharing_modes]
        bad = [v for v in _values(parameter) if v not in supported]
        if bad:
            note = f" ({spec.sharing_note})" if spec.sharing_note else ""
            problems.append(f"{where}: {method!r} has no sharing mode {bad}; it supports {supported}{note}")
    elif key in ("learning_rate", "learning_rate_scale"):
        _check_values(where, parameter, lambda v: v > 0, "a learning rate (or scale) > 0", problems)
    elif key == "freeze.visual_encoder":
        bad = [v for v in _values(parameter) if v not in VISUAL_ENCODER_POLICIES]
        if bad:
            problems.append(f"{where}: unknown policies {bad}; use {list(VISUAL_ENCODER_POLICIES)}")
    elif key.startswith("freeze."):
        bad = [v for v in _values(parameter) if not isinstance(v, bool)]
        if bad:
            problems.append(f"{where}: values {bad} must be true or false")
    else:
        # Each value must be one the method accepts, the others at their defaults.
        for value in _values(parameter):
            try:
                spec.make_config({key: value}, spec.sharing_modes[0])
            except ConfigError as error:
                problems.extend(f"{where}: value {value!r}: {p}" for p in error.problems)
            except TypeError as error:
                problems.append(f"{where}: value {value!r} has the wrong type ({error})")
