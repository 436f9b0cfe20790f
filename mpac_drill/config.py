"""Targets, the scenario catalog, and ``--set key.path=value`` overrides.

A *target* is one YAML file under ``experiments/targets/`` (or any path) that names the
platform a drill hits: the local sandbox or an AWS account. The *catalog*
(``experiments/catalog.yaml``) holds every scenario with its runbook section and its RTO
and RPO targets in seconds, plus the quarter schedule of runbook §5. Nothing here talks
to the network.
"""

from __future__ import annotations

import copy
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from mpac_drill import CATALOG_PATH, TARGETS_DIR
from mpac_drill.errors import UsageError

TARGET_KINDS = ("sandbox", "aws")
ENVIRONMENTS = ("sandbox", "staging", "production")
_QUARTER_RE = re.compile(r"^(\d{4})-Q([1-4])$")
_SET_RE = re.compile(r"^([A-Za-z_][\w-]*(?:\.[\w-]+)*)=(.*)$", re.DOTALL)
# What yaml.safe_load raises besides YAMLError (bad dates, bad !!int/!!bool values, nesting).
_YAML_VALUE_ERRORS = (ValueError, TypeError, KeyError, RecursionError)
#: Keys that decide a drill's safety: only the target file sets them, never ``--set`` (nor a
#: plain ``chaos run``'s ``mpac_set``). ``aws.endpoint_url`` joins them for a production target
#: (checked by the production guard, which knows production's accounts).
SAFETY_KEYS = (
    "name",
    "kind",
    "environment",
    "allow_production",
    "account_id",
    "production_accounts",
)
# Scientific notation YAML 1.1 reads as a string (1e-3, 2.5e3): a number on the command line.
_SCI_RE = re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)[eE][-+]?\d+$")


@dataclass(frozen=True)
class Target:
    """One loaded target: its name, where it came from, and its settings (overrides applied)."""

    name: str
    path: Path
    settings: dict[str, Any]
    overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return str(self.settings["kind"])

    @property
    def environment(self) -> str:
        return str(self.settings["environment"])

    def get(self, dotted: str, default: Any = None) -> Any:
        """Value at ``a.b.c`` or ``default`` when any part is missing."""
        node: Any = self.settings
        for part in dotted.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return default
            node = node[part]
        return node

    def require(self, dotted: str) -> Any:
        """Value at ``a.b.c``; a missing key is a usage error naming the target file."""
        sentinel = object()
        value = self.get(dotted, sentinel)
        if value is sentinel:
            raise UsageError(f"target {self.name!r} ({self.path}) has no setting {dotted!r}")
        return value


#: CloudWatch's alarm vocabulary (PutMetricAlarm), as the catalog writes it.
STATISTICS = ("Minimum", "Maximum", "Average", "Sum", "SampleCount")
COMPARISONS = (
    "LessThanThreshold",
    "LessThanOrEqualToThreshold",
    "GreaterThanThreshold",
    "GreaterThanOrEqualToThreshold",
)
MISSING_DATA = ("missing", "ignore", "breaching", "notBreaching")
SEVERITIES = ("P0", "P1", "P2", "P3")


@dataclass(frozen=True)
class AlarmDefinition:
    """One CloudWatch metric alarm a scenario's detection names (catalog ``detection``)."""

    name: str
    namespace: str
    metric: str
    statistic: str
    comparison: str
    threshold: float
    period_s: float
    evaluation_periods: int
    datapoints_to_alarm: int
    treat_missing_data: str = "missing"
    dimensions: dict[str, str] = field(default_factory=dict)
    #: ``runbook`` (the runbook names the alarm) or ``default`` (only its metric)
    source: str = "default"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "namespace": self.namespace,
            "metric": self.metric,
            "dimensions": dict(self.dimensions),
            "statistic": self.statistic,
            "comparison": self.comparison,
            "threshold": self.threshold,
            "period_s": self.period_s,
            "evaluation_periods": self.evaluation_periods,
            "datapoints_to_alarm": self.datapoints_to_alarm,
            "treat_missing_data": self.treat_missing_data,
            "source": self.source,
        }


@dataclass(frozen=True)
class ResponseTarget:
    """Runbook §3.1: one severity's response time and update frequency."""

    severity: str
    impact: str
    respond_s: float
    update_s: float


