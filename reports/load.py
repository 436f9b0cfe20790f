"""Run folders → tidy frames, plus the list of folders that could not be used and why.

Only ``result.json`` decides whether a folder is a run: a folder without one, with broken
JSON, or with a field the report needs missing or of the wrong type is *skipped* with a
reason, never fatal. A run whose ``result.json`` is sound but whose named artifacts are
partly missing is kept (its figures still count, so a failed drill cannot vanish with its
CSV) and the missing names are recorded in ``MISSING``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from reports import columns as C

RESULT_FILE = "result.json"
STATUSES = ("completed", "aborted", "failed")
_MEASURED = ("detect_s", "rto_s", "rpo_s", "acked_writes", "lost_writes")
_REQUIRED = (
    "schema_version",
    "run_id",
    "scenario",
    "runbook_section",
    "target",
    "started_at",
    "ended_at",
    "status",
    "fault",
    "measurements",
    "verdicts",
    "passed",
    "artifacts",
)
_QUARTER = re.compile(r"\d{4}-Q[1-4]")
_IMPACT = (C.REVOKED_S, C.TOKEN_LIFETIME_S, C.DUPLICATES, C.BYPASSED)


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
    manifest: pd.DataFrame
    skipped: list[Skipped]


class _Bad(ValueError):
    """A result.json that cannot be used; the message is the reason shown in the report."""


# ---------------------------------------------------------------- result.json checks


def _time(value: Any, where: str, *, nullable: bool = False) -> datetime | None:
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        raise _Bad(f"{where} must be an ISO-8601 time, not {value!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _Bad(f"{where} is not an ISO-8601 time: {value!r}") from None
    if parsed.tzinfo is None:
        raise _Bad(f"{where} has no UTC offset: {value!r}")
    return parsed.astimezone(UTC)


def _num(value: Any, where: str, *, integer: bool = False) -> float | int | None:
    if value is None:
        return None
    kinds = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or value < 0:
        what = "a whole number" if integer else "a number"
        raise _Bad(f"{where} must be {what} >= 0 or null, not {value!r}")
    return value


def _lenient(value: Any) -> float | None:
    """An optional figure (impact checks): a number, or None for anything else."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
    return float(value) if ok else None


