"""``result.json``: one run's summary, built from the drill context and the journal.

The shape follows ``contract/drill-result.schema.json`` (``mpac_drill/contract.py``); extra
keys are described in ``docs/run-folder.md``. Verdicts compare each measurement with the
catalog's targets.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from mpac_drill import contract
from mpac_drill.config import quarter_label
from mpac_drill.drill.context import DrillContext, iso, utc_now
from mpac_drill.errors import ExitCode
from mpac_drill.measure.detection_verdict import counts, drill_verdict

#: The contract the harness writes against: the project's own ``contract/`` copy, the only
#: candidate (kept a tuple for callers; ``tests/test_contract.py`` checks it against the
#: shared original). A missing schema is an error, never a pass.
SCHEMA_CANDIDATES = (contract.SCHEMA_PATH,)
ARTIFACTS = {
    "chaostoolkit_log": "chaostoolkit.log",
    "timeline": "timeline.csv",
    "canary": "canary.csv",
    "load_per_second": "load_per_second.csv",
    "load_rps": "load_rps.csv",
    "locust": "locust",
    "fault": "fault.json",
    "dr_daemon_log": "dr-daemon.log",
    "payments": "payments.csv",
    "reconciliation": "reconciliation.csv",
}


def _verdict(metric: str, value: float | None, target: float | None) -> dict[str, Any]:
    passed = value is not None and target is not None and value <= target
    margin = None if value is None or target is None else round(target - value, 4)
    return {
        "metric": metric,
        "value": value,
        "target": target,
        "passed": passed,
        "margin": margin,
        "outcome": "met" if passed else "missed",
    }


def _judgeable(ctx: DrillContext, status: str, reason: str | None) -> tuple[bool, str, str | None]:
    """Whether the run's figures may be judged, and its status and reason after that: a
    verdict is given only about a fault that was injected and seen to take effect."""
    if ctx.dry_run:
        return False, status, reason
    ctx.await_effect()
    state = ctx.fault_state
    if state == "effective":
        return True, status, reason
    if state == "none":
        if status == "completed":
            return False, "failed", "no fault was injected: nothing to judge"
        return False, status, reason
    evidence = (ctx.fault.get("effect") or {}).get("evidence") or "no evidence"
    if state == "no effect" and status != "aborted":  # an interruption keeps its own status
        return False, "failed", f"fault had no effect ({evidence}): nothing judged"
    if status == "completed":  # injected, but the drill ended before its effect was seen
        return False, "failed", "the fault's effect was never confirmed: nothing judged"
    return False, status, reason


def _rto_verdict(ctx: DrillContext, m: dict[str, Any], target: float) -> dict[str, Any]:
    """RTO's verdict; inconclusive when the fault took effect (and was not only declared)
    but no sample of the observer ever failed, where the scenario expects users to see it."""
    unseen = m.get("detect_s") is None and not ctx.fault.get("simulated")
    if unseen and ctx.scenario.outage_expected and ctx.observer is not None:
        sampled = ", ".join(f"{k} {v}" for k, v in ctx.observer.endpoints.items()) or "none"
        return {
            "metric": "rto_s",
            "value": None,
            "target": target,
            "passed": False,
            "margin": None,
            "outcome": "inconclusive",
            "reason": "the fault took effect but no sampled endpoint ever failed: the "
            f"observer may not be looking at the service it broke (sampled: {sampled})",
        }
    return _verdict("rto_s", m.get("rto_s"), target)


#: Verdicts on figures the load generator's own latency feeds: never "met" when it was
#: saturated (``measure/load.py::check_generator``).
LATENCY_METRICS = ("rto_slo_s",)


def _untrusted_when_saturated(verdict: dict[str, Any], load: dict[str, Any]) -> dict[str, Any]:
    """A latency verdict of a run whose load generator was saturated: inconclusive."""
    metric = str(verdict["metric"])
    latency = metric in LATENCY_METRICS or "p95" in metric or "latency" in metric
    if not load.get("saturated") or not latency:
        return verdict
    return {
        **verdict,
        "passed": False,
        "outcome": "inconclusive",
        "reason": "load generator saturated: "
        + "; ".join(load.get("saturation_evidence") or ["no evidence"]),
    }


def run_outcome(result: dict[str, Any]) -> str:
    """met, missed, inconclusive or not judged: the run as a whole."""
    verdicts = [v for v in result["verdicts"] if counts(v)]
    if not verdicts:
        return "not judged"
    if all(v["passed"] for v in verdicts) and result["status"] == "completed":
        return "met"
    if any(v.get("outcome") == "inconclusive" for v in verdicts):
        return "inconclusive"
    return "missed"


def _status(
    ctx: DrillContext, journal: dict[str, Any], signal_code: int | None
) -> tuple[str, str | None]:
    jstatus = journal.get("status")
    if jstatus in ("interrupted", "aborted") or signal_code:
        if ctx.abort_reason:
            return "aborted", ctx.abort_reason
        failed = [
            str((r.get("activity") or {}).get("name", "?"))
            for r in journal.get("rollbacks") or []
            if r.get("status") != "succeeded"
        ]
        # what the rollbacks did, from their runs: never "ran" when one failed
        done = (
            f"rollback(s) failed: {', '.join(failed)} (see notes): the target may not be as it was"
            if failed
            else "rollbacks ran"
        )
        if signal_code == ExitCode.INTERRUPTED:
            return "aborted", f"interrupted by the operator (SIGINT); {done}"
        if signal_code == ExitCode.TERMINATED:
            return "aborted", f"terminated (SIGTERM); {done}"
        if signal_code == ExitCode.HANGUP:
            return "aborted", f"the terminal hung up (SIGHUP); {done}"
        return "aborted", f"the experiment was interrupted; {done}"
    for run in journal.get("run", []):
        if run.get("status") == "failed":
            name = run.get("activity", {}).get("name", "?")
            return "failed", f"activity {name} failed: {run_error(run)}"
    for run in journal.get("rollbacks") or []:
        if run.get("status") != "succeeded":  # the target may not be as it was: exit 3
            name = (run.get("activity") or {}).get("name", "?")
            return "failed", f"rollback {name} failed: {run_error(run)}"
    before = (journal.get("steady_states") or {}).get("before") or {}
    if before and not before.get("steady_state_met", True):
        return "failed", "the platform was not healthy before the fault (steady state not met)"
    if jstatus == "failed":
        return "failed", "the experiment failed"
    return "completed", None


#: ``chaoslib.exceptions.ActivityFailed: `` and the like, as chaoslib's journal repeats them.
_CLASS_PREFIX = re.compile(r"^(?:[A-Za-z_][\w]*\.)*[A-Za-z_]\w*(?:Error|Failed|Exception): ")


def run_error(run: dict[str, Any]) -> str:
    """The last line of a journal run's exception, without its class names."""
    exc = run.get("exception") or ["unknown error"]
    lines = "".join(str(e) for e in exc).strip().splitlines()
    return _without_class_names(lines[-1] if lines else "unknown error")[:300]


