"""``mpac-drill sandbox up|status|down|snapshots``: the local miniature MPAC platform."""

from __future__ import annotations

import json
import shlex
import time

import click
from rich.table import Table

from mpac_drill.cli import console, err_console, target_options
from mpac_drill.config import load_target
from mpac_drill.errors import ExitCode
from mpac_drill.sandbox import control, snapshots


def _progress(msg: str) -> None:
    err_console.print(f"[dim]sandbox:[/dim] {msg}")


@click.group("sandbox")
def command() -> None:
    """Start, inspect and stop the local sandbox (real PostgreSQL, Redis, services).

    \b
    Examples:
      mpac-drill sandbox up
      mpac-drill sandbox up --set ecs.tasks_per_service=3
      mpac-drill sandbox status --json
      eval "$(mpac-drill sandbox env --password)" && psql -c 'select 1'
      mpac-drill sandbox snapshots
      mpac-drill sandbox down
    """


@command.command("up")
@target_options
def up(target: str, sets: tuple[str, ...]) -> int:
    """Start the sandbox and wait until every component is healthy (idempotent).

    Example: mpac-drill sandbox up --set rds.failover_delay_s=2
    """
    t = load_target(target, sets)
    started = time.monotonic()
    control.up(t, _progress)
    _progress(f"up in {time.monotonic() - started:.1f} s")
    _print_status(control.status(t))
    return ExitCode.OK


@command.command("env")
@target_options
@click.option(
    "--db",
    type=click.Choice(["smartpos", "pgw"]),
    default="smartpos",
    show_default=True,
    help="Which database the PG* variables name.",
)
@click.option(
    "--password",
    "with_password",
    is_flag=True,
    help="Also print PGPASSWORD (and the password in REDIS_URL): only when asked.",
)
def env(target: str, sets: tuple[str, ...], db: str, with_password: bool) -> int:
    """Print shell lines that point psql and redis-cli at the running sandbox.

    PGHOST/PGPORT/PGUSER/PGDATABASE (the primary and the standby, read-write session),
    REDIS_URL (the current Redis primary), REDIS_SENTINELS and REDIS_MASTER. The password
    is printed only with --password, never by status.

    \b
    Example:
      eval "$(mpac-drill sandbox env --password)" && psql -c 'select 1'
    """
    from psycopg.conninfo import conninfo_to_dict

    view = control.view(load_target(target, sets))  # a usage error when it is not running
    params = conninfo_to_dict(view.endpoints["dsn" if db == "smartpos" else "pgw_dsn"])
    lines = {
        "PGHOST": params.get("host"),
        "PGPORT": params.get("port"),
        "PGUSER": params.get("user"),
        "PGDATABASE": params.get("dbname"),
        "PGTARGETSESSIONATTRS": params.get("target_session_attrs"),
    }
    password = view.secrets.get("db_password") if with_password else None
    if password:
        lines["PGPASSWORD"] = password
    primary = [c for c in view.state["components"]
               if c["kind"] == "elasticache" and c.get("role") == "primary"]  # fmt: skip
    if primary:
        auth = view.secrets.get("redis_password") if with_password else None
        user = view.endpoints.get("redis_user", "")
        cred = f"{user}:{auth}@" if auth else ""
        lines["REDIS_URL"] = f"redis://{cred}{primary[0]['address']}/0"
    lines["REDIS_SENTINELS"] = ",".join(view.endpoints.get("sentinels", []))
    lines["REDIS_MASTER"] = view.endpoints.get("redis_master")
    for key, value in lines.items():
        if value:
            click.echo(f"export {key}={shlex.quote(str(value))}")
    return ExitCode.OK


@command.command("status")
@target_options
@click.option("--json", "as_json", is_flag=True, help="Print the state as JSON (no secrets).")
def status(target: str, sets: tuple[str, ...], as_json: bool) -> int:
    """Show each component with its role, pid, address and health.

    Exit code 0 when the sandbox runs and is healthy, 3 otherwise.

    \b
    Example:
      mpac-drill sandbox status --json
    """
    st = control.status(load_target(target, sets))
    if as_json:
        click.echo(
            json.dumps(
                {
                    k: st.get(k)
                    for k in (
                        "running",
                        "healthy",
                        "phase",
                        "started_at",
                        "updated_at",
                        "components",
                        "endpoints",
                        "tuning",
                        "detection",
                        "state_dir",
                    )
                },
                indent=2,
            )
        )
    else:
        _print_status(st)
    return ExitCode.OK if st["healthy"] else ExitCode.HARNESS


@command.command("down")
@target_options
def down(target: str, sets: tuple[str, ...]) -> int:
    """Stop every process the sandbox started, including leftovers of a killed `up`.

    Example: mpac-drill sandbox down
    """
    control.down(load_target(target, sets), _progress)
    _progress("down")
    return ExitCode.OK


@command.command("snapshots")
@target_options
@click.option("--json", "as_json", is_flag=True, help="Print the listing as JSON.")
def snapshots_(target: str, sets: tuple[str, ...], as_json: bool) -> int:
    """List the base backups and the WAL archive in the sandbox's bucket (RDS backups).

    Works while the sandbox is down too (the bucket stays until the next `up`).

    \b
    Example:
      mpac-drill sandbox snapshots --json
    """
    snap = snapshots.list_snapshots(
        snapshots.bucket_dir(control.state_dir(load_target(target, sets)))
    )
    if as_json:
        click.echo(json.dumps(snap, indent=2))
        return ExitCode.OK
    table = Table(title=f"base backups in {snap['bucket']}", title_justify="left")
    for col in ("taken (UTC)", "size", "took", "WAL start LSN", "timeline", "from"):
        table.add_column(col)
    for b in snap["base_backups"]:
        table.add_row(
            b["finished_at"],
            f"{b['size_bytes'] / 1e6:.1f} MB",
            f"{b['duration_s']:.2f} s",
            b["start_lsn"],
            str(b["timeline"]),
            b["source"],
        )
    console.print(table)
    wal = snap["wal"]
    newest = (
        f"newest {wal['newest_file']} archived {wal['newest_at']} ({wal['newest_age_s']:.1f} s ago)"
        if wal["newest_at"]
        else "empty"
    )
    console.print(
        f"WAL archive: {wal['files']} files, {wal['size_bytes'] / 1e6:.1f} MB; {newest}",
        markup=False,
    )
    return ExitCode.OK


