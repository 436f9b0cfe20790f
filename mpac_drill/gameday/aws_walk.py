"""A game day on an AWS target: what the walk (``walk.py``) does differently there.

The primary region is *declared* lost (``platform/aws/region.py``: nothing in it is
touched), so users never fail and the procedure is the outage, as in the automated drill.

- **Automated steps** run the automated drill's own code (``Procedure`` in
  ``platform/aws/region.py``), so one description of each AWS call serves both:

  - detect region loss, activate DR stack: nothing (the region is declared lost; the DR
    stack is provisioned ahead, as the automated drill assumes);
  - restore (PGW) snapshot with WAL: the newest snapshot in the DR region, restored;
  - update DATABASE_URL / PGW_BASE_URL (SSM): PutParameter (§1.5: also the DR PGW's
    DATABASE_URL), pointing at the instance the harness restored or the team's;
  - restart services: a forced new deployment of each service;
  - switch Route53 record: ChangeResourceRecordSets to ``route53.dr_dns_name``;
  - verify health: the target's endpoints until all answer.

- **Manual steps** are done by the team with the plan's AWS CLI commands; the harness
  only reads (``aws_checks.py``): the record, the parameter against its value at the start,
  the restored instance ``<rds.<db>.identifier>-dr`` (or the one the harness restored)
  available, the endpoints answering. A check AWS cannot answer (the DR cache and tasks,
  users failing in a region only declared lost) is *not checked*: the step is timed by its
  confirmation alone and says so.
- **Fail-back** undoes the team's changes as it undoes the harness's: the record set and
  the parameters as they were when the game day started, the instance they restored
  (only if it did not exist then). Each is recorded write-ahead in ``inflight.json`` at
  the start, so ``mpac-drill recover`` puts them back after a harness death; those undo
  steps are conditional (the record only while it points at the DR load balancer, a
  parameter only while the version after the start is the newest).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from chaoslib.exceptions import ActivityFailed

from mpac_drill.aws import AwsCallFailed, client
from mpac_drill.drill.context import DrillContext
from mpac_drill.gameday.aws_checks import AwsChecks
from mpac_drill.gameday.plan import Plan, Step
from mpac_drill.measure.observer import probe_http
from mpac_drill.platform.aws import recover
from mpac_drill.platform.aws.dr_cutover import RecordChange, read_record_set
from mpac_drill.platform.aws.region import PGW_DB_STEP, Procedure

#: ``Checks.seen`` answer for a check this target cannot answer.
NOT_CHECKED = -1.0


def _db(plan: Plan) -> str:
    return "pgw" if plan.scenario.startswith("pgw") else "smartpos"


def _parameters(plan: Plan) -> list[str]:
    """The SSM parameter keys (``ssm.<key>``) the plan's steps change."""
    keys = [s.check.arg.lower() for s in plan.steps if s.check and s.check.kind == "parameter"]
    if _db(plan) == "pgw":
        keys.append("pgw_database_url")
    return keys