def _without_class_names(line: str) -> str:
    """The message of a journal exception line without its (repeated) class names."""
    while True:
        stripped = _CLASS_PREFIX.sub("", line, count=1)
        if stripped == line:
            return line
        line = stripped


def _findings(ctx: DrillContext, m: dict[str, Any]) -> list[dict[str, str]]:
    record = ctx.record
    out: list[Any] = list(record.findings)
    sid = ctx.scenario.id
    if sid == "rds-failover" and m.get("rto_s") is not None:
        out.append(
            {
                "id": "F5",
                "section": "1.2",
                "summary": "runbook: standby promoted within 1-2 min, resolved in 2-5 min",
                "evidence": f"measured RTO {m['rto_s']:.2f} s on {ctx.target.name}",
            }
        )
        if ctx.fault.get("primary_before"):
            out.append(
                {
                    "id": "F6",
                    "section": "1.2",
                    "summary": "the runbook's 'Role' query reads "
                    "ReadReplicaSourceDBInstanceIdentifier, which does not "
                    "say which node is primary",
                    "evidence": f"primary before {ctx.fault['primary_before']}, after "
                    f"{record.primary_after or 'see journal'}",
                }
            )
    if sid == "region-failover" and record.region:
        out += _region_findings(record.region, m)
    qr = record.qr_path
    if sid == "region-failover" and qr and not qr["to_dr_pgw"]:
        out.append(
            {
                "id": "F12",
                "section": "1.4",
                "summary": "runbook 1.4 brings mpac-smartpos up in the DR region but never "
                "moves PGW_BASE_URL; QR payments wait for 1.5",
                "evidence": f"after the 1.4 steps {qr['detail']}",
            }
        )
    order = _order_finding(sid, list(record.steps))
    if order:
        out.append(order)
    rec = record.reconciliation
    if sid == "pgw-region-failover" and rec:
        out.append(
            {
                "id": "F9",
                "section": "1.5",
                "summary": "runbook: QR transactions during the outage window may need "
                "manual reconciliation (which ones is not said)",
                "evidence": f"{rec['payments_missing']} of {rec['payments_acked']} "
                f"acknowledged QR payments missing after the restore "
                f"(amount {rec['amount_missing']}), listed in {rec['file']}",
            }
        )
    impact = record.impact
    if sid == "redis-failover" and impact:
        out.append(
            {
                "id": "F7",
                "section": "1.3",
                "summary": "runbook: security impact low, tokens expire in 15 min",
                "evidence": f"a revoked token was accepted for "
                f"{impact['revoked_token_accepted_s']:.2f} s during the outage",
            }
        )
        out.append(
            {
                "id": "F8",
                "section": "1.3",
                "summary": "runbook: duplicates handled at the DB layer",
                "evidence": f"{impact['duplicate_orders']} duplicate orders from "
                f"{impact['order_retries_sent']} retried orders",
            }
        )
    return out