@dataclass(frozen=True)
class Detection:
    """How a scenario's failure is detected (runbook "Detection" line) and its severity."""

    severity: str
    alarms: tuple[AlarmDefinition, ...]
    #: a failed detection fails the drill (a ``detection`` verdict that counts); false: the
    #: verdict is listed as informational and does not change ``passed``
    gating: bool = False


@dataclass(frozen=True)
class Scenario:
    """One row of the catalog."""

    id: str
    runbook_section: str
    system: str
    title: str
    fault: str
    recovery: str
    rto_s: float | None
    rpo_s: float | None
    gate: bool
    experiment: str | None
    extra_targets: dict[str, float] = field(default_factory=dict)
    #: users see the fault (an outage the observer must sample); false for a drill whose
    #: fault breaks nothing users reach (a point-in-time restore into a new instance)
    outage_expected: bool = True
    #: the runbook's detection path: alarms and declared severity (``None``: not named)
    detection: Detection | None = None


@dataclass(frozen=True)
class Catalog:
    scenarios: dict[str, Scenario]
    schedule: dict[str, list[str]]
    global_rto_s: float
    global_rpo_s: float
    #: runbook §3.1 by severity (``P0``..``P3``)
    response_targets: dict[str, ResponseTarget] = field(default_factory=dict)
    #: ``gate.max_regression``: (relative, absolute_s) a median RTO may grow over a baseline
    max_regression: tuple[float, float] = (0.25, 1.0)

    def alarms(self) -> list[AlarmDefinition]:
        """Every alarm the catalog names, once each (in catalog order)."""
        seen: dict[str, AlarmDefinition] = {}
        for sc in self.scenarios.values():
            for alarm in sc.detection.alarms if sc.detection else ():
                seen.setdefault(alarm.name, alarm)
        return list(seen.values())

    def get(self, scenario_id: str) -> Scenario:
        try:
            return self.scenarios[scenario_id]
        except KeyError:
            known = ", ".join(self.scenarios)
            raise UsageError(f"unknown scenario {scenario_id!r}: choose one of {known}") from None

    def for_quarter(self, quarter: str) -> list[Scenario]:
        """Scenarios scheduled for ``YYYY-QN`` (runbook §5)."""
        _, q = parse_quarter(quarter)
        return [self.get(s) for s in self.schedule[f"Q{q}"]]

    def gate_set(self) -> list[Scenario]:
        return [s for s in self.scenarios.values() if s.gate]


# ---------------------------------------------------------------- loading helpers


def _load_yaml(path: Path, what: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{what} {path} does not exist") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise UsageError(f"{what} {path} cannot be read: {exc.__class__.__name__}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise UsageError(f"{what} {path} is not valid YAML{where}") from None
    except _YAML_VALUE_ERRORS as exc:  # PyYAML's constructors: 2026-13-45, !!int x, deep nesting
        raise UsageError(f"{what} {path} is not valid YAML: {exc.__class__.__name__}") from None


def parse_quarter(quarter: str) -> tuple[int, int]:
    """``"2027-Q1"`` → ``(2027, 1)``; anything else is a usage error."""
    m = _QUARTER_RE.match(quarter.strip()) if isinstance(quarter, str) else None
    if not m:
        raise UsageError(f"bad quarter {quarter!r}: expected YYYY-QN, for example 2027-Q1")
    return int(m.group(1)), int(m.group(2))


def quarter_label(when: datetime) -> str:
    """The calendar quarter of a UTC instant: ``2026-11-27T...`` → ``"2026-Q4"``."""
    return f"{when.year}-Q{(when.month - 1) // 3 + 1}"


def _number(value: Any, where: str, *, allow_none: bool = True) -> float | None:
    if value is None and allow_none:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or value < 0
        or not math.isfinite(value)
    ):
        raise UsageError(f"{where} must be a non-negative number of seconds, not {value!r}")
    return float(value)