class AwsWalk:
    """The AWS side of a game day: the steps the harness performs, the checks it reads,
    and the undo of the team's changes."""

    def __init__(self, ctx: DrillContext, plan: Plan, manual: set[int], timeout_s: float):
        self.ctx, self.plan, self.manual = ctx, plan, manual
        self.system = _db(plan)
        self.proc = Procedure(ctx, timeout_s, self.system)
        self.checks = AwsChecks(ctx.target)
        self.ident = f"{ctx.target.require(f'rds.{self.system}.identifier')}-dr"
        self.params = _parameters(plan)
        self.baseline: dict[str, Any] = {}

    # -- start: the state the team's changes are undone to
    def start(self) -> None:
        t, dr = self.ctx.target, self.proc.dr
        self.params = [k for k in self.params if t.get(f"ssm.{k}") not in (None, "")]
        self.checks.start(tuple(self.params))
        for key in self.params:
            old, shape = self.proc.mod.describe_parameter(t, key)
            if old is not None and shape is not None:
                self.baseline[f"ssm:{key}"] = (key, old, shape)  # in memory only
                self.ctx.undo_add(recover.parameter_step(t, key))
        planned = self._record_baseline()
        if planned is not None:
            self.baseline["record"] = planned
            self.ctx.undo_add(recover.record_step(planned))
        if not self._instance_exists(self.ident):
            self.baseline["instance_absent"] = True
            self.ctx.undo_add(recover.instance_step(self.ident, dr))

    def _record_baseline(self) -> RecordChange | None:
        t = self.ctx.target
        dns = t.get("route53.dr_dns_name")
        if not dns or not t.get("route53.record") or not t.get("route53.hosted_zone_id"):
            return None
        zone = str(t.require("route53.hosted_zone_id")).rsplit("/", 1)[-1]
        record = str(t.require("route53.record"))
        previous_set = read_record_set(client("route53", t), zone, record, "CNAME")
        return RecordChange(
            hosted_zone_id=zone,
            record=record,
            record_type="CNAME",
            ttl=60,
            to_dns_name=str(dns),
            previous=[r["Value"] for r in (previous_set or {}).get("ResourceRecords", [])],
            previous_set=previous_set,
            change_id=None,
            status=None,
            dry_run=False,
        )

    def _instance_exists(self, ident: str) -> bool:
        rds = client("rds", self.ctx.target, region=self.proc.dr)
        try:
            return bool(rds.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"])
        except AwsCallFailed as exc:
            if exc.code in ("DBInstanceNotFound", "DBInstanceNotFoundFault"):
                return False
            raise

    # -- automated steps
    def actions(self, step: Step) -> list[tuple[str, Callable[[dict[str, str]], None]]]:
        p = self.proc
        name = step.name
        if name.startswith("restore"):
            return [("newest snapshot", p.find_snapshot), ("restore", p.restore)]
        if name.startswith("update ") and name.endswith("(SSM)"):
            out: list[tuple[str, Callable[[dict[str, str]], None]]] = [("", self._their_restore)]
            out += [(f"update {p.param.upper()}", p.update_parameter)]
            if self.system == "pgw":
                out.append((PGW_DB_STEP, p.update_pgw_database_url))
            return out
        if name == "restart services":
            return [("restart", p.restart)]
        if name == "switch Route53 record":
            return [("switch", p.switch)]
        if name == "verify health":
            return [("verify", p.verify)]
        return []  # detect region loss, activate DR stack: nothing to call

    def _their_restore(self, d: dict[str, str]) -> None:
        """The team restored the instance by hand: the automated parameter step points the
        services at theirs (``<rds.<db>.identifier>-dr``)."""
        needed = self.system != "pgw" or "pgw_database_url" in self.params
        if self.proc.restored is not None or not needed:
            return
        rds = client("rds", self.ctx.target, region=self.proc.dr)
        try:
            found = rds.describe_db_instances(DBInstanceIdentifier=self.ident)["DBInstances"]
        except AwsCallFailed as exc:
            if exc.code in ("DBInstanceNotFound", "DBInstanceNotFoundFault"):
                raise ActivityFailed(
                    f"{self.ident} not found in {self.proc.dr}: restore it first (step "
                    "'restore snapshot'), then this step"
                ) from None
            raise
        inst = found[0]
        ep = inst.get("Endpoint") or {}
        self.proc.restored = {
            "identifier": self.ident,
            "endpoint_address": ep.get("Address", ""),
            "endpoint_port": ep.get("Port"),
            "available": inst.get("DBInstanceStatus") == "available",
        }
        d["detail"] = f"the team's {self.ident}"

    def perform(self, step: Step) -> list[str]:
        """Run the automated step ``step``; what it did, one line per call."""
        did: list[str] = []
        for label, act in self.actions(step):
            if self.ctx.dry_run:
                did.append(f"{label}: dry run")
                continue
            d = {"detail": ""}
            act(d)
            if label or d["detail"]:
                did.append(f"{label or 'found'}: {d['detail']}")
        return did or ["nothing for the harness to call on AWS"]

    # -- checks
    def seen(self, step: Step) -> float | None:
        """When the step's effect was first seen; ``NOT_CHECKED`` when AWS cannot tell."""
        c = step.check
        if c is None or c.kind == "users_failing":
            return NOT_CHECKED  # the region is declared lost: users never fail
        if c.kind == "users_served":
            ok = all(probe_http(u, 2.0)[0] for u in self.ctx.endpoints().values())
            return time.time() if ok else None
        if c.kind == "dr_event" and c.arg == "dr: rds restored":
            restored = self.proc.restored
            ident = restored["identifier"] if restored else self.ident
            return self.checks.seen("instance_available", ident)
        if c.kind == "dr_event":
            return NOT_CHECKED
        return self.checks.seen(c.kind, c.arg)

    # -- fail-back of the team's changes
    def adopt_manual_changes(self) -> list[str]:
        """Hand the team's changes to ``fail_back`` (``ctx.handles.region_undo``): those the
        harness made itself are there already. A change that cannot be read is named (its
        write-ahead undo step stays for ``mpac-drill recover``)."""
        if self.ctx.handles.region_undo is None:
            self.ctx.handles.region_undo = {}
        undo = self.ctx.handles.region_undo
        adopted: list[str] = []
        for what, adopt in (
            ("SSM", self._adopt_parameters),
            ("Route53", self._adopt_record),
            ("RDS", self._adopt_instance),
        ):
            try:
                adopted += adopt(undo)
            except Exception as exc:  # noqa: BLE001 - the others still get their turn
                adopted.append(f"{what}: NOT read ({' '.join(str(exc).split())[:200]})")
        return adopted

    def _adopt_parameters(self, undo: dict[str, Any]) -> list[str]:
        t = self.ctx.target
        done = {p for p, _, _ in undo.get("parameters", [])}
        out = []
        for key in self.params:
            if f"ssm:{key}" not in self.baseline or key in done:
                continue
            param, old, shape = self.baseline[f"ssm:{key}"]
            now, _ = self.proc.mod.describe_parameter(t, param)
            if now is not None and now != old:
                undo.setdefault("parameters", []).append((param, old, shape))
                out.append(f"SSM {t.require(f'ssm.{param}')}")
        return out

    def _adopt_record(self, undo: dict[str, Any]) -> list[str]:
        if "record" not in self.baseline or "record" in undo:
            return []
        if not self.checks.record_points_at_dr():
            return []
        undo["record"] = self.baseline["record"]
        return [f"Route53 {self.baseline['record']['record']}"]

    def _adopt_instance(self, undo: dict[str, Any]) -> list[str]:
        if not self.baseline.get("instance_absent") or "restored_instance" in undo:
            return []
        if not self._instance_exists(self.ident):
            return []
        undo["restored_instance"] = self.ident
        return [f"RDS {self.ident}"]

    def finish(self) -> None:
        """The procedure is the outage (users never saw the primary go down)."""
        assert self.ctx.injected_mono is not None
        self.ctx.record.procedure_rto_s = round(time.monotonic() - self.ctx.injected_mono, 4)


__all__ = ["AwsWalk", "NOT_CHECKED"]
