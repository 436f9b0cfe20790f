"""The quarter's runs as CSV, one row per run, figures at full precision.

``outcome`` is the run as the report counts it: ``met``, ``missed``, ``inconclusive`` (the
fault took effect but a figure could not be measured: neither met nor missed; its RTO or RPO
verdict and margin are then empty) or ``not judged`` (aborted, failed, or no fault took
effect). Schema 1 results have no recorded outcome: theirs is derived the same way, from the
figures and the catalog's targets. ``outcome_reason`` says why a run is inconclusive (each
inconclusive figure with the run's reason) or not judged.

Text from run folders cannot become a formula (CSV injection, OWASP): a text cell that
starts with ``=``, ``+``, ``-``, ``@``, a tab or a line break, even after spaces, gets a
leading ``'``; numbers stay numbers. A carriage return in text becomes a line feed, so the
cell is quoted and cannot split the row.
"""

from __future__ import annotations

from typing import Any

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
    C.OUTCOME,
    C.OUTCOME_REASON,
    C.FINDING_IDS,
    C.MISSING,
    C.USER,
    C.HOST,
    C.VERSION,
    C.COMMIT,
    C.RESULT_SHA,
)


#: What a spreadsheet reads as the start of a formula (OWASP), and full-width look-alikes.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def defuse(value: Any) -> Any:
    """A text cell a spreadsheet shows as text, never runs; anything else as it is."""
    if not isinstance(value, str):
        return value
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    return f"'{value}" if value.lstrip(" ").startswith(FORMULA_START) else value


def render_csv(runs_q: pd.DataFrame) -> str:
    """Times as ISO-8601 UTC with ``Z``; empty cells for null; ``\\n`` line ends."""
    verdicts = [run_verdict(r) for r in runs_q.to_dict("records")]
    frame = runs_q.assign(
        **{
            **{c: runs_q[c].map(F.iso).astype(str) for c in (C.STARTED, C.ENDED, C.INJECTED)},
            VERDICT_COLUMN: pd.Series(verdicts, index=runs_q.index, dtype=str),
        }
    ).loc[:, list(CSV_COLUMNS)]
    text = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    return frame.assign(**{c: frame[c].map(defuse) for c in text}).to_csv(
        index=False, lineterminator="\n"
    )


__all__ = ["render_csv", "defuse", "CSV_COLUMNS", "FORMULA_START"]
