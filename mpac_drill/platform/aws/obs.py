"""mpac-obs on AWS (runbook §1.6): history in S3 survives a redeploy, dashboards come from git.

Before the fault :func:`~mpac_drill.platform.aws.obs_history.snapshot_bucket` lists each
history bucket (``obs.buckets``: where Loki and Tempo keep their data); the drill then stops
every task of the ECS service (``actions/ecs.py::stop_tasks``, ``obs.cluster`` /
``obs.service``) and :func:`wait_redeployed` waits, bounded, until ECS runs new tasks.
:func:`~mpac_drill.platform.aws.obs_history.verify_history` lists them again and reads
the first byte of each object listed before (newest first, at most
``obs.read_check_max``): an object missing or unreadable is lost, and RPO runs from the
oldest lost object's LastModified to the fault.
The dashboards are checked through Grafana's API at ``obs.grafana_url``
(:mod:`mpac_drill.grafana`), with the token of the SecureString
``obs.grafana_token_ssm_parameter`` when set (read with decryption, kept in memory only).
A dry run records the same calls and makes none; unset names appear as ``UNSET.obs.<key>``.

Runbook findings: F10 (§1.6 says ECS and EC2 both) and F11 (mpac-obs has no DR region).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypedDict
from urllib.parse import urlsplit

from chaoslib.exceptions import ActivityFailed

from mpac_drill.aws import AwsCallFailed, DryRun, client
from mpac_drill.config import Target
from mpac_drill.errors import UsageError
from mpac_drill.grafana import check_dashboards, dashboard_files, dashboard_urls
from mpac_drill.measure.record import Finding
from mpac_drill.platform.aws.ecs import OBS_SERVICE, ecs_location
from mpac_drill.platform.aws.obs_history import HistoryCheck, snapshot_bucket, verify_history

if TYPE_CHECKING:
    from mpac_drill.drill.context import DrillContext

logger = logging.getLogger("mpac_drill")

_REQUIRED = ("obs.cluster", "obs.service", "obs.health_url", "obs.grafana_url")
_LOOPBACK = ("127.0.0.1", "::1", "localhost")


class ObsDeployment(TypedDict):
    cluster: str
    service: str
    region: str
    launch_type: str | None  # FARGATE, EC2, or the capacity providers
    desired: int | None
    dr_region: str
    in_dr_region: bool | None  # None: not known (dry run, lookup refused)
    dr_detail: str


class RedeployResult(TypedDict):
    cluster: str
    service: str
    region: str
    desired: int
    stopped: int
    new_tasks: list[str]
    redeployed: bool
    waited_s: float


# ---------------------------------------------------------------- the target's obs keys


def missing_settings(target: Target) -> list[str]:
    """The ``obs`` keys the drill needs that the target leaves unset (the runbook names
    none of them, so the shipped targets say ``null``)."""
    missing = [key for key in _REQUIRED if not target.get(key)]
    buckets = target.get("obs.buckets")
    if not isinstance(buckets, dict) or not buckets:
        return [*missing, "obs.buckets"]
    return missing + [f"obs.buckets.{role}" for role, name in buckets.items() if not name]


def check_target(target: Target) -> None:
    """Refuse, in one line naming the keys, a target the obs drill cannot run on.

    :raises UsageError: unset ``obs`` keys, a URL that is not http(s), or a Grafana token
        that would travel unencrypted to a host other than loopback.
    """
    where = f"target {target.name!r} ({target.path})"
    missing = missing_settings(target)
    if missing:
        raise UsageError(
            f"{where} does not set {', '.join(missing)}, which obs-failure on "
            "AWS needs (runbook §1.6 names none of them): fill them in"
        )
    for key in ("obs.health_url", "obs.grafana_url"):
        parts = urlsplit(str(target.get(key)))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(f"{where}: {key} must be an http(s) URL, not {target.get(key)!r}")
    read_max = target.get("obs.read_check_max")
    if read_max is not None and (
        isinstance(read_max, bool) or not isinstance(read_max, int) or read_max < 0
    ):
        raise UsageError(
            f"{where}: obs.read_check_max must be a whole number >= 0 or null, not {read_max!r}"
        )
    grafana = urlsplit(str(target.get("obs.grafana_url")))
    if (
        target.get("obs.grafana_token_ssm_parameter")
        and grafana.scheme != "https"
        and grafana.hostname not in _LOOPBACK
    ):
        raise UsageError(
            f"{where}: obs.grafana_url must be https:// when "
            "obs.grafana_token_ssm_parameter is set (the token is a secret)"
        )


def _named(target: Target, key: str, dry: bool) -> str:
    value = target.get(key)
    if not value and not dry:
        raise UsageError(f"target {target.name!r} ({target.path}) does not set {key}")
    return str(value or f"UNSET.{key}")


def history_buckets(target: Target, *, dry: bool = False) -> dict[str, str]:
    """``{role: bucket}`` from ``obs.buckets`` (placeholders for unset ones in a dry run)."""
    buckets = target.get("obs.buckets")
    if not isinstance(buckets, dict) or not buckets:
        return {"buckets": _named(target, "obs.buckets", dry)}
    return {str(role): _named(target, f"obs.buckets.{role}", dry) for role in buckets}


# ---------------------------------------------------------------- ECS


def describe_deployment(target: Target, *, dry_run: DryRun | None = None) -> ObsDeployment:
    """How mpac-obs runs (DescribeServices: launch type, desired count) and whether the DR
    region (``aws.dr_region``) runs it too, in a cluster of the same name. Reads only."""
    cluster, name = ecs_location(target, OBS_SERVICE, dry=dry_run is not None)
    ecs = client("ecs", target, dry_run=dry_run)
    found = ecs.describe_services(cluster=cluster, services=[name]).get("services") or [{}]
    svc = found[0]
    providers = [p.get("capacityProvider") for p in svc.get("capacityProviderStrategy", [])]
    launch = svc.get("launchType") or ("+".join(p for p in providers if p) or None)
    dr = str(target.require("aws.dr_region"))
    in_dr: bool | None = None
    try:
        there = (
            client("ecs", target, region=dr, dry_run=dry_run)
            .describe_services(cluster=cluster, services=[name])
            .get("services", [])
        )
        if dry_run is None:
            in_dr = any(s.get("status") == "ACTIVE" for s in there)
        detail = (
            f"cluster {cluster} there has no such service"
            if dry_run is None
            else "not looked up (dry run)"
        )
    except AwsCallFailed as exc:
        in_dr = False if exc.code == "ClusterNotFoundException" else None
        detail = f"no cluster {cluster} there" if in_dr is False else f"lookup refused: {exc.code}"
    return ObsDeployment(
        cluster=cluster,
        service=name,
        region=ecs.meta.region_name,
        launch_type=launch,
        desired=svc.get("desiredCount"),
        dr_region=dr,
        in_dr_region=in_dr,
        dr_detail=detail,
    )


def wait_redeployed(
    target: Target,
    stopped: list[str],
    *,
    timeout_s: float,
    poll_s: float = 5.0,
    dry_run: DryRun | None = None,
) -> RedeployResult:
    """Poll until ECS runs the service's desired count of tasks that the drill did not
    stop (ListTasks RUNNING, DescribeTasks lastStatus RUNNING), or ``timeout_s`` passed.

    A service whose running count merely still equals its desired count right after
    StopTask is not yet redeployed: only new tasks count. Does not raise on timeout.

    :param stopped: the task ARNs the fault stopped.
    """
    cluster, name = ecs_location(target, OBS_SERVICE, dry=dry_run is not None)
    ecs = client("ecs", target, dry_run=dry_run)
    gone = set(stopped)
    t0 = time.monotonic()
    while True:
        svc = (ecs.describe_services(cluster=cluster, services=[name]).get("services") or [{}])[0]
        desired = int(svc.get("desiredCount", 0))
        arns = [
            a
            for page in ecs.get_paginator("list_tasks").paginate(
                cluster=cluster, serviceName=name, desiredStatus="RUNNING"
            )
            for a in page.get("taskArns", [])
            if a not in gone
        ]
        new = [
            t["taskArn"]
            for i in range(0, len(arns), 100)
            for t in ecs.describe_tasks(cluster=cluster, tasks=arns[i : i + 100]).get("tasks", [])
            if t.get("lastStatus") == "RUNNING"
        ]
        waited = time.monotonic() - t0
        done = desired > 0 and len(new) >= desired
        if done or waited >= timeout_s or dry_run is not None:
            break
        time.sleep(min(poll_s, max(timeout_s - waited, 0.0)))
    if not done and dry_run is None:
        logger.warning(
            "ECS service %s (%s) not redeployed after %.1f s: %d new of %d",
            name,
            cluster,
            waited,
            len(new),
            desired,
        )
    return RedeployResult(
        cluster=cluster,
        service=name,
        region=ecs.meta.region_name,
        desired=desired,
        stopped=len(gone),
        new_tasks=new,
        redeployed=done,
        waited_s=round(waited, 3),
    )


def grafana_token(target: Target, *, dry_run: DryRun | None = None) -> str | None:
    """The Grafana API token from ``obs.grafana_token_ssm_parameter`` (GetParameter with
    decryption), or ``None`` when the key is unset or in a dry run. Never logged."""
    name = target.get("obs.grafana_token_ssm_parameter")
    if not name:
        return None
    found = client("ssm", target, dry_run=dry_run).get_parameter(
        Name=str(name), WithDecryption=True
    )
    return None if dry_run is not None else str(found["Parameter"]["Value"])


# ---------------------------------------------------------------- runbook findings F10, F11


def obs_findings(
    target: Target,
    deployment: ObsDeployment,
    redeploy: RedeployResult,
    history: HistoryCheck,
    seen_s: float | None,
) -> list[Finding]:
    """F10 (§1.6: ECS stack or EC2 box?) and F11 (no DR region for mpac-obs), with the
    drill's evidence, in result.json's ``findings`` shape.

    :param seen_s: seconds from the fault to the check that saw the new tasks running
        (an upper bound of the redeploy), ``None`` when they never did.
    """
    lt = deployment["launch_type"] or "not reported"
    ec2 = (
        " (EC2 launch type: its tasks run on container instances, which a service "
        "redeploy does not replace)"
        if lt == "EC2"
        else ""
    )
    when = (
        f"running when checked {seen_s:.1f} s after the fault"
        if seen_s is not None
        else "not running within the recovery bound"
    )
    buckets = ", ".join(
        f"{b['bucket']} ({b['region'] or 'region unknown'})" for b in history["buckets"]
    )
    kept = history["acked"] - history["lost"]
    compacted = sum(b["compacted"] for b in history["buckets"])
    merged = (
        f" or merged into newer ones by the stores' compactors ({compacted})" if compacted else ""
    )
    f10: Finding = {
        "id": "F10",
        "section": "1.6",
        "summary": "runbook: 'Re-deploy ECS stack: make deploy-obs-prod', then 'New EC2 "
        "OBS box will re-attach same S3 buckets': an ECS stack or an EC2 box "
        "is left open",
        "evidence": f"target {target.name} runs mpac-obs as ECS service "
        f"{deployment['service']} in cluster {deployment['cluster']} "
        f"({deployment['region']}, launch type {lt}){ec2}; the drill stopped "
        f"{redeploy['stopped']} task(s) and ECS ran "
        f"{len(redeploy['new_tasks'])} new one(s) of {redeploy['desired']} "
        f"desired, {when}: no EC2 box was replaced; {kept} of "
        f"{history['acked']} history objects listed before the fault still "
        f"readable{merged} in {buckets}",
    }
    dr, where = deployment["dr_region"], f"cluster {deployment['cluster']}"
    if deployment["in_dr_region"] is False:
        seen = (
            f"no ECS service {deployment['service']} in the DR region {dr} "
            f"(aws.dr_region): {deployment['dr_detail']}"
        )
    elif deployment["in_dr_region"]:
        seen = (
            f"ECS service {deployment['service']} found in {where} in the DR region {dr} "
            "too: the runbook's overview does not list it"
        )
    else:
        seen = f"whether {dr} runs mpac-obs is not known ({deployment['dr_detail']})"
    f11: Finding = {
        "id": "F11",
        "section": "1.6",
        "summary": "runbook overview: mpac-obs runs in ap-northeast-1 (primary) only, with "
        "no DR region: a region loss (§1.4) takes observability down with the "
        "region it is needed to recover",
        "evidence": f"{seen}; mpac-obs runs in {deployment['region']} and keeps its "
        f"history in {buckets}",
    }
    return [f10, f11]


# ---------------------------------------------------------------- the drill's two steps


def start_history(ctx: DrillContext, interval_s: float = 0.1) -> dict[str, Any]:
    """Before the fault: how mpac-obs runs, and a listing of every history bucket.

    Refuses (aborts the drill before the fault) when a bucket cannot be listed. In a dry
    run the calls are recorded, and the unset ``obs`` keys are listed in the plan.
    ``interval_s`` is the sandbox's; on AWS the history is whatever the buckets hold.
    """
    t, dry = ctx.target, ctx.dry_run_recorder if ctx.dry_run else None
    unset = missing_settings(t)
    if unset and ctx.dry_run:
        ctx.plan(
            "fill in before a live run (shown as UNSET.<key> in the calls)",
            on="target",
            keys=", ".join(unset),
        )
        ctx.note(f"target {t.name} leaves {', '.join(unset)} unset: a live run is refused")
    try:
        if not ctx.dry_run:
            check_target(t)
        deployment = describe_deployment(t, dry_run=dry)
        snapshots = [
            snapshot_bucket(t, role, bucket, dry_run=dry)
            for role, bucket in history_buckets(t, dry=ctx.dry_run).items()
        ]
    except (ActivityFailed, UsageError) as exc:
        if not ctx.dry_run:
            ctx.abort(f"mpac-obs history not snapshotted, no fault injected: {exc}")
        raise
    ctx.handles.obs_history = {"deployment": deployment, "snapshots": snapshots}
    return {
        "started": True,
        "dry_run": ctx.dry_run,
        "deployment": dict(deployment),
        "objects": {s["bucket"]: len(s["objects"]) for s in snapshots},
    }


def measure_history(ctx: DrillContext, poll_s: float = 5.0) -> dict[str, Any]:
    """After the fault: redeploy awaited, history verified, dashboards checked.

    Fills ``acked_writes`` / ``lost_writes`` / ``rpo_s`` (objects, not lines), the ``obs``
    record of result.json and findings F10, F11.
    """
    state, ctx.handles.obs_history = ctx.handles.obs_history, None
    if state is None:
        return {"measured": False}
    t, expected = ctx.target, dashboard_files()
    grafana_url = _named(t, "obs.grafana_url", ctx.dry_run)
    read_max = t.get("obs.read_check_max", 1000)
    if ctx.dry_run:
        recorder = ctx.dry_run_recorder or DryRun()
        wait_redeployed(t, [], timeout_s=0, dry_run=recorder)
        verify_history(t, state["snapshots"], fault_utc=datetime.now(UTC), dry_run=recorder)
        most = "all" if read_max is None else read_max
        ctx.plan(
            f"s3 GetObject Range=bytes=0-0 (HeadObject when empty) of each object "
            f"listed before the fault, newest first, at most {most}",
            on="aws",
        )
        grafana_token(t, dry_run=recorder)
        for url in dashboard_urls(grafana_url, expected):
            ctx.plan(f"GET {url}", on="grafana")
        return {"dry_run": True}
    if ctx.injected_utc is None or ctx.injected_mono is None:
        raise ctx.failed("measure_history needs the fault injected first")
    bound = max(0.0, ctx.recovery_bound_s() - (time.monotonic() - ctx.injected_mono))
    redeploy = wait_redeployed(
        t, list(ctx.fault.get("resources", [])), timeout_s=bound, poll_s=poll_s
    )
    seen_s = round(time.monotonic() - ctx.injected_mono, 3) if redeploy["redeployed"] else None
    history = verify_history(
        t,
        state["snapshots"],
        fault_utc=ctx.injected_utc,
        read_max=None if read_max is None else int(read_max),
    )
    ctx.measurements.update(
        acked_writes=history["acked"], lost_writes=history["lost"], rpo_s=history["rpo_s"]
    )
    obs: dict[str, Any] = {
        "history_unit": "objects",
        "history_lines_acked": history["acked"],
        "history_lines_lost": history["lost"],
        "buckets": history["buckets"],
        "lost_objects": history["lost_objects"],
        "compacted_objects": history["compacted_objects"],
        "redeploy": dict(redeploy),
        "redeploy_seen_s": seen_s,
        "deployment": dict(state["deployment"]),
    }
    ctx.record.obs = obs  # the history stands even if Grafana cannot be asked
    n_compacted = sum(b["compacted"] for b in history["buckets"])
    if n_compacted:
        ctx.note(
            f"obs: {n_compacted} object(s) listed before the fault were replaced by "
            "Loki's or Tempo's compactor (not lost; see obs.compacted_objects)"
        )
    ctx.record.findings.extend(obs_findings(t, state["deployment"], redeploy, history, seen_s))
    dashboards = check_dashboards(grafana_url, expected, token=grafana_token(t), timeout_s=10)
    obs.update(dashboards)
    return obs


__all__ = [
    "ObsDeployment",
    "RedeployResult",
    "missing_settings",
    "check_target",
    "history_buckets",
    "describe_deployment",
    "wait_redeployed",
    "grafana_token",
    "obs_findings",
    "start_history",
    "measure_history",
]
