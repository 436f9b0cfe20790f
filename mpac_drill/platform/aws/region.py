"""The region drills (runbook §1.4, §1.5) on AWS: the DR procedure, for real, in the DR region.

A real region cannot be lost on demand, so on AWS the primary region is *declared* lost
(the injection instant is marked; the primary keeps running and is never touched) and the
runbook's procedure then runs for real against ``aws.dr_region`` through
``dr.py``: newest snapshot the DR region holds, restore it (bounded wait),
point the DATABASE_URL (or PGW_BASE_URL) parameter at it, force a new deployment of the
services, switch the Route53 record (``route53.dr_dns_name``), verify health through the
target's endpoints. Each step is timed into ``steps``. ``fail_back`` undoes what was done:
the record and the parameters are put back exactly as they were (record set, TTL, routing;
value, type, KMS key, tier), the restored instance is deleted.
A dry run prints the same plan and makes no call.
"""

from __future__ import annotations

import importlib
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from chaoslib.exceptions import ActivityFailed

from mpac_drill.measure.record import QrPath
from mpac_drill.timefmt import utc_now

if TYPE_CHECKING:
    from mpac_drill.drill.context import DrillContext


NOT_BUILT = "region failover on AWS: not built yet"


def _aws_dr() -> Any:
    try:
        return importlib.import_module("mpac_drill.platform.aws.dr")
    except ImportError:
        return None


def regions(target: Any) -> tuple[str, str]:
    return (str(target.get("aws.region", "?")), str(target.get("aws.dr_region", "?")))


def open_front_door(ctx: DrillContext) -> dict[str, Any]:
    """Nothing to open: on AWS the front door is Route53 itself (``endpoints``)."""
    return {"front_door": "route53", "endpoints": ctx.endpoints()}


def close_front_door(ctx: DrillContext) -> bool:
    return False


def lose_region(ctx: DrillContext) -> dict[str, Any]:
    primary, dr = regions(ctx.target)
    if ctx.dry_run:
        return {"dry_run": True, "region": primary, "dr_region": dr}
    # Nothing is broken in the primary: the drill declares it lost and fails over.
    ctx.mark_injected("region:declared-lost", [primary], dr_region=dr, simulated=True)
    ctx.fault_took_effect(True, evidence=f"{primary} declared lost: nothing in it is touched")
    ctx.note(
        f"{primary} declared lost (a region cannot be taken down on demand); the DR "
        f"procedure ran for real in {dr}"
    )
    return {"region": primary, "dr_region": dr, "simulated": True}


def _findings(ctx: DrillContext, mod: Any, system: str) -> None:
    if not hasattr(mod, "runbook_region_findings"):
        return
    ctx.record.findings.extend(
        {
            "id": f["id"],
            "section": f["section"],
            "summary": f"runbook step {f['step']} ({f['action']}) runs in "
            f"{f['runbook_region']}, not the DR region {f['dr_region']}",
            "evidence": f["evidence"],
        }
        for f in mod.runbook_region_findings(ctx.target)
        if f["section"] == ("1.5" if system == "pgw" else "1.4")
    )