#: Runbook §1.4's steps and the region each names (``--region``).
RUNBOOK_14_STEPS = (
    ("activate DR environment", "ap-northeast-1"),
    ("update Route53 record", "ap-northeast-1"),
    ("restore latest RDS snapshot", "ap-northeast-1"),
    ("update DATABASE_URL in SSM", "ap-northeast-1"),
)


def _order_finding(sid: str, steps: list[dict[str, Any]]) -> dict[str, str] | None:
    """F14: §1.4 switches Route53 (step 3) and §1.5 switches PGW_BASE_URL (step 2) before
    the database they lead to is restored. The drill restores first and switches once the
    DR services are healthy; the steps from the restore through the restart, as timed, are
    how long the runbook's order sends traffic to a DR stack without its database."""
    if sid not in ("region-failover", "pgw-region-failover"):
        return None
    names = [s["name"] for s in steps]
    first = next(
        (i for i, n in enumerate(names) if n.startswith(("restore", "find the newest snapshot"))),
        None,
    )
    if first is None or "restart services" not in names:
        return None
    span = steps[first : names.index("restart services") + 1]
    if not span or not all(s["ok"] for s in span):
        return None
    window = sum(float(s["duration_s"]) for s in span)
    how = f"{' + '.join(s['name'] for s in span)} took {window:.2f} s"
    if sid == "region-failover":
        return {
            "id": "F14",
            "section": "1.4",
            "summary": "runbook 1.4 points Route53 at the DR region (step 3) before its "
            "database is restored (step 4) and DATABASE_URL updated (step 5)",
            "evidence": f"the drill switched the record last, once the DR services were "
            f"healthy: {how}, the time the runbook's order sends every request "
            f"to a DR stack without its database",
        }
    return {
        "id": "F14",
        "section": "1.5",
        "summary": "runbook 1.5 points PGW_BASE_URL at the DR PGW (step 2) before the "
        "PGW database is restored (step 3)",
        "evidence": f"the drill switched it after the restore: {how}, the time the "
        f"runbook's order sends QR payments to a DR PGW without its database "
        f"(refused, or acknowledged into a database the restore replaces)",
    }


