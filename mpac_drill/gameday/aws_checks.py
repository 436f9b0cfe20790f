"""A game day's checks on an AWS target: read-only calls through the project's one client
factory (``mpac_drill.aws.client``), so moto and dry runs work, telling the harness when a
step the team performed by hand (the plan's AWS CLI commands) took effect.

- ``front_door_region``: the Route53 record ``route53.record`` in ``route53.hosted_zone_id``
  now points at ``route53.dr_dns_name`` (the DR load balancer);
- ``parameter``: the SSM parameter ``ssm.<name>`` in the DR region differs from its value
  when the game day started (the baseline);
- ``dr_event`` ``dr: rds restored``: the DR instance ``<rds.smartpos.identifier>-dr`` in the
  DR region is ``available``; ``instance_available`` the same for a named instance (the one
  the harness restored, for a step it performed).

Other checks (users failing or served, the DR services and cache) are answered by the walk
(``aws_walk.py``) or "not checked" there; ``seen`` answers None for them.
"""

from __future__ import annotations

import time
from typing import Any

from mpac_drill.aws import AwsCallFailed, client
from mpac_drill.config import Target
from mpac_drill.errors import UsageError

CHECKED = ("front_door_region", "parameter", "dr_event:dr: rds restored")


class AwsChecks:
    """Each ``seen`` returns the wall-clock instant the effect was first seen, or None."""

    def __init__(self, target: Target) -> None:
        if target.kind != "aws":
            raise UsageError(f"target {target.name!r} is not an aws target")
        self.target = target
        self.dr_region = str(target.require("aws.dr_region"))
        self.baseline: dict[str, str | None] = {}
        self.first_seen: dict[str, float] = {}

    def start(self, parameters: tuple[str, ...] = ("database_url",)) -> None:
        """Read the parameters' values before the team changes them."""
        for key in parameters:
            self.baseline[key] = self._parameter(key)

    def seen(self, kind: str, arg: str = "") -> float | None:
        key = f"{kind}:{arg}"
        if key in self.first_seen:
            return self.first_seen[key]
        if kind == "front_door_region":
            ok = self.record_points_at_dr()
        elif kind == "parameter":
            ok = self.parameter_changed(arg)
        elif kind == "dr_event" and arg == "dr: rds restored":
            ok = self.restored_available()
        elif kind == "instance_available":
            ok = self.restored_available(arg)
        else:
            return None  # not checked on AWS
        if ok:
            self.first_seen[key] = time.time()
            return self.first_seen[key]
        return None

    def record_points_at_dr(self) -> bool:
        zone = str(self.target.require("route53.hosted_zone_id")).rsplit("/", 1)[-1]
        name = str(self.target.require("route53.record")).rstrip(".") + "."
        want = str(self.target.require("route53.dr_dns_name")).rstrip(".")
        got = client("route53", self.target).list_resource_record_sets(
            HostedZoneId=zone, StartRecordName=name, MaxItems="1"
        )
        for rset in got.get("ResourceRecordSets", []):
            if rset.get("Name") == name:
                values = [r["Value"].rstrip(".") for r in rset.get("ResourceRecords", [])]
                alias = (rset.get("AliasTarget") or {}).get("DNSName", "").rstrip(".")
                return want in values or alias == want
        return False

    def _parameter(self, key: str) -> str | None:
        name = str(self.target.require(f"ssm.{key}"))
        ssm = client("ssm", self.target, region=self.dr_region)
        try:
            return str(ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"])
        except AwsCallFailed as exc:
            if exc.code == "ParameterNotFound":
                return None
            raise

    def parameter_changed(self, name: str) -> bool:
        key = name.lower()
        if key not in self.baseline:
            raise UsageError(f"parameter {name}: no baseline (AwsChecks.start first)")
        now = self._parameter(key)
        return now is not None and now != self.baseline[key]

    def restored_available(self, ident: str = "") -> bool:
        ident = ident or f"{self.target.require('rds.smartpos.identifier')}-dr"
        rds = client("rds", self.target, region=self.dr_region)
        try:
            got: dict[str, Any] = rds.describe_db_instances(DBInstanceIdentifier=ident)
        except AwsCallFailed as exc:
            if exc.code in ("DBInstanceNotFound", "DBInstanceNotFoundFault"):
                return False
            raise
        return any(i.get("DBInstanceStatus") == "available" for i in got["DBInstances"])


__all__ = ["AwsChecks", "CHECKED"]