def _with_endpoint(url: str, host: str, port: int | None) -> str:
    """``url`` (a DATABASE_URL) with its host and port replaced, credentials kept."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    netloc = f"{userinfo}{host}" + (f":{port}" if port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _wait_healthy(ctx: DrillContext, deadline: float) -> int:
    from mpac_drill.measure.observer import probe_http

    checks = 0
    while True:
        checks += 1
        if all(probe_http(u, 2.0)[0] for u in ctx.endpoints().values()):
            return checks
        if time.monotonic() > deadline:
            raise ActivityFailed("DR services not healthy within the recovery bound")
        time.sleep(1.0)


class Procedure:
    """The runbook's region procedure on AWS, one method per step, each taking the
    :class:`StepTimer` detail dict: the automated drill runs them all in order
    (:func:`fail_over_to_dr`), a game day runs the ones its operators left automated
    (``mpac_drill.gameday.aws_walk``). Every change is recorded write-ahead
    (``inflight.json``) and in ``ctx.handles.region_undo`` for :func:`fail_back`."""

    def __init__(self, ctx: DrillContext, timeout_s: float, system: str = "smartpos") -> None:
        mod = _aws_dr()
        if mod is None:
            raise ActivityFailed(f"{NOT_BUILT} (no aws_dr module)")
        if ctx.injected_mono is None or ctx.injected_utc is None:
            raise ActivityFailed("the region procedure needs lose_region first")
        self.ctx, self.mod, self.system, self.t = ctx, mod, system, ctx.target
        self.db = "pgw" if system == "pgw" else "smartpos"
        self.param = "pgw_base_url" if system == "pgw" else "database_url"
        self.dr = regions(self.t)[1]
        self.deadline = ctx.injected_mono + timeout_s
        if ctx.handles.region_undo is None:
            ctx.handles.region_undo = {}
        self.undo: dict[str, Any] = ctx.handles.region_undo
        self.snap: dict[str, Any] | None = None
        self.restored: dict[str, Any] | None = None

    def find_snapshot(self, d: dict[str, str]) -> None:
        t, ctx, dr, db = self.t, self.ctx, self.dr, self.db
        assert ctx.injected_utc is not None
        snap = self.mod.latest_snapshot(t, db)
        if snap is None:
            raise ActivityFailed(
                f"no snapshot of {t.get(f'rds.{db}.identifier')} in {dr} "
                "(runbook finding F3: nothing was copied there)"
            )
        self.snap = snap
        d["detail"] = f"{snap['snapshot_id']}, data as of {snap['data_as_of']}"
        ctx.record.dr_snapshot = dict(snap)
        # F3: what the DR region holds bounds the loss: RPO = loss - newest data there
        as_of = datetime.fromisoformat(str(snap["data_as_of"]).replace("Z", "+00:00"))
        ctx.measurements["rpo_s"] = round(max(0.0, (ctx.injected_utc - as_of).total_seconds()), 3)
        ctx.record.findings.append(
            {
                "id": "F3",
                "section": "1.4",
                "summary": "the DR region holds only the snapshots copied there",
                "evidence": f"newest in {dr}: {snap['snapshot_id']} (data as of "
                f"{snap['data_as_of']}); RPO {ctx.measurements['rpo_s']:.0f} s",
            }
        )

    def restore(self, d: dict[str, str]) -> None:
        from mpac_drill.platform.aws import recover

        if self.snap is None:
            raise ActivityFailed("restore: no snapshot found first")
        new_id = self.mod.dr_identifier(str(self.t.require(f"rds.{self.db}.identifier")), utc_now())
        self.ctx.undo_add(recover.instance_step(new_id, self.dr))  # write-ahead: before the call
        restored = self.mod.restore_from_snapshot(
            self.t,
            self.db,
            self.snap["snapshot_id"],
            new_identifier=new_id,
            timeout_s=max(1.0, self.deadline - time.monotonic()),
            poll_s=2.0,
        )
        self.undo["restored_instance"] = restored["identifier"]
        if not restored["available"]:
            raise ActivityFailed(f"{restored['identifier']} not available in time")
        self.restored = restored
        d["detail"] = f"{restored['identifier']} at {restored['endpoint_address']}"

    def _restored(self) -> dict[str, Any]:
        if self.restored is None:
            raise ActivityFailed("no DR instance restored by the harness to point the services at")
        return self.restored

    def update_parameter(self, d: dict[str, str]) -> None:
        from mpac_drill.platform.aws import recover

        t, param, dr = self.t, self.param, self.dr
        name = str(t.require(f"ssm.{param}"))
        old, shape = self.mod.describe_parameter(t, param)
        if old is None or shape is None:
            raise ActivityFailed(f"SSM parameter {name} does not exist in {dr}")
        if self.system == "pgw":
            value = str(t.get("pgw.dr_base_url") or "")
            if not value:
                raise ActivityFailed(
                    f"pgw.dr_base_url (the DR PGW endpoint) is not set in target {t.name}"
                )
        else:
            restored = self._restored()
            value = _with_endpoint(old, restored["endpoint_address"], restored["endpoint_port"])
        self.undo.setdefault("parameters", []).append((param, old, shape))  # in memory only
        self.ctx.undo_add(recover.parameter_step(t, param))
        result = self.mod.put_parameter(t, param, value, like=shape)
        self.ctx.undo_update(f"ssm:{param}", data={"version_written": result["version"]})
        d["detail"] = f"{name} version {result['version']} in {dr}"

    def update_pgw_database_url(self, d: dict[str, str]) -> None:
        """§1.5 never points the DR PGW at the restored database (finding F13)."""
        from mpac_drill.aws import AwsCallFailed
        from mpac_drill.platform.aws import recover

        t, dr = self.t, self.dr
        name = str(t.require("ssm.pgw_database_url"))
        try:
            old, shape = self.mod.describe_parameter(t, "pgw_database_url")
        except AwsCallFailed as exc:
            old, shape = None, None
            code = exc.code
        else:
            code = "ParameterNotFound"
        if old is None or shape is None:
            raise ActivityFailed(
                f"{name} in {dr}: {code}: the DR PGW's DATABASE_URL "
                "must exist there (its credentials are kept, only the "
                "host moves to the restored instance)"
            )
        restored = self._restored()
        self.undo.setdefault("parameters", []).append(("pgw_database_url", old, shape))
        self.ctx.undo_add(recover.parameter_step(t, "pgw_database_url"))
        result = self.mod.put_parameter(
            t,
            "pgw_database_url",
            _with_endpoint(old, restored["endpoint_address"], restored["endpoint_port"]),
            like=shape,
        )
        self.ctx.undo_update("ssm:pgw_database_url", data={"version_written": result["version"]})
        d["detail"] = f"{name} version {result['version']} in {dr} -> {restored['identifier']}"
        self.ctx.record.findings.append(
            {
                "id": "F13",
                "section": "1.5",
                "summary": "runbook 1.5 restores the PGW database into mpac-pgw-dr but no step "
                "points the DR PGW at it (1.4 has step 5 for mpac-smartpos)",
                "evidence": f"the drill added the step '{PGW_DB_STEP}': {d['detail']}",
            }
        )

    def restart(self, d: dict[str, str]) -> None:
        services = list(self.t.require("ecs.services"))
        for svc in services:
            self.mod.force_new_deployment(self.t, svc)
        d["detail"] = ", ".join(services)

    def switch(self, d: dict[str, str]) -> None:
        from mpac_drill.platform.aws import recover

        dns = self.t.get("route53.dr_dns_name")
        if not dns:
            raise ActivityFailed(
                f"route53.dr_dns_name (the DR load balancer) is not set in target {self.t.name}"
            )
        change = self.mod.switch_record(
            self.t,
            to_dns_name=str(dns),
            before_change=lambda planned: self.ctx.undo_add(recover.record_step(planned)),
        )
        self.undo["record"] = change  # the whole record set as it was: fail-back puts it back
        d["detail"] = f"{change['record']} -> {change['to_dns_name']} ({change['status']})"

    def verify(self, d: dict[str, str]) -> None:
        d["detail"] = f"{_wait_healthy(self.ctx, self.deadline)} check(s)"


PGW_DB_STEP = "update the DR PGW's DATABASE_URL (SSM; not in the runbook)"


def fail_over_to_dr(
    ctx: DrillContext, timeout_s: float = 120, system: str = "smartpos"
) -> dict[str, Any]:
    mod = _aws_dr()
    if mod is None:
        raise ActivityFailed(f"{NOT_BUILT} (no aws_dr module)")
    _findings(ctx, mod, system)
    if ctx.dry_run:
        from mpac_drill.aws import DryRun

        plan = mod.plan_region_failover(
            ctx.target, system=system, dry_run=ctx.dry_run_recorder or DryRun()
        )
        return {"dry_run": True, "plan": [dict(s) for s in plan]}
    from mpac_drill.platform.steps import StepTimer

    proc = Procedure(ctx, timeout_s, system)
    assert ctx.injected_mono is not None and ctx.injected_utc is not None
    steps = StepTimer(ctx.record.steps, ctx.injected_mono, ctx.injected_utc, ctx.procedure_step)
    order: list[tuple[str, Any]] = [
        ("find the newest snapshot in the DR region", proc.find_snapshot),
        ("restore snapshot", proc.restore),
        (f"update {proc.param.upper()} (SSM)", proc.update_parameter),
    ]
    if system == "pgw":
        order.append((PGW_DB_STEP, proc.update_pgw_database_url))
    order += [
        ("restart services", proc.restart),
        ("switch Route53 record", proc.switch),
        ("verify health", proc.verify),
    ]
    for name, perform in order:
        with steps.step(name) as d:
            perform(d)
    qr = _qr_path(ctx.target, regions(ctx.target)[0], proc.dr)
    if qr is not None:  # runbook finding F12: which PGW mpac-smartpos in the DR region calls
        ctx.record.qr_path = qr
    # users never saw the primary go down, so the outage is the procedure itself
    ctx.record.procedure_rto_s = round(time.monotonic() - ctx.injected_mono, 4)
    return {
        "dr_region": proc.dr,
        "restored_instance": proc._restored()["identifier"],
        "steps": [s["name"] for s in ctx.record.steps],
    }


def _qr_path(t: Any, primary: str, dr: str) -> QrPath | None:
    """What mpac-smartpos's ``PGW_BASE_URL`` (``ssm.pgw_base_url``, read in the DR region)
    names after the procedure: the DR PGW (``pgw.dr_base_url``, or a host naming the DR
    region), the lost region's, or nothing. Only scheme, host, port and path are kept."""
    from mpac_drill.aws import AwsCallFailed, client

    name = str(t.get("ssm.pgw_base_url") or "")
    if not name:
        return None
    try:
        value = str(
            client("ssm", t, region=dr).get_parameter(Name=name, WithDecryption=True)["Parameter"][
                "Value"
            ]
        )
    except AwsCallFailed as exc:
        if exc.code != "ParameterNotFound":
            raise
        value = ""
    parts = urlsplit(value.strip())
    host = parts.hostname or ""
    shown = (
        urlunsplit(
            (parts.scheme, host + (f":{parts.port}" if parts.port else ""), parts.path, "", "")
        )
        if host
        else ""
    )
    dr_url = str(t.get("pgw.dr_base_url") or "").rstrip("/")
    to_dr = bool(host) and (shown.rstrip("/") == dr_url if dr_url else dr in host)
    in_lost = primary in host
    where = (
        "the DR PGW"
        if to_dr
        else "the lost region's PGW"
        if in_lost
        else "no PGW: the parameter is missing there"
        if not host
        else "a PGW not known to be in the DR region"
    )
    return {
        "pgw_base_url": shown,
        "pgw": "not probed on AWS",
        "to_dr_pgw": to_dr,
        "in_lost_region": in_lost,
        "detail": f"{name} in {dr} names {shown or '(nothing)'} ({where})",
    }


