"""DR readiness on AWS, the DR side (part of ``mpac-drill check``; see ``readiness.py``).

§1.4/§1.5 **RPO readiness**: the newest snapshot (or automated-backup replica) of each
database held in the DR region. Its age is the data a region loss would cost now (finding
F3: automated backups are regional). Then the SSM parameters the DR procedure rewrites,
the Route53 zone and record, the stop and detection alarms, §1.6 the Loki/Tempo buckets,
and the caller's permissions for every drill's calls (IAM policy simulation; where the
account does not allow it, "not checked", never "pass").
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from botocore.parsers import ResponseParserError

from mpac_drill.aws import AwsCallFailed
from mpac_drill.platform.aws.readiness import Clients, age_s, chunks, could_not
from mpac_drill.readiness.rows import (
    ALL,
    CheckRow,
    Status,
    Thresholds,
    detection_alarms,
    duration,
    judge_max,
    row,
)

#: Which database each region drill restores in the DR region.
_DR_DATABASES = {"region-failover": ("smartpos", "1.4"), "pgw-region-failover": ("pgw", "1.5")}
#: The SSM parameters each region drill's procedure rewrites (target keys under ``ssm``).
_DR_PARAMETERS = {
    "region-failover": ("1.4", ["database_url"]),
    "pgw-region-failover": ("1.5", ["pgw_base_url", "pgw_database_url"]),
}
#: The IAM actions each drill's fault, rollback and measurements call on AWS (its plan).
#: Every AWS call a drill makes, as IAM actions, by scenario: its dry-run plan (kept complete
#: by tests/aws/test_permissions_plan.py, which runs every dry run on staging) plus the
#: reads a real run adds where a dry run skips its waits (the fault's effect, events,
#: the recovery's reads, the DR procedure's undo).
_DRILL_ACTIONS = {
    "ecs-task-failure": [
        "cloudwatch:DescribeAlarms",
        "ecs:DescribeClusters",
        "ecs:DescribeServices",
        "ecs:ListTasks",
        "ecs:StopTask",
        "ecs:DescribeTasks",  # the fault's effect: the stopped tasks left RUNNING
    ],
    "rds-failover": [
        "cloudwatch:DescribeAlarms",
        "rds:DescribeDBInstances",
        "rds:RebootDBInstance",
        "rds:DescribeDBClusters",
        "rds:FailoverDBCluster",
        "rds:DescribeEvents",  # the failover's evidence
        "ssm:DescribeParameters",
        "ssm:GetParameter",  # the canary's DSN
    ],
    "redis-failover": [
        "cloudwatch:DescribeAlarms",
        "elasticache:DescribeReplicationGroups",
        "elasticache:TestFailover",
        "elasticache:DescribeEvents",
    ],
    "rds-pitr": [
        "rds:DescribeDBInstances",
        "rds:RestoreDBInstanceToPointInTime",
        "rds:DeleteDBInstance",
    ],
    "region-failover": [
        "cloudwatch:DescribeAlarms",  # its Route53 health-check alarm (us-east-1)
        "ecs:UpdateService",
        "rds:DescribeDBSnapshots",
        "rds:RestoreDBInstanceFromDBSnapshot",
        "rds:DescribeDBInstances",
        "rds:DeleteDBInstance",  # the fail-back
        "route53:GetHostedZone",
        "route53:ListResourceRecordSets",
        "route53:ChangeResourceRecordSets",
        "ssm:DescribeParameters",
        "ssm:GetParameter",
        "ssm:GetParameterHistory",  # mpac-drill recover puts the previous version back
        "ssm:PutParameter",
    ],
    "pgw-region-failover": [
        "cloudwatch:DescribeAlarms",  # its Route53 health-check alarm (us-east-1)
        "ecs:UpdateService",
        "rds:DescribeDBSnapshots",
        "rds:RestoreDBInstanceFromDBSnapshot",
        "rds:DescribeDBInstances",
        "rds:DeleteDBInstance",
        "route53:GetHostedZone",
        "route53:ListResourceRecordSets",
        "route53:ChangeResourceRecordSets",
        "ssm:DescribeParameters",
        "ssm:GetParameter",
        "ssm:GetParameterHistory",
        "ssm:PutParameter",
    ],
    "obs-failure": [
        "ecs:DescribeClusters",
        "ecs:DescribeServices",
        "ecs:DescribeTasks",
        "ecs:ListTasks",
        "ecs:StopTask",
        "s3:GetBucketLocation",
        "s3:ListBucket",  # HeadBucket, ListObjectsV2
        "s3:GetObject",
    ],
}

#: API operations whose IAM action has another name.
IAM_ACTION_OF = {
    "s3:HeadBucket": "s3:ListBucket",
    "s3:ListObjectsV2": "s3:ListBucket",
    "s3:HeadObject": "s3:GetObject",
}


def drill_actions(scenario: str) -> list[str]:
    """The IAM actions ``scenario``'s drill needs (empty for a scenario without AWS calls)."""
    return list(_DRILL_ACTIONS.get(scenario, []))


