"""The quarter's runs as CSV, one row per run, figures at full precision."""

from __future__ import annotations

import pandas as pd

from reports import columns as C
from reports import formatting as F
from reports.drills import run_verdict

VERDICT_COLUMN = "verdict"
CSV_COLUMNS = (
    C.QUARTER,
    C.RUN_ID,
    C.FOLDER,
    C.SCENARIO,
    C.SECTION,
    C.TARGET,
    C.STATUS,
    C.REASON,
    C.STARTED,
    C.ENDED,
    C.INJECTED,
    C.DETECT,
    C.RTO,
    C.RTO_TARGET,
    C.RTO_MARGIN,
    C.RTO_OK,
    C.RPO,
    C.RPO_TARGET,
    C.RPO_MARGIN,
    C.RPO_OK,
    C.ACKED,
    C.LOST,
    C.REQUESTS,
    C.FAILURES,
    C.P95,
    C.REVOKED_S,
    C.TOKEN_LIFETIME_S,
    C.DUPLICATES,
    C.BYPASSED,
    C.PASSED,
    VERDICT_COLUMN,
    C.FINDING_IDS,
    C.MISSING,
    C.USER,
    C.HOST,
    C.VERSION,
    C.COMMIT,
    C.RESULT_SHA,
)


def render_csv(runs_q: pd.DataFrame) -> str:
    """Times as ISO-8601 UTC with ``Z``; empty cells for null; ``\\n`` line ends."""
    verdicts = [run_verdict(r) for r in runs_q.to_dict("records")]
    return (
        runs_q.assign(
            **{
                **{c: runs_q[c].map(F.iso).astype(str) for c in (C.STARTED, C.ENDED, C.INJECTED)},
                VERDICT_COLUMN: pd.Series(verdicts, index=runs_q.index, dtype=str),
            }
        )
        .loc[:, list(CSV_COLUMNS)]
        .to_csv(index=False, lineterminator="\n")
    )


__all__ = ["render_csv", "CSV_COLUMNS"]