def load_catalog(path: Path | None = None) -> Catalog:
    """Read and check the scenario catalog."""
    path = path or CATALOG_PATH
    data = _load_yaml(path, "catalog")
    if not isinstance(data, dict) or not isinstance(data.get("scenarios"), list):
        raise UsageError(f"catalog {path} must be a mapping with a 'scenarios' list")
    responses = _response_targets(data.get("response_targets"), path)
    glob = data.get("global") or {}
    if not isinstance(glob, dict):
        raise UsageError(f"catalog {path}: 'global' must be a mapping of rto_s and rpo_s")
    scenarios: dict[str, Scenario] = {}
    for i, row in enumerate(data["scenarios"]):
        if not isinstance(row, dict) or not isinstance(row.get("id"), str):
            raise UsageError(f"catalog {path}: scenario #{i + 1} needs an 'id'")
        sid = row["id"]
        extra = row.get("targets") or {}
        if not isinstance(extra, dict):
            raise UsageError(
                f"catalog {path}: scenario {sid!r}: targets must map metrics to numbers"
            )
        try:
            scenarios[sid] = Scenario(
                id=sid,
                runbook_section=str(row["runbook_section"]),
                system=str(row["system"]),
                title=str(row.get("title", sid)),
                fault=str(row["fault"]),
                recovery=str(row["recovery"]),
                rto_s=_number(row.get("rto_s"), f"catalog {sid}.rto_s"),
                rpo_s=_number(row.get("rpo_s"), f"catalog {sid}.rpo_s"),
                gate=bool(row.get("gate", False)),
                experiment=row.get("experiment"),
                outage_expected=bool(row.get("outage_expected", True)),
                extra_targets={
                    str(k): float(_number(v, f"catalog {sid}.targets.{k}") or 0)
                    for k, v in extra.items()
                },
                detection=_detection(row.get("detection"), f"catalog {path}: {sid}.detection"),
            )
        except KeyError as exc:
            raise UsageError(f"catalog {path}: scenario {sid!r} lacks {exc.args[0]!r}") from None
    schedule: dict[str, list[str]] = {}
    raw_schedule = data.get("schedule") or {}
    if not isinstance(raw_schedule, dict):
        raise UsageError(f"catalog {path}: 'schedule' must map Q1..Q4 to scenario ids")
    for q in ("Q1", "Q2", "Q3", "Q4"):
        entry = raw_schedule.get(q)
        ids = list(scenarios) if entry == "all" else entry
        if not isinstance(ids, list) or any(
            not isinstance(s, str) or s not in scenarios for s in ids
        ):
            raise UsageError(f"catalog {path}: schedule {q} must be 'all' or known scenario ids")
        schedule[q] = ids
    _same_alarms_everywhere(scenarios, path)
    for sid, sc in scenarios.items():
        if sc.detection and sc.detection.severity not in responses:
            raise UsageError(
                f"catalog {path}: {sid}.detection.severity {sc.detection.severity} has no "
                "response_targets entry"
            )
    return Catalog(
        max_regression=_max_regression(data.get("gate"), path),
        response_targets=responses,
        scenarios=scenarios,
        schedule=schedule,
        global_rto_s=_number(glob.get("rto_s", 14400), "catalog global.rto_s") or 0.0,
        global_rpo_s=_number(glob.get("rpo_s", 900), "catalog global.rpo_s") or 0.0,
    )


def _max_regression(raw: Any, path: Path) -> tuple[float, float]:
    """``gate.max_regression`` as ``(relative, absolute_s)`` (defaults 0.25 and 1 s)."""
    if raw is None:
        return (0.25, 1.0)
    bound = raw.get("max_regression") if isinstance(raw, dict) else None
    if not isinstance(bound, dict):
        raise UsageError(f"catalog {path}: gate.max_regression must map relative and absolute_s")
    where = f"catalog {path}: gate.max_regression"
    relative = _number(bound.get("relative", 0.25), f"{where}.relative", allow_none=False)
    absolute = _number(bound.get("absolute_s", 1.0), f"{where}.absolute_s", allow_none=False)
    return (float(relative or 0.0), float(absolute or 0.0))


def _response_targets(raw: Any, path: Path) -> dict[str, ResponseTarget]:
    if raw is None:
        return {}
    where = f"catalog {path}: response_targets"
    if not isinstance(raw, dict) or any(k not in SEVERITIES for k in raw):
        raise UsageError(f"{where} must map {', '.join(SEVERITIES)} to respond_s and update_s")
    out = {}
    for sev, row in raw.items():
        if not isinstance(row, dict) or "respond_s" not in row or "update_s" not in row:
            raise UsageError(f"{where}.{sev} needs respond_s and update_s")
        out[sev] = ResponseTarget(
            severity=sev,
            impact=str(row.get("impact", "")),
            respond_s=_number(row["respond_s"], f"{where}.{sev}.respond_s", allow_none=False)
            or 0.0,
            update_s=_number(row["update_s"], f"{where}.{sev}.update_s", allow_none=False) or 0.0,
        )
    return out