def _dr_data_age(clients: Clients, th: Thresholds, scenarios: set[str]) -> list[CheckRow]:
    rows = []
    for scenario, (db, section) in _DR_DATABASES.items():
        source = clients.target.get(f"rds.{db}.identifier")
        if scenario not in scenarios or not source:
            continue
        try:
            rows.append(_data_age(clients, th, scenario, section, db, str(source)))
        except AwsCallFailed as exc:
            rows.append(could_not(f"dr.{db}", scenario, section, str(source), str(exc)))
    return rows


def _data_age(
    clients: Clients, th: Thresholds, scenario: str, section: str, db: str, source: str
) -> CheckRow:
    region = clients.dr_region
    rds = clients("rds", region)
    newest: tuple[datetime, str] | None = None
    pages = rds.get_paginator("describe_db_snapshots").paginate(DBInstanceIdentifier=source)
    for page in pages:
        for s in page.get("DBSnapshots", []):
            when = _data_time(s)
            if s.get("Status") == "available" and when and (not newest or when > newest[0]):
                newest = (when, f"snapshot {s['DBSnapshotIdentifier']} ({_data_field(s)})")
    replicas = rds.describe_db_instance_automated_backups(DBInstanceIdentifier=source)
    for b in replicas.get("DBInstanceAutomatedBackups", []):
        when = b.get("RestoreWindow", {}).get("LatestTime")
        if isinstance(when, datetime) and (not newest or when > newest[0]):
            newest = (when, "automated backup replica (RestoreWindow.LatestTime)")
    limit = th.rpo_of(scenario)
    args = (f"dr.{db}.data_age", scenario, section, "DR data age: the RPO a region loss costs now")
    where = f"rds DescribeDBSnapshots/DescribeDBInstanceAutomatedBackups {source} in {region}"
    fix = (
        f"copy every snapshot of {source} to {region} (aws rds copy-db-snapshot) or "
        "replicate automated backups there (start-db-instance-automated-backups-replication)"
    )
    if newest is None:
        return row(
            *args,
            f"{source} in {region}",
            "fail",
            measured="no data in the DR region",
            threshold=f"≤ {duration(limit)}",
            evidence=f"{where}: none available",
            fix=fix,
        )
    age = age_s(newest[0]) or 0.0
    return row(
        *args,
        f"{source} in {region}",
        judge_max(age, limit, th.warn_share),
        measured=duration(age),
        value=age,
        threshold=f"≤ {duration(limit)}",
        evidence=f"{where}: newest {newest[1]}",
        fix=fix,
    )


def _data_time(snapshot: dict[str, Any]) -> datetime | None:
    for key in ("SnapshotDatabaseTime", "OriginalSnapshotCreateTime", "SnapshotCreateTime"):
        if isinstance(snapshot.get(key), datetime):
            return snapshot[key]  # type: ignore[no-any-return]
    return None


