"""Run folders → tidy frames, plus the list of folders that could not be used and why.

Only ``result.json`` decides whether a folder is a run: a folder without one, with broken
JSON, or failing the contract schema (``mpac_drill.contract``, the check the harness writes
through) is *skipped* with a reason, never fatal. A run whose ``result.json`` is sound but
whose named artifacts are partly missing is kept (its figures still count, so a failed drill
cannot vanish with its CSV) and the missing names are recorded in ``MISSING``.

Contract schema 2 adds, all optional, the run's and each verdict's ``outcome``, a verdict's
``reason``, ``fault.effect`` and ``cleanup``: the inconclusive verdicts, the effect and the
clean-ups are read here (a schema 1 result's ``outcome`` words, if any, are not: schema 1
keeps its meaning, judged on the figures).

Run folders are untrusted: a folder that is, or holds, a symbolic link or a special file, or
a name with a control character, is skipped with a reason naming it, and nothing is read
through a link (``reports.folder``).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from mpac_drill.contract import validate_result
from reports import columns as C
from reports.artifacts import load_reconciliation, load_timelines, load_traffic
from reports.folder import Listing, Refused, read_bytes, refuse_name, scan, sha256, shown

RESULT_FILE = "result.json"
_QUARTER = re.compile(r"\d{4}-Q[1-4]")
_IMPACT = (C.REVOKED_S, C.TOKEN_LIFETIME_S, C.DUPLICATES, C.BYPASSED)
_TIMES = {C.DETECT: "detect_s", C.RTO: "rto_s", C.RPO: "rpo_s"}
_WRITES = {C.ACKED: "acked_writes", C.LOST: "lost_writes"}
#: The largest count a column holds exactly (an ``Int64`` column passes through float64).
_COUNT_MAX = 2**53


@dataclass(frozen=True)
class Skipped:
    """A folder under the runs folder that the report could not use."""

    folder: str
    reason: str


@dataclass(frozen=True)
class RunSet:
    """Everything read from ``result.json`` files and artifact hashes, as tidy frames."""

    runs: pd.DataFrame
    findings: pd.DataFrame
    steps: pd.DataFrame
    cleanup: pd.DataFrame
    manifest: pd.DataFrame
    skipped: list[Skipped]


class _Bad(ValueError):
    """A result.json that cannot be used; the message is the reason shown in the report."""


# ---------------------------------------------------------------- result.json checks


def _time(value: Any) -> datetime | None:
    """An ISO-8601 time with an offset, in UTC; None for anything else."""
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed is not None and parsed.tzinfo else None


def _figure(value: Any, where: str, *, count: bool = False) -> Any:
    """A figure the contract has checked, if a frame column can hold it (``_Bad`` if not)."""
    limit = _COUNT_MAX if count else sys.float_info.max
    if value is not None and value > limit and value != math.inf:  # a float may be inf
        raise _Bad(f"{where} is too large")
    return value


def _lenient(value: Any, *, count: bool = False) -> float | None:
    """An optional figure (impact checks): a number a column can hold, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not 0 <= value <= (_COUNT_MAX if count else sys.float_info.max):
        return None
    return None if count and value % 1 else float(value)