def _whole(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(f"{where} must be a whole number >= 1, not {value!r}")
    return value


def _one_of(value: Any, choices: tuple[str, ...], where: str) -> str:
    if value not in choices:
        raise UsageError(f"{where} must be one of {', '.join(choices)}, not {value!r}")
    return str(value)


def alarm_definition(raw: Any, where: str) -> AlarmDefinition:
    """One alarm of a catalog ``detection`` (or a target's override of it), checked."""
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not raw["name"]:
        raise UsageError(f"{where} must be a mapping with a 'name'")
    where = f"{where} {raw['name']}"
    for key in ("namespace", "metric", "statistic", "comparison", "threshold", "period_s"):
        if key not in raw:
            raise UsageError(f"{where} lacks {key!r}")
    threshold = raw["threshold"]
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        raise UsageError(f"{where}.threshold must be a number, not {threshold!r}")
    period = _number(raw["period_s"], f"{where}.period_s", allow_none=False) or 0.0
    if period <= 0:
        raise UsageError(f"{where}.period_s must be above 0")
    n = _whole(raw.get("evaluation_periods", 1), f"{where}.evaluation_periods")
    m = _whole(raw.get("datapoints_to_alarm", n), f"{where}.datapoints_to_alarm")
    if m > n:
        raise UsageError(f"{where}: datapoints_to_alarm {m} exceeds evaluation_periods {n}")
    dims = raw.get("dimensions") or {}
    if not isinstance(dims, dict):
        raise UsageError(f"{where}.dimensions must map names to values")
    return AlarmDefinition(
        name=raw["name"],
        namespace=str(raw["namespace"]),
        metric=str(raw["metric"]),
        statistic=_one_of(raw["statistic"], STATISTICS, f"{where}.statistic"),
        comparison=_one_of(raw["comparison"], COMPARISONS, f"{where}.comparison"),
        threshold=float(threshold),
        period_s=period,
        evaluation_periods=n,
        datapoints_to_alarm=m,
        treat_missing_data=_one_of(
            raw.get("treat_missing_data", "missing"), MISSING_DATA, f"{where}.treat_missing_data"
        ),
        dimensions={str(k): str(v) for k, v in dims.items()},
        source=_one_of(raw.get("source", "default"), ("runbook", "default"), f"{where}.source"),
    )


def _detection(raw: Any, where: str) -> Detection | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("alarms"), list):
        raise UsageError(f"{where} must be a mapping with a severity and an 'alarms' list")
    severity = _one_of(raw.get("severity"), SEVERITIES, f"{where}.severity")
    alarms = tuple(alarm_definition(a, f"{where}.alarms") for a in raw["alarms"])
    names = [a.name for a in alarms]
    if len(set(names)) != len(names):
        raise UsageError(f"{where}: an alarm is named twice")
    gating = raw.get("gating", False)
    if not isinstance(gating, bool):
        raise UsageError(f"{where}.gating must be true or false, not {gating!r}")
    return Detection(severity=severity, alarms=alarms, gating=gating)


def _same_alarms_everywhere(scenarios: dict[str, Scenario], path: Path) -> None:
    """An alarm named by two scenarios must be defined the same in both."""
    seen: dict[str, tuple[str, AlarmDefinition]] = {}
    for sid, sc in scenarios.items():
        for alarm in sc.detection.alarms if sc.detection else ():
            first = seen.setdefault(alarm.name, (sid, alarm))
            if first[1] != alarm:
                raise UsageError(
                    f"catalog {path}: alarm {alarm.name} is defined differently in "
                    f"{first[0]} and {sid}"
                )


# ---------------------------------------------------------------- targets and --set


def known_targets() -> list[str]:
    return sorted(p.stem for p in TARGETS_DIR.glob("*.yaml"))