def _data_field(snapshot: dict[str, Any]) -> str:
    return next(
        k
        for k in ("SnapshotDatabaseTime", "OriginalSnapshotCreateTime", "SnapshotCreateTime")
        if isinstance(snapshot.get(k), datetime)
    )


def _parameters(clients: Clients, th: Thresholds, scenarios: set[str]) -> list[CheckRow]:
    region, wanted = clients.dr_region, []
    rows: list[CheckRow] = []
    for scenario, (section, keys) in _DR_PARAMETERS.items():
        for key in keys if scenario in scenarios else []:
            name = clients.target.get(f"ssm.{key}")
            if name:
                wanted.append((scenario, section, key, str(name)))
            else:
                rows.append(
                    row(
                        f"ssm.{key}",
                        scenario,
                        section,
                        "SSM parameter exists (DR)",
                        f"ssm.{key}",
                        "not checked",
                        evidence=f"the target sets no ssm.{key}",
                        fix=f"set ssm.{key} in the target",
                    )
                )
    found: set[str] = set()
    ssm = clients("ssm", region)
    for part in chunks(sorted({w[3] for w in wanted}), 50):
        answer = ssm.describe_parameters(
            ParameterFilters=[{"Key": "Name", "Option": "Equals", "Values": part}]
        )
        found |= {str(p["Name"]) for p in answer.get("Parameters", [])}
    for scenario, section, key, name in wanted:
        rows.append(
            row(
                f"ssm.{key}",
                scenario,
                section,
                "SSM parameter exists (DR)",
                name,
                "pass" if name in found else "fail",
                measured="exists" if name in found else "missing",
                threshold="exists",
                evidence=f"ssm DescribeParameters Name={name} in {region}",
                fix=f"create {name} in {region} before the drill needs it",
            )
        )
    return rows


def _route53(clients: Clients, th: Thresholds, scenarios: set[str]) -> list[CheckRow]:
    zone = clients.target.get("route53.hosted_zone_id")
    record = clients.target.get("route53.record")
    args = ("route53.record", "region-failover", "1.4", "front-door zone and record exist")
    if not zone or not record:
        unset = "route53.hosted_zone_id" if not zone else "route53.record"
        return [
            row(
                *args,
                unset,
                "not checked",
                evidence=f"the target sets no {unset}",
                fix=f"set {unset} in the target",
            )
        ]
    zone_id = str(zone).rsplit("/", 1)[-1]
    route53 = clients("route53")
    try:
        route53.get_hosted_zone(Id=zone_id)
    except AwsCallFailed as exc:
        if "NoSuchHostedZone" not in exc.code:
            raise
        return [
            row(
                *args,
                zone_id,
                "fail",
                measured="zone missing",
                evidence=f"route53 GetHostedZone {zone_id}: NoSuchHostedZone",
                fix="check route53.hosted_zone_id in the target",
            )
        ]
    name = str(record).rstrip(".") + "."
    sets = route53.list_resource_record_sets(
        HostedZoneId=zone_id, StartRecordName=name, MaxItems="1"
    ).get("ResourceRecordSets", [])
    there = bool(sets) and str(sets[0].get("Name", "")).lower() == name.lower()
    return [
        row(
            *args,
            f"{zone_id} {name}",
            "pass" if there else "fail",
            measured=f"{sets[0].get('Type')} record" if there else "record missing",
            threshold="exists",
            evidence=f"route53 ListResourceRecordSets {zone_id} StartRecordName={name}",
            fix=f"create {name} in zone {zone_id} (the record §1.4 switches)",
        )
    ]