def _mapping(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    if not isinstance(value, Mapping):
        raise _Bad(f"{key} must be an object")
    return value


def _optional(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    return value if isinstance(value, Mapping) else {}


def _record(data: Any, known_scenarios: set[str]) -> dict[str, Any]:
    """One checked ``result.json`` → one row of the runs frame (raises ``_Bad``)."""
    if not isinstance(data, Mapping):
        raise _Bad("result.json is not a JSON object")
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise _Bad(f"result.json lacks {', '.join(missing)}")
    if data["schema_version"] != 1:
        raise _Bad(f"schema_version {data['schema_version']!r} is not 1")
    if data.get("dry_run"):
        raise _Bad("dry run: nothing was injected, nothing measured")
    for key in ("run_id", "target", "runbook_section"):
        if not isinstance(data[key], str) or not data[key]:
            raise _Bad(f"{key} must be a non-empty string")
    if data["scenario"] not in known_scenarios:
        raise _Bad(f"scenario {data['scenario']!r} is not in the catalog")
    if data["status"] not in STATUSES:
        raise _Bad(f"status {data['status']!r} is not one of {', '.join(STATUSES)}")
    if not isinstance(data["passed"], bool):
        raise _Bad("passed must be true or false")
    run_for = data.get("quarter", "")
    if run_for and not (isinstance(run_for, str) and _QUARTER.fullmatch(run_for)):
        raise _Bad(f"quarter {run_for!r} is not YYYY-QN")
    started = _time(data["started_at"], "started_at")
    ended = _time(data["ended_at"], "ended_at")
    assert started is not None and ended is not None
    if ended < started:
        raise _Bad("ended_at is before started_at")
    fault = _mapping(data, "fault")
    injected = _time(fault.get("injected_at"), "fault.injected_at", nullable=True)
    meas = _mapping(data, "measurements")
    lacking = [k for k in (*_MEASURED, "load") if k not in meas]
    if lacking:
        raise _Bad(f"measurements lacks {', '.join(lacking)}")
    values = {
        k: _num(meas[k], f"measurements.{k}", integer=k.endswith("writes")) for k in _MEASURED
    }
    load = meas["load"]
    if not isinstance(load, Mapping) or "requests" not in load or "failures" not in load:
        raise _Bad("measurements.load must hold requests and failures")
    artifacts = data["artifacts"]
    if not isinstance(artifacts, Mapping) or not all(
        isinstance(v, str) for v in artifacts.values()
    ):
        raise _Bad("artifacts must map names to file names")
    impact, harness = _optional(data, "impact"), _optional(data, "harness")
    reason = data.get("reason")
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
        C.INJECTED: injected,
        C.DETECT: values["detect_s"],
        C.RTO: values["rto_s"],
        C.RPO: values["rpo_s"],
        C.ACKED: values["acked_writes"],
        C.LOST: values["lost_writes"],
        C.REQUESTS: _num(load["requests"], "measurements.load.requests", integer=True),
        C.FAILURES: _num(load["failures"], "measurements.load.failures", integer=True),
        C.P95: load.get("p95_ms") if isinstance(load.get("p95_ms"), int | float) else None,
        C.PASSED: data["passed"],
        **{k: _lenient(impact.get(k)) for k in _IMPACT},
        C.USER: str(harness.get("user") or "unknown"),
        C.HOST: str(harness.get("host") or "unknown"),
        C.VERSION: str(harness.get("version") or "unknown"),
        C.COMMIT: str(harness.get("git_commit") or "unknown"),
    }


# ---------------------------------------------------------------- artifacts


def _inside(folder: Path, name: str) -> Path | None:
    """The artifact's path if it stays inside the run folder, else None."""
    path = (folder / name).resolve()
    return path if path.is_relative_to(folder.resolve()) else None


def _artifact(artifacts: Mapping[str, str], keys: Iterable[str], default: str, folder: Path) -> str:
    name = next((artifacts[k] for k in keys if k in artifacts), default)
    path = _inside(folder, name)
    return name if path is not None and path.is_file() else ""


def _hash(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _manifest(folder: Path, run_id: str) -> list[dict[str, Any]]:
    """Every regular file in the folder, recursively, with size and SHA-256."""
    rows = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            path = Path(root) / name
            if path.is_symlink() or not path.is_file():
                continue
            rows.append(
                {
                    C.RUN_ID: run_id,
                    C.FOLDER: folder.name,
                    C.PATH: path.relative_to(folder).as_posix(),
                    C.BYTES: path.stat().st_size,
                    C.SHA256: _hash(path),
                }
            )
    return rows


def _nested(data: Mapping[str, Any], run_id: str, started: datetime) -> tuple[list, list]:
    findings = [
        {
            C.RUN_ID: run_id,
            C.FINDING_ID: str(f.get("id", "?")),
            C.FINDING_SECTION: str(f.get("section", "")),
            C.SUMMARY: str(f.get("summary", "")),
            C.EVIDENCE: str(f.get("evidence", "")),
        }
        for f in data.get("findings") or []
        if isinstance(f, Mapping)
    ]
    steps = []
    for i, s in enumerate(data.get("steps") or []):
        if not isinstance(s, Mapping):
            continue
        try:
            at = _time(s.get("started_at"), "steps.started_at")
        except _Bad:
            at = None
        duration = s.get("duration_s")
        steps.append(
            {
                C.RUN_ID: run_id,
                C.STEP: str(s.get("name") or f"step {i + 1}"),
                C.STEP_OFFSET: (at - started).total_seconds() if at is not None else None,
                C.DURATION: float(duration) if isinstance(duration, int | float) else None,
                C.STEP_OK: bool(s.get("ok")),
                C.DETAIL: str(s.get("detail") or ""),
            }
        )
    return findings, steps


# ---------------------------------------------------------------- the runs folder


def _frame(rows: list[dict[str, Any]], columns: Iterable[str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(columns))


def load_runs(runs_dir: Path, known_scenarios: Iterable[str]) -> RunSet:
    """Read every run folder directly under ``runs_dir`` (hidden folders are ignored)."""
    known = set(known_scenarios)
    rows, findings, steps, manifest, skipped = [], [], [], [], []
    seen: dict[str, str] = {}
    folders = sorted(p for p in runs_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    for folder in folders:
        result = folder / RESULT_FILE
        if not result.is_file():
            skipped.append(Skipped(folder.name, "no result.json (unfinished or crashed run)"))
            continue
        try:
            data = json.loads(result.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            where = f" at line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else ""
            skipped.append(Skipped(folder.name, f"result.json is not valid JSON{where}"))
            continue
        try:
            row = _record(data, known)
        except _Bad as exc:
            skipped.append(Skipped(folder.name, str(exc)))
            continue
        if row[C.RUN_ID] in seen:
            reason = f"run_id {row[C.RUN_ID]!r} already read from {seen[row[C.RUN_ID]]}"
            skipped.append(Skipped(folder.name, reason))
            continue
        seen[row[C.RUN_ID]] = folder.name
        artifacts = data["artifacts"]
        absent = sorted(
            k for k, v in artifacts.items() if (p := _inside(folder, v)) is None or not p.exists()
        )
        files = _manifest(folder, row[C.RUN_ID])
        f_rows, s_rows = _nested(data, row[C.RUN_ID], row[C.STARTED])
        rows.append(
            {
                **row,
                C.FOLDER: folder.name,
                C.MISSING: ";".join(absent),
                C.RESULT_SHA: next(f[C.SHA256] for f in files if f[C.PATH] == RESULT_FILE),
                C.FINDING_IDS: ";".join(sorted({f[C.FINDING_ID] for f in f_rows})),
                C.HAS_STEPS: bool(s_rows),
                C.TIMELINE_FILE: _artifact(artifacts, ("timeline",), "timeline.csv", folder),
                C.LOAD_FILE: _artifact(
                    artifacts, ("load_per_second", "load"), "load_per_second.csv", folder
                ),
            }
        )
        findings += f_rows
        steps += s_rows
        manifest += files
    return RunSet(
        runs=_runs_frame(rows),
        findings=_frame(findings, _FINDING_COLS),
        steps=_frame(steps, _STEP_COLS),
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
        )
        .sort_values([C.STARTED, C.RUN_ID], kind="stable")
        .reset_index(drop=True)
    )


# ---------------------------------------------------------------- per-second artifacts


def _read_csv(path: Path, needed: tuple[str, ...]) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise ValueError("the file is empty") from None
    lacking = [c for c in needed if c not in frame.columns]
    if lacking:
        raise ValueError(f"lacks column {', '.join(lacking)}")
    if frame.empty:
        raise ValueError("no rows")
    return frame.loc[:, list(needed)]


def load_timelines(runs_dir: Path, runs: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    """Observer samples of the given runs as one frame; per run a note when unreadable."""
    parts, problems = [], {}
    for run in runs.itertuples(index=False):
        name = getattr(run, C.TIMELINE_FILE)
        run_id = getattr(run, C.RUN_ID)
        if not name:
            problems[run_id] = "timeline.csv is missing"
            continue
        try:
            frame = _read_csv(runs_dir / getattr(run, C.FOLDER) / name, C.TIMELINE_COLUMNS)
            frame = frame.assign(
                **{
                    C.T_REL: pd.to_numeric(frame[C.T_REL], errors="raise").astype("float64"),
                    C.OK: pd.to_numeric(frame[C.OK], errors="raise").astype("int8"),
                    C.LATENCY: pd.to_numeric(frame[C.LATENCY], errors="coerce"),
                    C.SERVICE: frame[C.SERVICE].astype(str),
                }
            )
        except (ValueError, OSError, pd.errors.ParserError) as exc:
            problems[run_id] = f"timeline.csv is unreadable: {exc}"
            continue
        parts.append(frame.assign(**{C.RUN_ID: run_id}))
    columns = [C.RUN_ID, *C.TIMELINE_COLUMNS]
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
    return frame.loc[:, columns], problems


RECONCILIATION_FILE = "reconciliation.csv"
RECONCILIATION_COLUMNS = ["payment_id", "client", "amount", "sent_at"]


def load_reconciliation(runs_dir: Path, runs: pd.DataFrame) -> pd.DataFrame:
    """The QR payments each PGW region drill lists for manual reconciliation (runbook 1.5):
    acknowledged during the outage window and missing after the restore."""
    parts = []
    for run in runs.itertuples(index=False):
        path = runs_dir / getattr(run, C.FOLDER) / RECONCILIATION_FILE
        if not path.is_file():
            continue
        try:
            raw = pd.read_csv(path, dtype=str, keep_default_na=False)
        except (OSError, pd.errors.ParserError, ValueError):
            continue
        if set(RECONCILIATION_COLUMNS) <= set(raw.columns):
            parts.append(
                raw.loc[:, RECONCILIATION_COLUMNS].assign(**{C.RUN_ID: getattr(run, C.RUN_ID)})
            )
    columns = [C.RUN_ID, *RECONCILIATION_COLUMNS]
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
    return frame.loc[:, columns]


def load_traffic(runs_dir: Path, runs: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    """locust's per-second totals of the given runs, with seconds since injection."""
    parts, problems = [], {}
    for run in runs.itertuples(index=False):
        name = getattr(run, C.LOAD_FILE)
        run_id = getattr(run, C.RUN_ID)
        if not name:
            problems[run_id] = "load_per_second.csv is missing"
            continue
        zero = getattr(run, C.INJECTED)
        zero = getattr(run, C.STARTED) if pd.isna(zero) else zero
        try:
            raw = _read_csv(runs_dir / getattr(run, C.FOLDER) / name, C.LOAD_COLUMNS)
            frame = raw.assign(
                **{
                    C.T_UTC: pd.to_datetime(raw[C.T_UTC], utc=True, format="ISO8601"),
                    **{
                        c: pd.to_numeric(raw[c], errors="raise").astype("float64")
                        for c in (C.REQUESTS, C.FAILURES, C.P95)
                    },
                }
            ).pipe(_aggregated)
            frame = frame.assign(**{C.T_REL: (frame[C.T_UTC] - zero).dt.total_seconds()})
        except (ValueError, TypeError, OSError, pd.errors.ParserError) as exc:
            problems[run_id] = f"load_per_second.csv is unreadable: {exc}"
            continue
        parts.append(frame.assign(**{C.RUN_ID: run_id}))
    columns = [C.RUN_ID, C.T_REL, C.REQUESTS, C.FAILURES, C.P95]
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
    return frame.loc[:, columns], problems


def _aggregated(frame: pd.DataFrame) -> pd.DataFrame:
    """locust's ``Aggregated`` rows; summed per second when a file has none."""
    agg = frame.loc[frame[C.NAME] == "Aggregated"]
    if agg.empty:
        agg = frame.groupby(C.T_UTC, as_index=False).agg(
            **{
                C.REQUESTS: (C.REQUESTS, "sum"),
                C.FAILURES: (C.FAILURES, "sum"),
                C.P95: (C.P95, "max"),
            }
        )
    return agg.sort_values(C.T_UTC).loc[:, [C.T_UTC, C.REQUESTS, C.FAILURES, C.P95]]


__all__ = ["Skipped", "RunSet", "load_runs", "load_timelines", "load_traffic", "RESULT_FILE"]