def fail_back(ctx: DrillContext, timeout_s: float = 120) -> dict[str, Any]:
    """Undo what the failover changed: record, parameter, restored instance (idempotent)."""
    undo, ctx.handles.region_undo = ctx.handles.region_undo, None
    if ctx.dry_run or not undo:
        return {"dry_run": ctx.dry_run, "failed_back": None}
    from mpac_drill.aws import client

    mod = _aws_dr()
    t = ctx.target
    dr = regions(t)[1]
    done: dict[str, Any] = {}
    if undo.get("record"):
        change = undo["record"]
        done["record"] = mod.restore_record(t, change)
        ctx.undo_update("route53-record", state="done")
        ctx.cleaned_up("Route53 record", change["record"], done["record"])
    for param, old, shape in reversed(undo.get("parameters") or []):
        written = mod.put_parameter(t, param, old, like=shape)
        done.setdefault("parameters", []).append(param)
        ctx.undo_update(f"ssm:{param}", state="done")
        ctx.cleaned_up(
            "SSM parameter",
            written["name"],
            f"previous value written back as {shape['type']} (version {written['version']})",
            region=written["region"],
        )
    if undo.get("restored_instance"):
        answer = client("rds", t, region=dr).delete_db_instance(
            DBInstanceIdentifier=undo["restored_instance"],
            SkipFinalSnapshot=True,
            DeleteAutomatedBackups=True,
        )
        done["deleted"] = undo["restored_instance"]
        ctx.undo_update("restored-instance", state="done")
        status = answer.get("DBInstance", {}).get("DBInstanceStatus", "?")
        ctx.cleaned_up(
            "restored DB instance",
            undo["restored_instance"],
            f"DeleteDBInstance sent; status {status} when the drill ended",
            region=dr,
        )
    return {"failed_back": done}


__all__ = [
    "Procedure",
    "open_front_door",
    "close_front_door",
    "lose_region",
    "fail_over_to_dr",
    "fail_back",
    "NOT_BUILT",
]