def _alarms(clients: Clients, th: Thresholds, scenarios: set[str]) -> list[CheckRow]:
    from mpac_drill.platform.aws.detection import regions_of

    stop = [str(a) for a in clients.target.get("stop.cloudwatch_alarms") or []]
    detect = detection_alarms(scenarios)  # the catalog's detection (runbook "Detection")
    for extra in th.detection_alarms:  # a target's own (readiness.detection_alarms)
        detect.setdefault(extra, (ALL, "3"))
    names = sorted(set(stop) | set(detect))
    found: dict[str, dict[str, Any]] = {}
    home = str(clients.target.require("aws.region"))
    where: dict[str, str] = {}
    for region, part_names in regions_of(clients.target, names).items():  # Route53: us-east-1
        cloudwatch = clients("cloudwatch", None if region == home else region)
        where.update(dict.fromkeys(part_names, region))
        for part in chunks(part_names, 100):
            answer = cloudwatch.describe_alarms(
                AlarmNames=part, AlarmTypes=["MetricAlarm", "CompositeAlarm"]
            )
            for kind in ("MetricAlarms", "CompositeAlarms"):
                found.update({str(a["AlarmName"]): a for a in answer.get(kind, [])})
    rows = []
    for name in names:
        alarm, is_stop = found.get(name), name in stop
        scenario, section = (ALL, "5") if is_stop else detect[name]
        acts = len((alarm or {}).get("AlarmActions", []))
        status: Status = "fail" if alarm is None else "pass" if acts or is_stop else "warn"
        rows.append(
            row(
                f"alarm.{name}",
                scenario,
                section,
                "stop-condition alarm exists"
                if is_stop
                else "detection alarm exists and pages someone",
                name,
                status,
                measured="missing"
                if alarm is None
                else f"{alarm.get('StateValue')}, {acts} action(s)",
                threshold="exists" if is_stop else "exists with ≥ 1 action",
                evidence=f"cloudwatch DescribeAlarms {name} AlarmActions"
                + ("" if where[name] == home else f" (in {where[name]})"),
                fix=f"create alarm {name} (with an SNS action to the on-call)",
            )
        )
    return rows


def _buckets(clients: Clients, th: Thresholds, scenarios: set[str]) -> list[CheckRow]:
    buckets = clients.target.get("obs.buckets")
    args = ("obs-failure", "1.6", "history bucket exists and is readable")
    if not isinstance(buckets, dict) or not buckets:
        return [
            row(
                "obs.buckets",
                *args,
                "obs.buckets",
                "not checked",
                evidence="the target sets no obs.buckets",
                fix="set obs.buckets",
            )
        ]
    s3, rows = clients("s3"), []
    for role, name in buckets.items():
        if not name:
            rows.append(
                row(
                    f"obs.{role}",
                    *args,
                    f"obs.buckets.{role}",
                    "not checked",
                    evidence=f"the target sets no obs.buckets.{role}",
                    fix=f"set obs.buckets.{role}",
                )
            )
            continue
        try:
            listed = s3.list_objects_v2(Bucket=str(name), MaxKeys=1)
            ok, measured = True, f"readable, {'objects' if listed.get('KeyCount') else 'empty'}"
        except AwsCallFailed as exc:
            if exc.code not in ("NoSuchBucket", "AccessDenied", "403", "404"):
                raise
            ok, measured = False, exc.code
        rows.append(
            row(
                f"obs.{role}",
                *args,
                str(name),
                "pass" if ok else "fail",
                measured=measured,
                threshold="exists, ListBucket allowed",
                evidence=f"s3 ListObjectsV2 {name} MaxKeys=1",
                fix=f"restore bucket {name} or grant s3:ListBucket/GetObject on it",
            )
        )
    return rows


