"""After the harness died mid-drill on AWS: the undo plan and its recovery.

The undo steps are recorded before each change (``inflight.json``, never a secret):

- the Route53 record: the whole record set as it was (public DNS data), put back only
  while the record still points where the drill put it;
- an SSM parameter: its name and the version before the drill's write; recovery reads that
  version's value from the parameter's history (GetParameterHistory) and writes it back
  like it was (type, KMS key, tier), only while the drill's version is still the newest;
- a restored (DR) or point-in-time instance: deleted (no final snapshot);
- the canary's rows of the run: deleted through the DSN of ``database.dsn_ssm_parameter``.

Stopped ECS tasks, an RDS or ElastiCache failover heal by themselves: nothing to undo.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from mpac_drill.aws import AwsCallFailed, client
from mpac_drill.config import Target
from mpac_drill.drill.inflight import NOTHING, PENDING, StepOutcome, UndoStep
from mpac_drill.platform.aws import canary, dr, pitr
from mpac_drill.platform.aws.dr_cutover import ParameterShape, RecordChange, read_record_set

if TYPE_CHECKING:
    from mpac_drill.drill.context import DrillContext

RECORD = "route53-record"
RESTORED = "restored-instance"
PITR = "pitr-instance"
CANARY = "canary-rows"
SELF_HEALING = "self-healing"
_DELETE_WAIT_S = 600.0
_POLL_S = 5.0


# ---------------------------------------------------------------- the plan


def undo_plan(ctx: DrillContext, action: str) -> list[UndoStep]:
    """At the injection: what AWS heals itself, and the canary's rows to purge."""
    plan: list[UndoStep] = []
    if not action.startswith(("region:", "rds:RestoreDBInstanceToPointInTime")):
        plan.append(
            UndoStep(
                id=SELF_HEALING,
                what=action,
                how="nothing: AWS replaces stopped tasks and completes a failover itself",
                resources=list(ctx.fault.get("resources", [])),
                state=NOTHING,
            )
        )
    name = canary.dsn_parameter(ctx.target)
    if ctx.canary is not None and name:
        plan.append(
            UndoStep(
                id=CANARY,
                what="canary rows",
                how=f"DELETE FROM canary WHERE run_id = '{ctx.run_id}' through the DSN in {name}",
                resources=[ctx.run_id],
                state=PENDING,
            )
        )
    return plan


def record_step(change: RecordChange) -> UndoStep:
    return UndoStep(
        id=RECORD,
        what="Route53 record",
        how="UPSERT of the record set as it was (DELETE when there was none), while it still "
        "points at the DR load balancer",
        resources=[
            f"{change['record']} ({change['record_type']}, zone {change['hosted_zone_id']})"
        ],
        state=PENDING,
        data={"change": dict(change)},
    )


def parameter_step(target: Target, name_key: str) -> UndoStep:
    """Before a parameter write: its name, shape and current version (never its value)."""
    name = str(target.require(f"ssm.{name_key}"))
    region = _dr(target)
    meta = _parameter_meta(target, name, region)
    return UndoStep(
        id=f"ssm:{name_key}",
        what="SSM parameter",
        how="write back the value of the version before the drill's (GetParameterHistory), "
        "like it was, while the drill's version is the newest",
        resources=[name],
        state=PENDING,
        region=region,
        data={
            "name_key": name_key,
            "version_before": int(meta["Version"]) if meta and meta.get("Version") else None,
            "version_written": None,
        },
    )


def instance_step(
    identifier: str, region: str, *, step_id: str = RESTORED, db: str = ""
) -> UndoStep:
    return UndoStep(
        id=step_id,
        what="restored DB instance" if step_id == RESTORED else "point-in-time DB instance",
        how="DeleteDBInstance (no final snapshot, automated backups deleted)",
        resources=[identifier],
        state=PENDING,
        region=region,
        data={"db": db} if db else {},
    )


# ---------------------------------------------------------------- recovery


def recover(ctx: DrillContext, plan: list[UndoStep]) -> list[StepOutcome]:
    """Perform the pending steps, newest first (the record, then the parameters, then the
    instances); every step gets its turn, a failed one says why."""
    out: list[StepOutcome] = [
        _outcome(s, s["state"] if s["state"] == NOTHING else "undone by the drill", True)
        for s in plan
        if s["state"] != PENDING
    ]
    for step in reversed([s for s in plan if s["state"] == PENDING]):
        try:
            out.append(_undo(ctx.target, ctx.run_id, step))
        except Exception as exc:  # noqa: BLE001 - the next steps still run
            out.append(_outcome(step, f"NOT done: {' '.join(str(exc).split())}", False))
    return out


