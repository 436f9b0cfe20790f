"""``mpac-drill gameday SCENARIO``: the runbook's region procedure walked by people, timed;
``gameday ack RUN STEP`` and ``gameday update RUN`` from another terminal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from mpac_drill.cli import console, err_console, runs_dir_option, target_options
from mpac_drill.config import load_catalog, load_target
from mpac_drill.errors import ExitCode, UsageError
from mpac_drill.gameday import state
from mpac_drill.gameday.plan import commands_for, load_plan, manual_steps


class _Group(click.Group):
    """``gameday SCENARIO ...`` is ``gameday start SCENARIO ...``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["start", *args]
        return super().parse_args(ctx, args)


@click.group("gameday", cls=_Group)
def command() -> None:
    """Run a region procedure as a game day: people do the manual steps, each timed.

    \b
    Examples:
      mpac-drill gameday region-failover --dry-run
      mpac-drill gameday region-failover --manual all --severity P0
      mpac-drill gameday ack runs/<run> 2 --note "DR stack up"
      mpac-drill gameday update runs/<run> --note "ETA 20 min posted"
    """


def _edit(
    manual: str,
    severity: str,
    update_every: float,
    effect_timeout: float,
    resume_from: str = "",
) -> Any:
    def edit(experiment: Any) -> Any:
        method = experiment["method"]
        for i, act in enumerate(method):
            if act.get("name") == "fail-over-to-dr":
                method[i] = {
                    "type": "action",
                    "name": "gameday-walk-plan",
                    "provider": {
                        "type": "python",
                        "module": "mpac_drill.gameday.walk",
                        "func": "walk_plan",
                        "arguments": {
                            "manual": manual,
                            "severity": severity,
                            "update_every_s": update_every,
                            "effect_timeout_s": effect_timeout,
                            "resume_from": resume_from,
                        },
                    },
                }
                return experiment
        raise UsageError("the scenario's experiment has no fail-over-to-dr step to walk")

    return edit


@command.command("start")
@click.argument("scenario")
@target_options
@runs_dir_option
@click.option("--manual", default="all", show_default=True, help="all, none or steps: 1,2,7")
@click.option("--severity", default="P0", show_default=True, help="Declared severity (§3.1).")
@click.option(
    "--update-every",
    type=click.FloatRange(0),
    default=0,
    help="Seconds between stakeholder updates (default: the severity's §3.1 frequency).",
)
@click.option("--effect-timeout", type=click.FloatRange(1), default=120, show_default=True)
@click.option("--users", type=click.IntRange(0), default=None, help="Load users.")
@click.option("--dry-run", is_flag=True, help="Print the plan with every command; call nothing.")
def start(
    scenario: str,
    target: str,
    sets: tuple[str, ...],
    runs_dir: str,
    manual: str,
    severity: str,
    update_every: float,
    effect_timeout: float,
    users: int | None,
    dry_run: bool,
) -> int:
    """Inject the fault, start observer, canary and load, then walk SCENARIO's plan.

    Manual steps are shown with their commands and wait for Enter here or for
    `mpac-drill gameday ack RUN STEP` from another terminal; each step's check is watched
    by the harness, which records when the effect was first seen.

    \b
    Examples:
      mpac-drill gameday start region-failover --manual all --severity P0
      mpac-drill gameday start pgw-region-failover --manual 2,3 --dry-run
    """
    t = load_target(target, sets)
    plan = load_plan(scenario)
    manual_set = manual_steps(manual, plan)
    if severity not in load_catalog().response_targets:
        raise UsageError(f"--severity {severity!r}: expected one of P0, P1, P2, P3")
    console.print(f"game day: {plan.title} (runbook §{plan.runbook_section}) on {t.name}")
    for s in plan.steps:
        mode = "manual" if s.number in manual_set else "automated"
        console.print(f"[{s.number}] {s.name} ({mode}): {s.runbook}", markup=False)
        for c in commands_for(s, t):
            console.print(f"    $ {c}", markup=False, soft_wrap=True)
        if s.check is not None:
            console.print(f"    check: {s.check.detail or s.check.kind}", markup=False)
    if dry_run:
        console.print("dry run: nothing was called")
        return ExitCode.OK
    edit = _edit(
        ",".join(map(str, sorted(manual_set))) or "none", severity, update_every, effect_timeout
    )
    return _run(scenario, t, runs_dir, users, edit, None)


def _run(
    scenario: str, t: Any, runs_dir: str, users: int | None, edit: Any, timeline: Path | None
) -> int:
    """Run the drill with the walk in it; the ``gameday`` block into its result.json from
    the timeline's folder (the first run's, for a resumed game day)."""
    from mpac_drill.drill.runner import run_drill
    from mpac_drill.gameday import dr, summary

    try:
        outcome = run_drill(
            scenario,
            t,
            runs_dir=Path(runs_dir),
            users=users,
            progress=lambda m: err_console.print(f"[dim]{m}[/dim]"),
            experiment_edit=edit,
        )
    finally:
        if t.kind == "sandbox":
            dr.clear_zone(t)
    result = outcome.result
    home = timeline or outcome.run_dir
    if (home / state.STATE).is_file():
        from mpac_drill.drill.result import validate, write_json

        result["gameday"] = summary.block(home, result["measurements"].get("rto_s"))
        errors = validate(result)
        if errors:
            raise UsageError(f"result.json with the gameday block breaks the contract: {errors[0]}")
        write_json(outcome.run_dir / "result.json", result)
        g = result["gameday"]
        console.print(
            f"people {g['people_s']:.2f} s, machine {g['machine_s']:.2f} s, "
            f"RTO {result['measurements'].get('rto_s')} s, response {g['response_s']} s"
        )
        if g.get("gaps"):
            console.print(
                f"resumed: {len(g['gaps'])} gap(s), {g['gap_s']:.2f} s; RTO over the timeline "
                f"{g['rto_timeline_s']} s ({g['rto_timeline_without_gaps_s']} s without gaps)"
            )
        if g["status"] in ("interrupted", "stopped"):
            console.print(f"continue with: mpac-drill gameday resume {home}", markup=False)
    console.print(f"run folder: {outcome.run_dir}")
    return outcome.exit_code