def _dashboards(clients: Clients, th: Thresholds, scenarios: set[str]) -> list[CheckRow]:
    """§1.6: the repo's dashboards are provisioned in Grafana (``obs.grafana_url``), each
    with its file's title and panel count, read with the token of
    ``obs.grafana_token_ssm_parameter`` when set (kept in memory only)."""
    from mpac_drill.grafana import check_dashboards, dashboard_files
    from mpac_drill.platform.aws.obs import grafana_token

    url = clients.target.get("obs.grafana_url")
    args = ("obs-failure", "1.6", "dashboards provisioned in Grafana")
    if not url:
        return [
            row(
                "obs.dashboards",
                *args,
                "obs.grafana_url",
                "not checked",
                evidence="the target sets no obs.grafana_url",
                fix="set obs.grafana_url",
            )
        ]
    token = grafana_token(clients.target, dry_run=clients.dry_run)
    expected = dashboard_files()
    if clients.dry_run is not None:  # the GETs are planned, not sent
        return [
            row(
                "obs.dashboards",
                *args,
                str(url),
                "not checked",
                measured="planned",
                evidence=f"GET {url}/api/dashboards/uid/<uid> for {len(expected)} dashboard(s)",
            )
        ]
    found = check_dashboards(str(url), expected, token=token, timeout_s=5)
    missing = found["missing_uids"]
    return [
        row(
            "obs.dashboards",
            *args,
            str(url),
            "fail" if missing else "pass",
            measured=f"{found['dashboards_provisioned']} of {found['dashboards_expected']}",
            value=found["dashboards_provisioned"],
            threshold=f"all {found['dashboards_expected']} (observability/dashboards/*.json)",
            evidence="Grafana GET /api/dashboards/uid/<uid>: "
            + "; ".join(f"{d['uid']} {d['detail']}" for d in found["dashboards"]),
            fix=f"provision {', '.join(missing)} (make deploy-obs)" if missing else None,
        )
    ]


def _permissions(clients: Clients, th: Thresholds, scenarios: set[str]) -> list[CheckRow]:
    actions = sorted({a for s in scenarios for a in _DRILL_ACTIONS.get(s, [])})
    args = ("permissions", ALL, "5", "the caller may make every call of the drills' plans")
    if not actions:
        return []
    caller = str(clients("sts").get_caller_identity().get("Arn", ""))
    # a dry run's canned identity is empty: the plan shows the call with a placeholder
    principal = _principal(caller) or "arn:aws:iam::000000000000:role/UNSET.caller"
    try:
        answer = clients("iam").simulate_principal_policy(
            PolicySourceArn=principal, ActionNames=actions
        )
    except (AwsCallFailed, ResponseParserError) as exc:  # moto: 500, not implemented
        code = getattr(exc, "code", type(exc).__name__)
        return [
            row(
                *args,
                principal,
                "not checked",
                measured=None,
                threshold=f"{len(actions)} action(s) allowed",
                evidence=f"iam SimulatePrincipalPolicy unavailable: {code}",
                fix="allow iam:SimulatePrincipalPolicy for the check's role to verify",
            )
        ]
    denied = sorted(
        str(r["EvalActionName"])
        for r in answer.get("EvaluationResults", [])
        if r.get("EvalDecision") != "allowed"
    )
    return [
        row(
            *args,
            principal,
            "fail" if denied else "pass",
            measured=f"{len(actions) - len(denied)} of {len(actions)} allowed",
            value=len(denied),
            threshold=f"{len(actions)} allowed",
            evidence="iam SimulatePrincipalPolicy EvaluationResults[].EvalDecision"
            + (f": denied {', '.join(denied)}" if denied else ""),
            fix="grant the drill role the denied actions",
        )
    ]


def _principal(arn: str) -> str:
    """The IAM role or user behind an STS caller ARN (an assumed role → its role)."""
    if ":assumed-role/" in arn:
        account = arn.split(":")[4]
        return f"arn:aws:iam::{account}:role/{arn.split(':assumed-role/')[1].split('/')[0]}"
    return arn


#: (name, scenarios, section, group): the DR-side groups ``readiness.check`` runs.
GROUPS = [
    ("dr", set(_DR_DATABASES), "1.4", _dr_data_age),
    ("ssm", set(_DR_PARAMETERS), "1.4", _parameters),
    ("route53", {"region-failover"}, "1.4", _route53),
    ("alarms", {"all"}, "5", _alarms),
    ("obs", {"obs-failure"}, "1.6", _buckets),
    ("grafana", {"obs-failure"}, "1.6", _dashboards),
    ("permissions", {"all"}, "5", _permissions),
]

__all__ = ["GROUPS"]