def _region_findings(region: dict[str, Any], m: dict[str, Any]) -> list[dict[str, str]]:
    """F1 (steps naming the failed region), F2 (detection from outside), F3 (RPO bounded by
    what the DR side holds) from the region drill's record."""
    failed, dr = region.get("primary", "?"), region.get("dr", "?")
    wrong = [step for step, named in RUNBOOK_14_STEPS if named == failed]
    out = [
        {
            "id": "F1",
            "section": "1.4",
            "summary": f"runbook runs {len(wrong)} DR steps with --region {failed}, the "
            f"failed region; the DR standby is {dr}",
            "evidence": f"steps naming {failed}: {', '.join(wrong) or 'none'}; the drill ran "
            f"them in {dr} (DR stack {region.get('dr_state_dir', '?')}), while "
            f"nothing of {failed} answered",
        }
    ]
    if m.get("detect_s") is not None:
        out.append(
            {
                "id": "F2",
                "section": "1.4",
                "summary": f"runbook: detection by an external health check from {failed} "
                f"failing for >5 minutes",
                "evidence": f"detected {m['detect_s']:.2f} s after the loss by an "
                f"observer outside {failed} (through the front door); a check "
                f"inside {failed} was lost with it",
            }
        )
    age = region.get("newest_wal_age_at_loss_s")
    rpo = (
        "not measured"
        if m.get("rpo_s") is None
        else (f"measured RPO {m['rpo_s']:.2f} s, {m.get('lost_writes')} acknowledged writes lost")
    )
    out.append(
        {
            "id": "F3",
            "section": "1.4",
            "summary": "runbook: RPO 15 min from regional automated backups; the DR "
            "region restores only what was copied there",
            "evidence": f"the DR side held base backup {region.get('newest_base_backup')} "
            f"and WAL up to {region.get('newest_wal_file')} archived "
            f"{age if age is not None else '?'} s before the loss; {rpo}",
        }
    )
    return out


def _phases(ctx: DrillContext) -> None:
    """Where the recovery time went (``measure/phases.py``), from the platform's own
    events: only for an injected, observed fault; a failure to read them is a note."""
    if ctx.dry_run or not ctx.fault or ctx.injected_utc is None or ctx.observer is None:
        return
    from mpac_drill.drill.platforms import platform_for
    from mpac_drill.measure.phases import measure_phases

    try:
        events = platform_for(ctx).recovery_events(ctx.injected_utc.timestamp())
        measure_phases(ctx, events)
    except Exception as exc:  # noqa: BLE001 - the result is written whatever happens here
        ctx.note(f"phases of recovery not measured: {exc}")