def resolve_target_path(name_or_path: str) -> Path:
    """A target name (``staging``) or a path to a target file."""
    if not name_or_path or not name_or_path.strip():
        raise UsageError("empty --target: give a target name or a path to a target file")
    candidate = Path(name_or_path)
    looks_like_path = "/" in name_or_path or candidate.suffix in (".yaml", ".yml", ".json")
    if looks_like_path:
        if not _is_file(candidate):
            raise UsageError(f"target file {name_or_path} does not exist")
        return candidate
    named = TARGETS_DIR / f"{name_or_path}.yaml"
    if not _is_file(named):
        raise UsageError(
            f"unknown target {name_or_path!r}: choose one of {', '.join(known_targets())} "
            "or give a path to a target file"
        )
    return named


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # a name too long for the file system, ...
        return False


def parse_set(expr: str) -> tuple[str, Any]:
    """``"rds.failover_delay_s=2.5"`` → ``("rds.failover_delay_s", 2.5)`` (value parsed as YAML)."""
    m = _SET_RE.match(expr) if isinstance(expr, str) else None
    if not m:
        raise UsageError(f"bad --set {expr!r}: expected key.path=value")
    key, raw = m.group(1), m.group(2)
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except (yaml.YAMLError, *_YAML_VALUE_ERRORS):
        value = raw
    if isinstance(value, str) and _SCI_RE.match(raw.strip()):
        value = float(raw)
    return key, value


def _compatible(old: Any, new: Any) -> bool:
    if old is None or new is None:
        return True
    if isinstance(old, bool) or isinstance(new, bool):
        return isinstance(old, bool) and isinstance(new, bool)
    if isinstance(old, int | float):
        return isinstance(new, int | float)
    if isinstance(old, str):
        return isinstance(new, str | int | float)
    return type(old) is type(new)


def apply_overrides(
    settings: dict[str, Any],
    overrides: Mapping[str, Any],
    origin: str,
    *,
    raw: Mapping[str, str] | None = None,
) -> dict:
    """Return a copy of ``settings`` with each dotted key replaced; unknown keys are refused.

    ``raw`` holds the text typed after ``=`` for each key (``--set``): a string setting
    takes that text, so ``account_id=012345670123`` is not read as an octal number.
    """
    out = copy.deepcopy(settings)
    for dotted, value in overrides.items():
        parts = dotted.split(".")
        node: Any = out
        for i, part in enumerate(parts):
            if not isinstance(node, dict) or part not in node:
                known = ", ".join(sorted(map(str, node))) if isinstance(node, dict) else "none"
                where = ".".join(parts[:i]) or "the top level"
                raise UsageError(
                    f"--set {dotted}: {origin} has no key {part!r} under {where} (known: {known})"
                )
            if i < len(parts) - 1:
                node = node[part]
        old = node[parts[-1]]
        if isinstance(old, dict):
            raise UsageError(f"--set {dotted}: that is a section, set one of its keys instead")
        if isinstance(old, str) and raw and dotted in raw and isinstance(value, int | float):
            value = raw[dotted].strip()  # 0123, 1:30, 1_000, yes: the text, not YAML's number
        if not _compatible(old, value):
            raise UsageError(
                f"--set {dotted}={value!r}: expected a {type(old).__name__} like {old!r}"
            )
        if isinstance(old, str) and value is not None and not isinstance(value, str):
            value = str(value)  # null unsets the setting, as in the target files
        if (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and dotted.endswith(("_s", "_ms"))
            and value < 0
        ):
            raise UsageError(f"--set {dotted}={value}: a duration cannot be negative")
        node[parts[-1]] = value
    return out


def _check_target(settings: Any, path: Path) -> None:
    if not isinstance(settings, dict):
        raise UsageError(f"target file {path} must be a YAML mapping")
    for key in ("name", "kind", "environment"):
        if key not in settings:
            raise UsageError(f"target file {path} lacks the required key {key!r}")
    if settings["kind"] not in TARGET_KINDS:
        raise UsageError(
            f"target file {path}: kind must be one of {', '.join(TARGET_KINDS)}, "
            f"not {settings['kind']!r}"
        )
    if settings["environment"] not in ENVIRONMENTS:
        raise UsageError(
            f"target file {path}: environment must be one of {', '.join(ENVIRONMENTS)}"
        )
    _check_durations(settings, path, "")


