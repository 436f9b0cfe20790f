"""The region procedures' manual steps on the sandbox, each performed for real.

``mpac-drill sandbox dr activate|status|set-parameter|restart|switch|verify``: what an
on-call engineer types during a sandbox game day, and what the harness itself calls for a
step left automated, so both take the same path.

- The *parameter store* is ``<dr state dir>/parameters/`` (``set-parameter`` writes it);
  the DR tasks read their parameters only when deployed: ``restart`` deploys the store
  into ``<dr state dir>/ssm/``, which the DR daemon waits for before starting its tasks.
- The *hosted zone* is ``<state dir>-route53/zone.json`` (``switch`` writes it); the front
  door the game-day harness holds applies it, as Route53 propagates a change.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from mpac_drill.config import Target
from mpac_drill.errors import UsageError
from mpac_drill.measure.observer import probe_http
from mpac_drill.platform.sandbox.region import (
    alb_ports,
    dr_target,
    rds_dsn,
    regions,
    write_parameter,
)
from mpac_drill.sandbox import control

PARAMETERS = ("DATABASE_URL", "PGW_BASE_URL")


def dr_dir(target: Target) -> Path:
    return control.state_dir(dr_target(target))


def zone_file(target: Target) -> Path:
    sdir = control.state_dir(target)
    return sdir.with_name(sdir.name + "-route53") / "zone.json"


def _primary_secrets(target: Target) -> dict[str, str]:
    path = control.state_dir(target) / "secrets.json"
    if not path.is_file():
        raise UsageError(f"no primary sandbox secrets at {path}: start the sandbox first")
    return dict(json.loads(path.read_text()))


def activate(target: Target) -> Path:
    """Start the DR stack: a second sandbox restoring the primary's bucket (its snapshot
    and WAL); its tasks wait for the deployed ``DATABASE_URL``."""
    dr = dr_target(target)
    ddir = control.state_dir(dr)
    control.stop_dir(ddir)  # leftovers of an earlier run
    for sub in ("ssm", "parameters"):
        shutil.rmtree(ddir / sub, ignore_errors=True)
    control.spawn(dr, secrets_={"db_password": _primary_secrets(target)["db_password"]})
    return ddir


def parameter_value(target: Target, name: str) -> str:
    dr = dr_target(target)
    if name == "DATABASE_URL":
        return rds_dsn(dr, _primary_secrets(target)["db_password"])
    if name == "PGW_BASE_URL":
        return f"http://127.0.0.1:{alb_ports(dr)['pgw']}"
    raise UsageError(f"parameter {name!r}: expected one of {', '.join(PARAMETERS)}")


def set_parameter(target: Target, name: str) -> Path:
    """Write ``name`` into the DR region's parameter store (mode 0600)."""
    value = parameter_value(target, name)
    path = dr_dir(target) / "parameters" / name
    write_parameter(path, value)
    return path


def restart(target: Target) -> list[str]:
    """Deploy the DR services with the parameter store's values (DATABASE_URL last: the
    DR daemon starts its tasks once it is there)."""
    ddir = dr_dir(target)
    store = ddir / "parameters"
    names = sorted(p.name for p in store.glob("*") if p.suffix != ".tmp") if store.is_dir() else []
    if "DATABASE_URL" not in names:
        raise UsageError(
            "no DATABASE_URL in the DR parameter store: "
            "run `sandbox dr set-parameter DATABASE_URL` first"
        )
    names.remove("DATABASE_URL")
    for name in [*names, "DATABASE_URL"]:
        write_parameter(ddir / "ssm" / name, (store / name).read_text().strip())
    return [*names, "DATABASE_URL"]


def switch(target: Target) -> dict[str, Any]:
    """Point every record of the hosted zone at the DR region's load balancers."""
    _, dr_region = regions(target)
    zone = {"region": dr_region, "records": alb_ports(dr_target(target)), "at": time.time()}
    path = zone_file(target)
    path.parent.mkdir(exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(zone))
    tmp.replace(path)
    return zone


def read_zone(target: Target) -> dict[str, Any] | None:
    try:
        return dict(json.loads(zone_file(target).read_text()))
    except (OSError, ValueError):
        return None


def clear_zone(target: Target) -> None:
    zone_file(target).unlink(missing_ok=True)


def front_door_urls(target: Target) -> dict[str, str]:
    off = int(target.require("region.front_door_port_offset"))
    return {n: f"http://127.0.0.1:{p + off}" for n, p in alb_ports(target).items()}


def verify(target: Target) -> dict[str, bool]:
    """Each service's deep health through the front door (what users reach)."""
    return {n: probe_http(f"{u}/health?deep=1", 1.0)[0] for n, u in front_door_urls(target).items()}


def events(target: Target) -> tuple[str, list[dict[str, str]]]:
    state = control.read_state(dr_dir(target))
    if state is None:
        return "not started", []
    return str(state.get("phase", "?")), list(state.get("events", []))


__all__ = ["activate", "set_parameter", "restart", "switch", "verify", "events", "read_zone"]
