"""A scenario's procedure as data: ``experiments/plans/<scenario>.yaml``, loaded and checked.

A bad plan is refused with one line (:class:`~mpac_drill.errors.UsageError`) naming the
file and the first thing wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mpac_drill import EXPERIMENTS_DIR, TARGETS_DIR
from mpac_drill.config import Target
from mpac_drill.errors import UsageError

PLANS_DIR = EXPERIMENTS_DIR / "plans"
#: How the harness sees a step took effect (sandbox; the AWS checks are not built yet).
CHECK_KINDS = ("users_failing", "dr_event", "parameter", "front_door_region", "users_served")
PLATFORMS = ("sandbox", "aws")
_FIELD = re.compile(r"\{([A-Za-z0-9_.-]+)\}")


@dataclass(frozen=True)
class Check:
    kind: str
    arg: str
    detail: str


@dataclass(frozen=True)
class Step:
    number: int  # 1-based, the order of the plan
    name: str
    runbook: str
    automatable: bool
    commands: dict[str, tuple[str, ...]]  # platform kind -> command templates
    check: Check | None


@dataclass(frozen=True)
class Plan:
    scenario: str
    runbook_section: str
    title: str
    steps: tuple[Step, ...]
    path: Path

    def step_names(self) -> list[str]:
        return [s.name for s in self.steps]

    def step(self, ref: str | int) -> Step:
        """A step by number (``3``) or name; :class:`UsageError` for neither."""
        for s in self.steps:
            if str(ref) == str(s.number) or str(ref) == s.name:
                return s
        raise UsageError(
            f"plan {self.scenario} has no step {ref!r} (1-{len(self.steps)} or a step name)"
        )


def render(template: str, target: Target) -> str:
    """A command with the target's names filled in; an unset name stays visible."""

    def fill(m: re.Match[str]) -> str:
        key = m.group(1)
        if key == "target":  # what --target takes: a bundled target's name, else its file
            bundled = Path(target.path).parent.resolve() == TARGETS_DIR.resolve()
            return str(target.name) if bundled else str(target.path)
        value = target.get(key)
        return f"<{key} unset>" if value in (None, "") else str(value)

    return _FIELD.sub(fill, template)


def commands_for(step: Step, target: Target) -> list[str]:
    return [render(c, target) for c in step.commands.get(target.kind, ())]


def _fail(where: str, msg: str) -> UsageError:
    return UsageError(f"plan {where}: {msg}")


def parse_plan(data: Any, where: str = "<plan>", path: Path | None = None) -> Plan:
    """Validate a loaded plan document; :class:`UsageError` (one line) when it is not one."""
    if not isinstance(data, dict):
        raise _fail(where, "not a mapping")
    for key in ("scenario", "runbook_section", "title", "steps"):
        if key not in data:
            raise _fail(where, f"missing {key!r}")
    steps_in = data["steps"]
    if not isinstance(steps_in, list) or not steps_in:
        raise _fail(where, "'steps' must be a non-empty list")
    steps: list[Step] = []
    seen: set[str] = set()
    for i, raw in enumerate(steps_in, 1):
        at = f"step {i}"
        if not isinstance(raw, dict):
            raise _fail(where, f"{at} is not a mapping")
        unknown = set(raw) - {"name", "runbook", "automatable", "commands", "check"}
        if unknown:
            raise _fail(where, f"{at} has unknown key(s) {sorted(unknown)}")
        name = raw.get("name")
        if not isinstance(name, str) or not name.strip():
            raise _fail(where, f"{at} needs a 'name' (text)")
        if name in seen or name.isdigit():
            raise _fail(where, f"{at} name {name!r} is repeated or a number")
        seen.add(name)
        runbook = raw.get("runbook")
        if not isinstance(runbook, str) or not runbook.strip():
            raise _fail(where, f"{at} ({name}) needs its 'runbook' text")
        auto = raw.get("automatable")
        if not isinstance(auto, bool):
            raise _fail(where, f"{at} ({name}) 'automatable' must be true or false")
        cmds = raw.get("commands")
        if not isinstance(cmds, dict) or not cmds:
            raise _fail(where, f"{at} ({name}) needs 'commands' per platform")
        commands: dict[str, tuple[str, ...]] = {}
        for kind, lines in cmds.items():
            if kind not in PLATFORMS:
                raise _fail(where, f"{at} ({name}) commands for unknown platform {kind!r}")
            if not isinstance(lines, list) or not all(
                isinstance(x, str) and x.strip() for x in lines
            ):
                raise _fail(where, f"{at} ({name}) commands.{kind} must be a list of text")
            commands[kind] = tuple(" ".join(x.split()) for x in lines)
        check = None
        if raw.get("check") is not None:
            c = raw["check"]
            if not isinstance(c, dict) or c.get("kind") not in CHECK_KINDS:
                raise _fail(where, f"{at} ({name}) check.kind must be one of {list(CHECK_KINDS)}")
            if c["kind"] in ("dr_event", "parameter") and not isinstance(c.get("arg"), str):
                raise _fail(where, f"{at} ({name}) check {c['kind']} needs 'arg' (text)")
            check = Check(str(c["kind"]), str(c.get("arg", "")), str(c.get("detail", "")))
        steps.append(Step(i, name, runbook.strip(), auto, commands, check))
    return Plan(
        scenario=str(data["scenario"]),
        runbook_section=str(data["runbook_section"]),
        title=str(data["title"]),
        steps=tuple(steps),
        path=path or Path(where),
    )


def load_plan(scenario: str, plans_dir: Path | None = None) -> Plan:
    """The plan of ``scenario``; :class:`UsageError` when there is none or it is bad."""
    d = plans_dir or PLANS_DIR
    path = d / f"{scenario}.yaml"
    if not re.fullmatch(r"[a-z0-9-]+", scenario) or not path.is_file():
        have = sorted(p.stem for p in d.glob("*.yaml"))
        raise UsageError(f"no game-day plan for {scenario!r} (plans: {', '.join(have)})")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise _fail(path.name, f"not YAML ({str(exc).splitlines()[0]})") from None
    plan = parse_plan(data, path.name, path)
    if plan.scenario != scenario:
        raise _fail(path.name, f"scenario {plan.scenario!r} does not match the file name")
    return plan


def manual_steps(spec: str | None, plan: Plan) -> set[int]:
    """``--manual``: ``all``, ``none`` or step numbers ``1,2,7``; :class:`UsageError` else."""
    if spec is None or spec == "all":
        return {s.number for s in plan.steps}
    if spec == "none":
        return set()
    out: set[int] = set()
    for part in spec.split(","):
        part = part.strip()
        if not part.isdigit() or not 1 <= int(part) <= len(plan.steps):
            raise UsageError(
                f"--manual {spec!r}: expected all, none or step numbers 1-{len(plan.steps)}"
            )
        out.add(int(part))
    return out


__all__ = ["Plan", "Step", "Check", "load_plan", "parse_plan", "render", "commands_for"]