def _check_durations(node: Any, path: Path, prefix: str) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            _check_durations(v, path, f"{prefix}{k}.")
    elif (
        prefix.rstrip(".").endswith(("_s", "_ms"))
        and node is not None
        and (
            isinstance(node, bool)
            or not isinstance(node, int | float)
            or node < 0
            or not math.isfinite(node)
        )
    ):
        raise UsageError(f"target file {path}: {prefix.rstrip('.')} must be a non-negative number")


#: Move the default sandbox to a port block of its own (and a state folder named after it),
#: so two checkouts on one machine (two engineers, or a worktree per change) each run a
#: sandbox. Unset: the ports of the target file. A block uses N..N+3999 (its DR sandbox
#: at +1000, the front doors at +2000): blocks 3000, 7000 and 11000 stay clear of the
#: default ports and of each other.
PORT_BLOCK_ENV = "MPAC_DRILL_SANDBOX_PORT_BLOCK"


def sandbox_port_block() -> int | None:
    raw = os.environ.get(PORT_BLOCK_ENV, "").strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise UsageError(f"{PORT_BLOCK_ENV}={raw!r}: expected a multiple of 1000 in 1000..31000")
    return int(raw)


def in_port_block(settings: dict[str, Any], block: int) -> dict[str, Any]:
    """A copy of sandbox ``settings`` on port block ``block``: a multiple of 1000 below
    Linux's ephemeral range (32768-60999, where TIME-WAIT sockets of other sandboxes can
    hold a port). PostgreSQL on +432/+433, Redis +379/+380, Sentinels +381..+383, service
    listeners from +80, tasks from +100."""
    if block % 1000 or not 1000 <= block <= 31000:
        raise UsageError(f"port block {block}: a multiple of 1000 in 1000..31000")
    out = copy.deepcopy(settings)
    out["rds"].update(primary_port=block + 432, standby_port=block + 433)
    out["redis"].update(
        primary_port=block + 379,
        replica_port=block + 380,
        sentinel_ports=[block + 381, block + 382, block + 383],
    )
    out["ecs"]["task_port_base"] = block + 100
    for i, svc in enumerate(out["ecs"]["services"].values()):  # in the file's order
        svc["port"] = block + 80 + i
    return out


def _on_default_ports(settings: dict[str, Any]) -> bool:
    """A sandbox target on the shipped sandbox's ports (sandbox.yaml or a copy of it)."""
    if settings.get("kind") != "sandbox":
        return False
    shipped = _load_yaml(TARGETS_DIR / "sandbox.yaml", "target file")
    return bool((settings.get("rds") or {}).get("primary_port") == shipped["rds"]["primary_port"])


def load_target(name_or_path: str, sets: Iterable[str] | Mapping[str, Any] = ()) -> Target:
    """Load a target by name or path and apply ``--set`` overrides (strings or a mapping)."""
    path = resolve_target_path(name_or_path)
    settings = _load_yaml(path, "target file")
    _check_target(settings, path)
    block = sandbox_port_block()
    if block is not None and _on_default_ports(settings):
        settings = in_port_block(settings, block)
        settings["state_dir"] = f"{settings.get('state_dir', '.sandbox')}-b{block}"
    raw: dict[str, str] = {}
    if isinstance(sets, Mapping):
        overrides = dict(sets)
    else:
        overrides = {}
        for expr in sets:
            key, value = parse_set(expr)
            overrides[key], raw[key] = value, expr.split("=", 1)[1]
    for key in overrides:
        if str(key).split(".")[0] in SAFETY_KEYS:
            raise UsageError(
                f"--set {key}: refused, {key} decides the drill's safety; only "
                f"the target file sets it ({path})"
            )
    settings = apply_overrides(settings, overrides, f"target {settings['name']!r}", raw=raw)
    _check_target(settings, path)
    target = Target(name=str(settings["name"]), path=path.resolve(), settings=settings)
    # Record what was set (the text for a string setting), not YAML's reading of it.
    target.overrides.update({key: target.get(key) for key in overrides})
    return target


__all__ = [
    "PORT_BLOCK_ENV",
    "SAFETY_KEYS",
    "in_port_block",
    "Target",
    "Scenario",
    "Catalog",
    "AlarmDefinition",
    "Detection",
    "ResponseTarget",
    "alarm_definition",
    "load_catalog",
    "load_target",
    "parse_set",
    "parse_quarter",
    "apply_overrides",
    "known_targets",
    "resolve_target_path",
]
