"""Per-second artifacts of the charted runs (``timeline.csv``, ``load_per_second.csv``) and
the PGW drills' ``reconciliation.csv``, read as tidy frames.

Each file is opened with ``reports.folder.open_file`` (no link followed on the way); an
unreadable file is a note about its run, never fatal.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from reports import columns as C
from reports.folder import Refused, open_file

RECONCILIATION_FILE = "reconciliation.csv"
RECONCILIATION_COLUMNS = ["payment_id", "client", "amount", "sent_at"]
_UNREADABLE = (ValueError, TypeError, OSError, pd.errors.ParserError)  # Refused is a ValueError


def _read_csv(folder: Path, name: str, needed: tuple[str, ...]) -> pd.DataFrame:
    try:
        with open_file(folder, name) as fh:
            frame = pd.read_csv(fh)
    except pd.errors.EmptyDataError:
        raise ValueError("the file is empty") from None
    lacking = [c for c in needed if c not in frame.columns]
    if lacking:
        raise ValueError(f"lacks column {', '.join(lacking)}")
    if frame.empty:
        raise ValueError("no rows")
    return frame.loc[:, list(needed)]


def _reason(exc: BaseException) -> str:
    """An error as one line, without a path (``OSError`` names the file it opened)."""
    text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return " ".join(text.split())


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
            frame = _read_csv(runs_dir / getattr(run, C.FOLDER), name, C.TIMELINE_COLUMNS)
            frame = frame.assign(
                **{
                    C.T_REL: pd.to_numeric(frame[C.T_REL], errors="raise").astype("float64"),
                    C.OK: pd.to_numeric(frame[C.OK], errors="raise").astype("int8"),
                    C.LATENCY: pd.to_numeric(frame[C.LATENCY], errors="coerce"),
                    C.SERVICE: frame[C.SERVICE].astype(str),
                }
            )
        except _UNREADABLE as exc:
            problems[run_id] = f"timeline.csv is unreadable: {_reason(exc)}"
            continue
        parts.append(frame.assign(**{C.RUN_ID: run_id}))
    columns = [C.RUN_ID, *C.TIMELINE_COLUMNS]
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
    return frame.loc[:, columns], problems


def load_reconciliation(runs_dir: Path, runs: pd.DataFrame) -> pd.DataFrame:
    """The QR payments each PGW region drill lists for manual reconciliation (runbook 1.5):
    acknowledged during the outage window and missing after the restore."""
    parts = []
    for run in runs.itertuples(index=False):
        try:
            with open_file(runs_dir / getattr(run, C.FOLDER), RECONCILIATION_FILE) as fh:
                raw = pd.read_csv(fh, dtype=str, keep_default_na=False)
        except (FileNotFoundError, Refused, *_UNREADABLE):
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
            raw = _read_csv(runs_dir / getattr(run, C.FOLDER), name, C.LOAD_COLUMNS)
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
        except _UNREADABLE as exc:
            problems[run_id] = f"load_per_second.csv is unreadable: {_reason(exc)}"
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


__all__ = [
    "load_timelines",
    "load_traffic",
    "load_reconciliation",
    "RECONCILIATION_FILE",
    "RECONCILIATION_COLUMNS",
]
