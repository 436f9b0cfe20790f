"""``mpac-drill scenarios``: the scenario catalog as a table."""

from __future__ import annotations

import dataclasses
import json

import click
from rich.table import Table

from mpac_drill.cli import console, target_options
from mpac_drill.config import Target, load_catalog, load_target
from mpac_drill.drill.runner import check_target_for
from mpac_drill.errors import ExitCode, UsageError


def _fmt_s(v: float | None) -> str:
    if v is None:
        return "-"
    if v >= 3600 and v % 3600 == 0:
        return f"{v / 3600:.0f} h"
    if v >= 60 and v % 60 == 0:
        return f"{v / 60:.0f} min"
    return f"{v:g} s"


def _readiness(scenario_id: str, has_drill: bool, target: Target) -> str:
    """``ready`` on this target, ``not yet`` (no drill), or ``needs <keys>`` (unset names)."""
    if not has_drill:
        return "not yet"
    try:
        check_target_for(scenario_id, target)
    except UsageError as exc:
        unset = str(exc).partition(" does not set ")[2].partition(", which")[0]
        return f"needs {unset}" if unset else "refused: see `run --dry-run`"
    no_dsn = not target.get("database.dsn_ssm_parameter")
    if target.kind != "sandbox" and no_dsn and _runs_canary_on_aws(scenario_id):
        return "runs, RPO not measured (set database.dsn_ssm_parameter)"
    return "ready"


def _runs_canary_on_aws(scenario_id: str) -> bool:
    """Whether the drill measures RPO with the canary on AWS (its experiment asks for it)."""
    from mpac_drill import EXPERIMENTS_DIR

    path = EXPERIMENTS_DIR / f"{scenario_id}.yaml"
    return path.is_file() and "canary_on_aws: true" in path.read_text(encoding="utf-8")


@click.command("scenarios")
@target_options
@click.option("--json", "as_json", is_flag=True, help="Print the catalog as JSON.")
def command(target: str, sets: tuple[str, ...], as_json: bool) -> int:
    """List the drill scenarios with their runbook section, targets and schedule.

    Targets come from experiments/catalog.yaml, never from code. The drill column says
    whether each drill can run on --target, or which of its names the target leaves unset.

    \b
    Example:
      mpac-drill scenarios --json
    """
    t = load_target(target, sets)  # validates --target/--set like every command
    cat = load_catalog()
    if as_json:
        click.echo(
            json.dumps(
                {
                    "global": {"rto_s": cat.global_rto_s, "rpo_s": cat.global_rpo_s},
                    "scenarios": [
                        {
                            **vars(s),
                            "detection": dataclasses.asdict(s.detection) if s.detection else None,
                            "readiness": _readiness(s.id, bool(s.experiment), t),
                        }
                        for s in cat.scenarios.values()
                    ],
                    "schedule": cat.schedule,
                },
                indent=2,
            )
        )
        return ExitCode.OK
    quarters = {sid: [q for q, ids in cat.schedule.items() if sid in ids] for sid in cat.scenarios}
    table = Table(
        title="mpac-drill scenarios (runbook RTO "
        f"{_fmt_s(cat.global_rto_s)}, RPO {_fmt_s(cat.global_rpo_s)})",
        title_justify="left",
    )
    for col in (
        "id",
        "runbook",
        "system",
        "fault",
        "RTO target",
        "RPO target",
        "quarters",
        "gate",
        "drill",
    ):
        table.add_column(
            col,
            overflow="fold",
            no_wrap=col != "fault",
            min_width=max(map(len, cat.scenarios)) if col == "id" else None,
        )
    for s in cat.scenarios.values():
        table.add_row(
            s.id,
            f"§{s.runbook_section}",
            s.system,
            s.fault,
            _fmt_s(s.rto_s),
            _fmt_s(s.rpo_s),
            ",".join(quarters[s.id]),
            "yes" if s.gate else "",
            _readiness(s.id, bool(s.experiment), t),
        )
    console.print(table)
    return ExitCode.OK