def _optional(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    return value if isinstance(value, Mapping) else {}


def _record(data: Any, known_scenarios: set[str]) -> dict[str, Any]:
    """One ``result.json`` checked against the contract → one row of the runs frame.

    The contract schema (``mpac_drill.contract``) decides whether the file is sound; what
    only the report knows is checked here: the catalog, a dry run, the quarter and the
    order of the times. Raises ``_Bad`` with the first problem and how many more there are.
    """
    if not isinstance(data, Mapping):
        raise _Bad("result.json is not a JSON object")
    scenario = data.get("scenario")
    if isinstance(scenario, str) and scenario not in known_scenarios:
        raise _Bad(f"scenario {scenario!r} is not in the catalog")
    errors = validate_result(data)
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise _Bad(errors[0] + more)
    if data.get("dry_run"):
        raise _Bad("dry run: nothing was injected, nothing measured")
    run_for = data.get("quarter", "")
    if run_for and not (isinstance(run_for, str) and _QUARTER.fullmatch(run_for)):
        raise _Bad(f"quarter {run_for!r} is not YYYY-QN")
    started, ended = _time(data["started_at"]), _time(data["ended_at"])
    assert started is not None and ended is not None
    if ended < started:
        raise _Bad("ended_at is before started_at")
    meas, load = data["measurements"], data["measurements"]["load"]
    impact, harness = _optional(data, "impact"), _optional(data, "harness")
    effect = _optional(data["fault"], "effect")
    reason = data.get("reason")
    recovery = data.get("recovery")
    if isinstance(reason, str) and isinstance(recovery, dict):  # issue 17: what recover did
        did = [s for s in recovery.get("steps") or [] if isinstance(s, dict)]
        reason += "; recovered by mpac-drill recover: " + (
            "; ".join(f"{s.get('what')}: {s.get('outcome')}" for s in did) or "nothing to undo"
        )
    v2 = data["schema_version"] >= 2  # schema 1 has no outcome: passed → met, else missed
    return {
        C.RUN_ID: data["run_id"],
        C.SCENARIO: data["scenario"],
        C.SECTION: data["runbook_section"],
        C.TARGET: data["target"],
        C.STATUS: data["status"],
        C.REASON: reason if isinstance(reason, str) else "",
        C.STARTED: started,
        C.RUN_FOR: run_for or "",
        C.ENDED: ended,
        C.INJECTED: _time(data["fault"]["injected_at"]),
        **{c: _figure(meas[k], f"measurements.{k}") for c, k in _TIMES.items()},
        **{c: _figure(meas[k], f"measurements.{k}", count=True) for c, k in _WRITES.items()},
        C.REQUESTS: _figure(load["requests"], "measurements.load.requests", count=True),
        C.FAILURES: _figure(load["failures"], "measurements.load.failures", count=True),
        C.P95: _figure(load.get("p95_ms"), "measurements.load.p95_ms"),
        C.PASSED: data["passed"],
        C.SCHEMA_VERSION: data["schema_version"],
        C.RECORDED_OUTCOME: str(data.get("outcome") or "") if v2 else "",
        C.INCONCLUSIVE_VERDICTS: _inconclusive(data["verdicts"]) if v2 else (),
        C.EFFECT_VERIFIED: effect.get("verified")
        if isinstance(effect.get("verified"), bool)
        else None,
        C.EFFECT_EVIDENCE: _text(effect.get("evidence")),
        **{k: _lenient(impact.get(k), count=k in _INTS) for k in _IMPACT},
        C.USER: str(harness.get("user") or "unknown"),
        C.HOST: str(harness.get("host") or "unknown"),
        C.VERSION: str(harness.get("version") or "unknown"),
        C.COMMIT: str(harness.get("git_commit") or "unknown"),
    }


def _text(value: Any) -> str:
    """An optional text field: the string, or "" for anything else."""
    return value if isinstance(value, str) else ""


def _inconclusive(verdicts: list[Mapping[str, Any]]) -> tuple[tuple[str, str], ...]:
    """Schema 2: ``(metric, reason)`` of every verdict recorded as inconclusive, in order."""
    return tuple(
        (str(v["metric"]), _text(v.get("reason")).strip() or "no reason recorded")
        for v in verdicts
        if v.get("outcome") == "inconclusive"
    )


# ---------------------------------------------------------------- artifacts


def _artifact(
    artifacts: Mapping[str, str], keys: Iterable[str], default: str, listing: Listing
) -> str:
    """The path of a named artifact file inside the run folder; "" when absent (any odd name)."""
    path = listing.find(next((artifacts[k] for k in keys if k in artifacts), default))
    return path if path is not None and path not in listing.folders else ""


def _manifest(
    folder: Path, listing: Listing, run_id: str, result: tuple[int, str]
) -> list[dict[str, Any]]:
    """Every regular file in the folder, with size and SHA-256 (result.json's: bytes parsed)."""
    rows = []
    for path in listing.files:
        size, digest = result if path == RESULT_FILE else sha256(folder, path)
        rows.append(
            {
                C.RUN_ID: run_id,
                C.FOLDER: folder.name,
                C.PATH: path,
                C.BYTES: size,
                C.SHA256: digest,
            }
        )
    return rows


def _entries(data: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    """The objects of an optional list (``findings``, ``steps``); anything else is ignored."""
    value = data.get(key)
    return [e for e in value if isinstance(e, Mapping)] if isinstance(value, list) else []


def _nested(data: Mapping[str, Any], run_id: str, started: datetime) -> tuple[list, list, list]:
    findings = [
        {
            C.RUN_ID: run_id,
            C.FINDING_ID: str(f.get("id", "?")),
            C.FINDING_SECTION: str(f.get("section", "")),
            C.SUMMARY: str(f.get("summary", "")),
            C.EVIDENCE: str(f.get("evidence", "")),
        }
        for f in _entries(data, "findings")
    ]
    steps = []
    for i, s in enumerate(_entries(data, "steps")):
        at = _time(s.get("started_at"))
        steps.append(
            {
                C.RUN_ID: run_id,
                C.STEP: str(s.get("name") or f"step {i + 1}"),
                C.STEP_OFFSET: (at - started).total_seconds() if at is not None else None,
                C.DURATION: _lenient(s.get("duration_s")),
                C.STEP_OK: bool(s.get("ok")),
                C.DETAIL: str(s.get("detail") or ""),
            }
        )
    cleanup = [
        {
            C.RUN_ID: run_id,
            C.WHAT: str(c.get("what", "")),
            C.RESOURCE: str(c.get("resource", "")),
            C.REGION: str(c.get("region") or ""),
            C.CLEANUP_OUTCOME: str(c.get("outcome", "")),
        }
        for c in _entries(data, "cleanup")
    ]
    return findings, steps, cleanup


# ---------------------------------------------------------------- the runs folder


def _frame(rows: list[dict[str, Any]], columns: Iterable[str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(columns))


def _result(folder: Path) -> tuple[Any, tuple[int, str]]:
    """result.json parsed, with the size and SHA-256 of the bytes read."""
    raw = read_bytes(folder, RESULT_FILE)
    try:
        data = json.loads(raw.decode("utf-8"))
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:  # "\ud800": no renderer can write it
        raise _Bad("result.json has text that is not valid Unicode (a lone surrogate)") from None
    except (ValueError, RecursionError) as exc:  # JSON, UTF-8, a 5,000-digit number
        where = f" at line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise _Bad(f"result.json is not valid JSON{where}") from None
    return data, (len(raw), hashlib.sha256(raw).hexdigest())


@dataclass(frozen=True)
class _Run:
    """One usable run folder: its result, its row of the runs frame, its files."""

    data: Mapping[str, Any]
    row: dict[str, Any]
    listing: Listing
    files: list[dict[str, Any]]
    result_sha: str


def _run(entry: os.DirEntry, known: set[str]) -> _Run | None:
    """A run folder read without following links; None for what is no folder at all.

    Raises ``Refused``, ``_Bad`` or ``OSError`` for a folder that cannot be used.
    """
    if entry.is_symlink():
        raise Refused("the folder is a symbolic link (not followed)")
    if not entry.is_dir(follow_symlinks=False):
        return None
    refuse_name(entry.name, "folder name")
    folder = Path(entry.path)
    listing = scan(folder)
    if RESULT_FILE not in listing.files:
        if "inflight.json" in listing.files:  # the harness died after injecting (issue 17)
            raise Refused(
                "interrupted run: its harness died after injecting the fault (inflight.json, "
                "no result.json); finish it with `mpac-drill recover`"
            )
        raise Refused("no result.json (unfinished or crashed run)")
    data, result = _result(folder)
    row = _record(data, known)
    return _Run(data, row, listing, _manifest(folder, listing, row[C.RUN_ID], result), result[1])


def load_runs(runs_dir: Path, known_scenarios: Iterable[str]) -> RunSet:
    """Read every run folder directly under ``runs_dir`` (hidden folders are ignored)."""
    known = set(known_scenarios)
    rows, findings, steps, cleanup, manifest, skipped = [], [], [], [], [], []
    seen: dict[str, str] = {}
    with os.scandir(runs_dir) as it:
        entries = sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)
    for entry in entries:
        try:
            run = _run(entry, known)
        except (Refused, _Bad) as exc:
            skipped.append(Skipped(shown(entry.name), str(exc)))
            continue
        except OSError as exc:  # permissions, or a file swapped for a link since the scan
            reason = f"the folder is unreadable: {exc.strerror or type(exc).__name__}"
            skipped.append(Skipped(shown(entry.name), reason))
            continue
        if run is None:
            continue
        row, artifacts, listing = run.row, run.data["artifacts"], run.listing
        if row[C.RUN_ID] in seen:
            reason = f"run_id {row[C.RUN_ID]!r} already read from {seen[row[C.RUN_ID]]}"
            skipped.append(Skipped(entry.name, reason))
            continue
        seen[row[C.RUN_ID]] = entry.name
        absent = sorted(k for k, v in artifacts.items() if listing.find(v) is None)
        f_rows, s_rows, c_rows = _nested(run.data, row[C.RUN_ID], row[C.STARTED])
        rows.append(
            {
                **row,
                C.FOLDER: entry.name,
                C.MISSING: ";".join(absent),
                C.RESULT_SHA: run.result_sha,
                C.FINDING_IDS: ";".join(sorted({f[C.FINDING_ID] for f in f_rows})),
                C.HAS_STEPS: bool(s_rows),
                C.TIMELINE_FILE: _artifact(artifacts, ("timeline",), "timeline.csv", listing),
                C.LOAD_FILE: _artifact(
                    artifacts, ("load_per_second", "load"), "load_per_second.csv", listing
                ),
            }
        )
        findings += f_rows
        steps += s_rows
        cleanup += c_rows
        manifest += run.files
    return RunSet(
        runs=_runs_frame(rows),
        findings=_frame(findings, _FINDING_COLS),
        steps=_frame(steps, _STEP_COLS),
        cleanup=_frame(cleanup, _CLEANUP_COLS),
        manifest=_frame(manifest, _MANIFEST_COLS),
        skipped=skipped,
    )


_RUN_COLS = (
    C.RUN_ID,
    C.FOLDER,
    C.SCENARIO,
    C.SECTION,
    C.TARGET,
    C.STATUS,
    C.REASON,
    C.STARTED,
    C.RUN_FOR,
    C.ENDED,
    C.INJECTED,
    C.DETECT,
    C.RTO,
    C.RPO,
    C.ACKED,
    C.LOST,
    C.REQUESTS,
    C.FAILURES,
    C.P95,
    C.PASSED,
    C.SCHEMA_VERSION,
    C.RECORDED_OUTCOME,
    C.INCONCLUSIVE_VERDICTS,
    C.EFFECT_VERIFIED,
    C.EFFECT_EVIDENCE,
    *_IMPACT,
    C.USER,
    C.HOST,
    C.VERSION,
    C.COMMIT,
    C.RESULT_SHA,
    C.MISSING,
    C.FINDING_IDS,
    C.HAS_STEPS,
    C.TIMELINE_FILE,
    C.LOAD_FILE,
)
_FINDING_COLS = (C.RUN_ID, C.FINDING_ID, C.FINDING_SECTION, C.SUMMARY, C.EVIDENCE)
_STEP_COLS = (C.RUN_ID, C.STEP, C.STEP_OFFSET, C.DURATION, C.STEP_OK, C.DETAIL)
_CLEANUP_COLS = (C.RUN_ID, C.WHAT, C.RESOURCE, C.REGION, C.CLEANUP_OUTCOME)
_MANIFEST_COLS = (C.RUN_ID, C.FOLDER, C.PATH, C.BYTES, C.SHA256)
_FLOATS = (C.DETECT, C.RTO, C.RPO, C.P95, C.REVOKED_S, C.TOKEN_LIFETIME_S)
_INTS = (C.ACKED, C.LOST, C.REQUESTS, C.FAILURES, C.DUPLICATES, C.BYPASSED)


def _runs_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = _frame(rows, _RUN_COLS)
    return (
        frame.assign(
            **{c: pd.to_datetime(frame[c], utc=True) for c in (C.STARTED, C.ENDED, C.INJECTED)},
            **{c: pd.to_numeric(frame[c]).astype("float64") for c in _FLOATS},
            **{c: pd.to_numeric(frame[c]).astype("Int64") for c in _INTS},
            **{c: frame[c].astype(bool) for c in (C.PASSED, C.HAS_STEPS)},
            **{C.EFFECT_VERIFIED: frame[C.EFFECT_VERIFIED].astype("boolean")},
            **{C.SCHEMA_VERSION: frame[C.SCHEMA_VERSION].astype("int64")},
        )
        .sort_values([C.STARTED, C.RUN_ID], kind="stable")
        .reset_index(drop=True)
    )


__all__ = [
    "Skipped",
    "RunSet",
    "load_runs",
    "load_timelines",
    "load_traffic",
    "load_reconciliation",
    "RESULT_FILE",
]
