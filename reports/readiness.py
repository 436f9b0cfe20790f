"""The report's "Readiness between drills" section, from ``runs/checks/<UTC>.json``.

Per check: the share of the quarter's check runs it passed (a warning passes; "not checked"
runs are left out of the share), and its longest failing stretch (from the first failing run
to the next run it passed). Then the **RPO-readiness curve**: the DR data age each run
measured (``dr.*.data_age``) against the RPO target, so the RPO is judged over the whole
quarter, not only on drill days.
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from mpac_drill.readiness.history import load_checks  # noqa: E402
from reports.document import Doc, Image, Para, Table  # noqa: E402

TITLE = "Readiness between drills"
_COLUMNS = ["at", "target", "id", "scenario", "section", "what", "status", "value", "threshold"]


def check_frame(runs_dir: Path, quarter: str) -> tuple[pd.DataFrame, list[str]]:
    """One row per (check run, check) of ``quarter`` (``YYYY-QN``), oldest first."""
    runs, problems = load_checks(runs_dir)
    records = [
        {"at": pd.Timestamp(doc["started_at"]), "target": doc["target"], **r}
        for doc in runs
        for r in doc["rows"]
    ]
    frame = (
        pd.DataFrame.from_records(records, columns=_COLUMNS)
        if records
        else pd.DataFrame(columns=_COLUMNS)
    )
    if frame.empty:
        return frame, problems
    frame = frame.assign(at=pd.to_datetime(frame["at"], utc=True))
    at = frame["at"].dt
    in_q = at.year.astype(str) + "-Q" + at.quarter.astype(str)
    return frame.loc[in_q == quarter].sort_values(["at", "id"]).reset_index(drop=True), problems


def per_check(frame: pd.DataFrame) -> pd.DataFrame:
    """Per check id: runs, checked runs, share passed, longest failing stretch (hours)."""
    out = []
    for check_id, rows in frame.groupby("id", sort=True):
        checked = rows.loc[rows["status"] != "not checked"]
        passed = int((checked["status"] != "fail").sum())
        out.append(
            {
                "id": check_id,
                "section": rows["section"].iloc[-1],
                "what": rows["what"].iloc[-1],
                "runs": len(rows),
                "checked": len(checked),
                "passed_share": passed / len(checked) if len(checked) else None,
                "longest_fail_h": longest_failing_stretch(checked) / 3600,
                "last": rows["status"].iloc[-1],
            }
        )
    return pd.DataFrame(out)


def longest_failing_stretch(rows: pd.DataFrame) -> float:
    """Seconds from the first run of a failing streak to the next run that passed (or the
    streak's last run when none has passed since)."""
    longest, start, last_fail = 0.0, None, None
    for at, status in zip(rows["at"], rows["status"], strict=True):
        if status == "fail":
            start = at if start is None else start
            last_fail = at
        elif start is not None:
            longest = max(longest, (at - start).total_seconds())
            start = None
    if start is not None and last_fail is not None:
        longest = max(longest, (last_fail - start).total_seconds())
    return longest


def rpo_curve(frame: pd.DataFrame, quarter: str) -> bytes | None:
    """The DR data age of every run against its threshold, one line per database."""
    ages = frame.loc[frame["id"].str.startswith("dr.") & frame["value"].notna()]
    if ages.empty:
        return None
    fig, ax = plt.subplots(figsize=(8, 3))
    for check_id, rows in ages.groupby("id", sort=True):
        ax.plot(rows["at"], rows["value"] / 60, marker=".", label=str(check_id))
    limit = _threshold_min(ages)
    if limit is not None:
        ax.axhline(limit, color="red", linestyle="--", label=f"RPO target {limit:g} min")
    ax.set_ylabel("DR data age (min)")
    ax.set_title(f"RPO readiness {quarter}: the data a region loss would cost")
    ax.legend(loc="upper left", fontsize=7)
    fig.autofmt_xdate()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def _threshold_min(ages: pd.DataFrame) -> float | None:
    text = str(ages["threshold"].iloc[-1] or "")
    number = text.removeprefix("≤ ").split(" ")[0]
    try:
        value = float(number)
    except ValueError:
        return None
    return value if "min" in text else value / 60 if text.endswith(" s") else value * 60


def add_section(doc: Doc, quarter: str, runs_dir: Path) -> None:
    """Append "Readiness between drills" to ``doc`` (the report builder's one hook)."""
    doc.heading(2, TITLE)
    frame, problems = check_frame(runs_dir, quarter)
    if frame.empty:
        doc.add(Para((f"No `mpac-drill check` runs stored for {quarter} (runs/checks/).",)))
        return
    runs = frame["at"].nunique()
    doc.add(
        Para(
            (
                f"{runs} check runs from {frame['at'].min():%Y-%m-%d %H:%M} to "
                f"{frame['at'].max():%Y-%m-%d %H:%M} UTC on "
                f"{', '.join(sorted(frame['target'].unique()))}.",
            )
        )
    )
    table = per_check(frame)
    doc.add(
        Table(
            ["check", "§", "what", "runs", "passed", "longest failing stretch", "last"],
            [
                [
                    r["id"],
                    r["section"],
                    r["what"],
                    str(r["runs"]),
                    "-" if r["passed_share"] is None else f"{r['passed_share']:.0%}",
                    f"{r['longest_fail_h']:.1f} h",
                    r["last"],
                ]
                for r in table.to_dict("records")
            ],
            right={3, 4, 5},
        )
    )
    png = rpo_curve(frame, quarter)
    if png is not None:
        doc.add(Image(f"{quarter}-rpo-readiness.png", "RPO readiness curve", png))
    for line in problems:
        doc.add(Para((f"Not read: {line}",)))


__all__ = ["TITLE", "add_section", "check_frame", "longest_failing_stretch", "per_check"]