def build_result(
    ctx: DrillContext, journal: dict[str, Any], *, signal_code: int | None = None
) -> dict[str, Any]:
    status, reason = _status(ctx, journal, signal_code)
    _phases(ctx)
    m = ctx.measurements
    measurements: dict[str, Any] = {
        "detect_s": m.get("detect_s"),
        "rto_s": m.get("rto_s"),
        "rpo_s": m.get("rpo_s"),
        "acked_writes": m.get("acked_writes"),
        "lost_writes": m.get("lost_writes"),
        "load": m.get("load") or {"requests": 0, "failures": 0, "p95_ms": None},
    }
    if m.get("rto_per_service"):
        measurements["rto_per_service_s"] = m["rto_per_service"]
    if "rto_slo_s" in m:
        measurements["rto_slo_s"] = m["rto_slo_s"]
    sc = ctx.scenario
    verdicts: list[dict[str, Any]] = []
    judged, status, reason = _judgeable(ctx, status, reason)
    if judged:
        if sc.rto_s is not None:
            verdicts.append(_rto_verdict(ctx, measurements, sc.rto_s))
        if sc.rpo_s is not None:
            verdicts.append(_verdict("rpo_s", measurements["rpo_s"], sc.rpo_s))
        checks = {**(ctx.record.impact or {}), **(ctx.record.obs or {})}
        for metric, target in sc.extra_targets.items():
            verdicts.append(_verdict(metric, checks.get(metric), target))
        after = (journal.get("steady_states") or {}).get("after")
        if after is not None:
            met = 1.0 if after.get("steady_state_met") else 0.0
            verdicts.append(
                {
                    "metric": "steady_state_restored",
                    "value": met,
                    "target": 1.0,
                    "passed": met == 1.0,
                    "margin": None,
                    "outcome": "met" if met == 1.0 else "missed",
                }
            )
        if ctx.record.detection is not None and sc.detection is not None:
            verdicts.append(dict(drill_verdict(ctx.record.detection, gating=sc.detection.gating)))
    verdicts = [_untrusted_when_saturated(v, measurements["load"]) for v in verdicts]
    artifacts = {"journal": "journal.json"}
    artifacts.update({k: v for k, v in ARTIFACTS.items() if (ctx.run_dir / v).exists()})
    result: dict[str, Any] = {
        "schema_version": contract.schema_version(),
        "run_id": ctx.run_id,
        "scenario": sc.id,
        "runbook_section": sc.runbook_section,
        "target": ctx.target.name,
        "environment": ctx.target.environment,
        "started_at": iso(ctx.started_utc),
        "quarter": ctx.quarter or quarter_label(ctx.started_utc),
        "ended_at": iso(utc_now()),
        "status": status,
        "fault": {
            "action": ctx.fault.get("action", "not injected"),
            "resources": list(ctx.fault.get("resources", [])),
            "injected_at": ctx.fault.get("injected_at"),
            **{
                k: v
                for k, v in ctx.fault.items()
                if k not in ("action", "resources", "injected_at")
            },
        },
        "measurements": measurements,
        "verdicts": verdicts,
        "passed": status == "completed"
        and any(counts(v) for v in verdicts)
        and all(v["passed"] for v in verdicts if counts(v)),
        "artifacts": artifacts,
        "targets": {"rto_s": sc.rto_s, "rpo_s": sc.rpo_s, **sc.extra_targets},
        "settings": {
            "overrides": ctx.target.overrides,
            "users": ctx.users,
            "load_workers": ctx.load_workers,
            "observer_interval_s": ctx.target.get("drill.observer_interval_s"),
            "recovery_consecutive": ctx.target.get("drill.recovery_consecutive"),
        },
        "harness": ctx.harness_info(),
        "findings": _findings(ctx, m),
    }
    result["outcome"] = run_outcome(result)
    if reason:
        result["reason"] = reason
    result.update(ctx.record.result_sections())
    if "saturated" in measurements["load"]:
        result["load_saturated"] = bool(measurements["load"]["saturated"])
    if ctx.notes:
        result["notes"] = list(ctx.notes)
    if ctx.dry_run:
        result["dry_run"] = True
        result["planned_calls"] = list(getattr(ctx.dry_run_recorder, "calls", []) or [])
        result["planned_steps"] = list(ctx.record.planned_steps)
    return result


def validate(result: dict[str, Any]) -> list[str]:
    """One-line errors against the contract schema, empty when valid.

    A missing or unreadable schema raises ``HarnessError``: it is never a pass.
    """
    return contract.validate_result(result)


def write_json(path: Path, data: Any) -> None:
    """Write atomically: a reader never sees half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    tmp.replace(path)


def exit_code_for(result: dict[str, Any], signal_code: int | None) -> ExitCode:
    if result["status"] == "aborted":
        if signal_code:
            return ExitCode(signal_code)
        # a stop condition before the fault judged nothing: the platform was not ready
        return ExitCode.TARGET_MISSED if result["verdicts"] else ExitCode.HARNESS
    if result["status"] == "failed":
        return ExitCode.HARNESS
    return ExitCode.OK if result["passed"] or result.get("dry_run") else ExitCode.TARGET_MISSED