@command.command("resume")
@click.argument("run")
@target_options
@runs_dir_option
@click.option("--effect-timeout", type=click.FloatRange(1), default=120, show_default=True)
@click.option("--users", type=click.IntRange(0), default=None, help="Load users.")
def resume(
    run: str,
    target: str,
    sets: tuple[str, ...],
    runs_dir: str,
    effect_timeout: float,
    users: int | None,
) -> int:
    """Continue the interrupted game day RUN from the step it was on.

    The fault is injected again with observer, canary and load restarted (a new run folder
    for the drill); the steps done before are performed again by the harness, the time the
    harness was away is recorded as a gap in RUN's one timeline, and the operators keep
    confirming with `gameday ack RUN STEP`.

    \b
    Example:
      mpac-drill gameday resume 20261130T061106Z-region-failover-sandbox
    """
    import psutil

    t = load_target(target, sets)
    run_dir = state.find_run(run, Path(runs_dir))
    gd = state.read(run_dir)
    if gd.get("status") == "done":
        raise UsageError(f"game day {run_dir.name} is done: nothing to resume")
    pid = gd.get("harness_pid")
    if gd.get("status") == "walking" and pid and psutil.pid_exists(int(pid)):
        raise UsageError(f"game day {run_dir.name} is still walked by process {pid}")
    if gd.get("target") != t.name:
        raise UsageError(f"game day {run_dir.name} ran on {gd.get('target')!r}, not {t.name!r}")
    manual = ",".join(str(s["number"]) for s in gd["steps"] if s["manual"]) or "none"
    console.print(
        f"resuming game day {run_dir.name} at step {gd['current']} "
        f"({gd['steps'][int(gd['current']) - 1]['name']})",
        markup=False,
    )
    edit = _edit(
        manual, gd["severity"], float(gd["targets"]["update_s"]), effect_timeout, str(run_dir)
    )
    return _run(gd["scenario"], t, runs_dir, users, edit, run_dir)


@command.command("ack")
@click.argument("run")
@click.argument("step")
@click.option("--note", default="", help="What the operator saw or decided.")
@target_options
@runs_dir_option
def ack(run: str, step: str, note: str, target: str, sets: tuple[str, ...], runs_dir: str) -> int:
    """Confirm STEP (number or name) of the game day RUN as done.

    The run folder alone decides what is confirmed; --target and --set are accepted like on
    every command and checked, nothing more.

    \b
    Example:
      mpac-drill gameday ack 20261130T061106Z-region-failover-sandbox 3 --note "record switched"
    """
    load_target(target, sets)
    run_dir = state.find_run(run, Path(runs_dir))
    gd = state.read(run_dir)
    names = {str(s["number"]): s for s in gd["steps"]} | {s["name"]: s for s in gd["steps"]}
    s = names.get(step)
    if s is None:
        raise UsageError(f"no step {step!r} in {gd['plan']} (1-{len(gd['steps'])} or a name)")
    if not s["manual"]:
        raise UsageError(f"step {s['number']} ({s['name']}) is automated: nothing to confirm")
    a = state.write_ack(run_dir, int(s["number"]), note=note)
    console.print(f"step {s['number']} ({s['name']}) confirmed by {a['who']}", markup=False)
    return ExitCode.OK


@command.command("update")
@click.argument("run")
@click.option("--note", default="", help="What was communicated (§3: ETA, status).")
@target_options
@runs_dir_option
def update(run: str, note: str, target: str, sets: tuple[str, ...], runs_dir: str) -> int:
    """Record one stakeholder update (runbook §3 cadence) for the game day RUN.

    \b
    Example:
      mpac-drill gameday update 20261130T061106Z-region-failover-sandbox --note "ETA 30 min"
    """
    load_target(target, sets)
    run_dir = state.find_run(run, Path(runs_dir))
    u = state.write_update(run_dir, note)
    console.print(f"update recorded at {state.stamp(u['at'])} by {u['who']}", markup=False)
    return ExitCode.OK


@command.command("status")
@click.argument("run")
@target_options
@runs_dir_option
def status(run: str, target: str, sets: tuple[str, ...], runs_dir: str) -> int:
    """The game day's state file (JSON).

    \b
    Example:
      mpac-drill gameday status 20261130T061106Z-region-failover-sandbox
    """
    load_target(target, sets)
    console.print_json(json.dumps(state.read(state.find_run(run, Path(runs_dir)))))
    return ExitCode.OK