def _print_status(st: dict) -> None:
    if not st["running"]:
        console.print("sandbox is [bold]down[/bold] (start it with `mpac-drill sandbox up`)")
        return
    table = Table(
        title=f"sandbox: {'healthy' if st['healthy'] else st['phase']}", title_justify="left"
    )
    for col in ("component", "kind", "role", "pid", "address", "health", "detail"):
        table.add_column(col)
    for c in st["components"]:
        health = "[green]healthy[/green]" if c["healthy"] else "[red]unhealthy[/red]"
        table.add_row(
            c["name"],
            c["kind"],
            c["role"],
            str(c["pid"] or "-"),
            c["address"],
            health,
            c.get("detail") or "",
        )
    console.print(table)
    ep = st["endpoints"]
    for name, url in ep.get("services", {}).items():
        console.print(f"  {name:<13} {url}")
    console.print(f"  {'dsn':<13} {ep.get('dsn')}", markup=False)
    console.print(
        f"  {'sentinels':<13} {', '.join(ep.get('sentinels', []))} "
        f"(master {ep.get('redis_master')})",
        markup=False,
    )
    det = st.get("detection") or {}
    for a in det.get("alarms", []):  # the sandbox's CloudWatch alarms (issue 12)
        value = "-" if a.get("last_value") is None else f"{a['last_value']:g}"
        console.print(
            f"  alarm {a['name']:<29} {a['state']:<17} {a['metric']}={value}", markup=False
        )
    open_incidents = [
        i for i in (det.get("pager") or {}).get("incidents", []) if i["status"] != "resolved"
    ]
    if det:
        console.print(f"  pager         {len(open_incidents)} open incident(s)", markup=False)


# ---------------------------------------------------------------- the DR region's manual steps


@command.group("dr")
def dr_group() -> None:
    """The region procedure's manual steps on the sandbox (game day, runbook §1.4/§1.5).

    \b
    Examples:
      mpac-drill sandbox dr activate          # the DR stack, restoring the primary's bucket
      mpac-drill sandbox dr status
      mpac-drill sandbox dr set-parameter DATABASE_URL
      mpac-drill sandbox dr restart           # deploy the DR services with the parameters
      mpac-drill sandbox dr switch            # the Route53 record -> the DR load balancers
      mpac-drill sandbox dr verify
    """


@dr_group.command("activate")
@target_options
def dr_activate(target: str, sets: tuple[str, ...]) -> int:
    """Start the DR stack from the primary's bucket (latest snapshot + WAL).

    \b
    Example:
      mpac-drill sandbox dr activate
    """
    from mpac_drill.gameday import dr

    console.print(f"DR stack starting in {dr.activate(load_target(target, sets))}")
    return ExitCode.OK


@dr_group.command("status")
@target_options
def dr_status(target: str, sets: tuple[str, ...]) -> int:
    """The DR stack's phase and its events (restore progress).

    \b
    Example:
      mpac-drill sandbox dr status
    """
    from mpac_drill.gameday import dr

    phase, events = dr.events(load_target(target, sets))
    console.print(f"DR stack: {phase}")
    for ev in events[-15:]:
        console.print(f"  {ev['at']}  {ev['event']}", markup=False)
    return ExitCode.OK


@dr_group.command("set-parameter")
@click.argument("name", type=click.Choice(["DATABASE_URL", "PGW_BASE_URL"]))
@target_options
def dr_set_parameter(name: str, target: str, sets: tuple[str, ...]) -> int:
    """Write NAME (the DR database / the DR PGW) into the DR parameter store.

    \b
    Example:
      mpac-drill sandbox dr set-parameter DATABASE_URL
    """
    from mpac_drill.gameday import dr

    console.print(f"{name} written: {dr.set_parameter(load_target(target, sets), name)}")
    return ExitCode.OK


@dr_group.command("restart")
@target_options
def dr_restart(target: str, sets: tuple[str, ...]) -> int:
    """Deploy the DR services with the parameter store's values.

    \b
    Example:
      mpac-drill sandbox dr restart
    """
    from mpac_drill.gameday import dr

    console.print(f"DR services deployed with {', '.join(dr.restart(load_target(target, sets)))}")
    return ExitCode.OK


@dr_group.command("switch")
@target_options
def dr_switch(target: str, sets: tuple[str, ...]) -> int:
    """Point the front door's records (Route53) at the DR region's load balancers.

    \b
    Example:
      mpac-drill sandbox dr switch
    """
    from mpac_drill.gameday import dr

    zone = dr.switch(load_target(target, sets))
    console.print(f"records -> {zone['region']}: {zone['records']}")
    return ExitCode.OK


@dr_group.command("verify")
@target_options
def dr_verify(target: str, sets: tuple[str, ...]) -> int:
    """Deep health of every service through the front door; exit 1 when one fails.

    \b
    Example:
      mpac-drill sandbox dr verify
    """
    from mpac_drill.gameday import dr

    res = dr.verify(load_target(target, sets))
    for name, ok in res.items():
        console.print(f"{name}: {'ok' if ok else 'FAILING'}")
    return ExitCode.OK if all(res.values()) else 1