def _undo(t: Target, run_id: str, step: UndoStep) -> StepOutcome:
    data: dict[str, Any] = dict(step.get("data") or {})
    if step["id"] == RECORD:
        return _outcome(step, *_undo_record(t, data["change"]))
    if step["id"].startswith("ssm:"):
        return _outcome(step, *_undo_parameter(t, step, data))
    if step["id"] == RESTORED:
        return _outcome(step, *_delete_instance(t, step["resources"][0], step.get("region")))
    if step["id"] == PITR:
        out = pitr.delete_restored_db_instance(
            t, step["resources"][0], db=str(data.get("db") or "smartpos"), poll_s=_POLL_S
        )
        return _outcome(step, f"DeleteDBInstance: {out['status']}", True)
    if step["id"] == CANARY:
        return _outcome(step, *_purge_canary(t, run_id))
    return _outcome(step, f"unknown undo step {step['id']!r}: not done", False)


def _undo_record(t: Target, change: dict[str, Any]) -> tuple[str, bool]:
    found = read_record_set(
        client("route53", t), change["hosted_zone_id"], change["record"], change["record_type"]
    )
    now = [r["Value"] for r in (found or {}).get("ResourceRecords", [])]
    if now == [change["to_dns_name"]]:
        rc = RecordChange(**change)  # type: ignore[typeddict-item]
        return dr.restore_record(t, rc), True
    previous = change.get("previous_set")
    was = [r["Value"] for r in (previous or {}).get("ResourceRecords", [])]
    if (found is None and previous is None) or (found is not None and now == was):
        return "already as it was (the switch never happened)", True
    return f"NOT restored: it points at {', '.join(now) or 'nothing'} now, not the DR", False


def _undo_parameter(t: Target, step: UndoStep, data: dict[str, Any]) -> tuple[str, bool]:
    name, region = step["resources"][0], str(step.get("region") or _dr(t))
    before = data.get("version_before")
    written = data.get("version_written")
    meta = _parameter_meta(t, name, region)
    if meta is None:
        return "NOT restored: the parameter no longer exists", False
    current = int(meta.get("Version") or 0)
    if before is not None and current == int(before):
        return f"unchanged (version {before}): the drill's write never happened", True
    ours = int(written) if written is not None else (int(before) + 1 if before else None)
    ssm = client("ssm", t, region=region)
    history: dict[int, dict[str, Any]] = {}
    for page in ssm.get_paginator("get_parameter_history").paginate(
        Name=name, WithDecryption=True
    ):  # values stay in memory: never logged, never written to a file
        history.update({int(e.get("Version", 0)): e for e in page.get("Parameters", [])})
    old = history.get(int(before)) if before is not None else None
    if old is None:
        return f"NOT restored: version {before} is not in its history", False
    if history.get(current, {}).get("Value") == old.get("Value"):
        return f"already as it was (version {current} holds the value of {before})", True
    if ours is None or current != ours:
        return f"NOT restored: version {current} is not the drill's ({ours})", False
    shape = ParameterShape(
        type=str(old.get("Type", "SecureString")),
        key_id=old.get("KeyId"),
        tier=old.get("Tier"),
        data_type=old.get("DataType"),
        description=old.get("Description"),
    )
    out = dr.put_parameter(t, str(data["name_key"]), str(old["Value"]), region=region, like=shape)
    return f"value of version {before} written back as version {out['version']}", True


def _delete_instance(t: Target, identifier: str, region: str | None) -> tuple[str, bool]:
    rds = client("rds", t, region=region or _dr(t))
    deadline = time.monotonic() + _DELETE_WAIT_S
    while True:
        try:
            answer = rds.delete_db_instance(
                DBInstanceIdentifier=identifier,
                SkipFinalSnapshot=True,
                DeleteAutomatedBackups=True,
            )
        except AwsCallFailed as exc:
            if exc.code == "DBInstanceNotFound":
                return "already gone", True
            if exc.code != "InvalidDBInstanceState" or time.monotonic() > deadline:
                raise
            time.sleep(_POLL_S)
            continue
        status = answer.get("DBInstance", {}).get("DBInstanceStatus", "?")
        return f"DeleteDBInstance sent; status {status}", True


def _purge_canary(t: Target, run_id: str) -> tuple[str, bool]:
    from mpac_drill.measure.canary import Canary

    database = canary.canary_database(t)
    if database is None:
        return "no DSN: rows NOT deleted", False
    n = Canary(dsn=database.dsn, run_id=run_id).purge()
    return f"{n} row(s) deleted", True


def _parameter_meta(t: Target, name: str, region: str) -> dict[str, Any] | None:
    ssm = client("ssm", t, region=region)
    found = ssm.describe_parameters(
        ParameterFilters=[{"Key": "Name", "Option": "Equals", "Values": [name]}]
    ).get("Parameters", [])
    return dict(found[0]) if found else None


def _dr(t: Target) -> str:
    return str(t.require("aws.dr_region"))


def _outcome(step: UndoStep, outcome: str, ok: bool) -> StepOutcome:
    return StepOutcome(
        id=step["id"],
        what=step["what"],
        resource=", ".join(step["resources"]),
        outcome=outcome,
        ok=ok,
    )


__all__ = [
    "CANARY",
    "PITR",
    "RECORD",
    "RESTORED",
    "instance_step",
    "parameter_step",
    "record_step",
    "recover",
    "undo_plan",
]
