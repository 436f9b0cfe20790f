"""The report's sections, except the per-drill ones (``drills.py``), as document blocks."""

from __future__ import annotations

import pandas as pd

from reports import columns as C
from reports import formatting as F
from reports.controls import CONTROLS, RUNBOOK_FINDINGS, SECTION_CONTROLS
from reports.data import ReportData
from reports.document import (
    Bullets,
    Code,
    Details,
    Doc,
    Link,
    Mono,
    Para,
    Strong,
    Table,
    Text,
    slug,
)
from reports.metrics import Compliance, quarter_bounds, quarters_back
from reports.metrics import quarter_of as calendar_quarter

#: Above this many artifact files the manifest is left to the ``.sha256`` file alone.
MANIFEST_INLINE_MAX = 400


def answers(*controls: str) -> Para:
    """The line under a section heading naming the audit controls it answers."""
    spans: list = ["Answers: "]
    for i, control in enumerate(controls):
        spans += ["; "] * (i > 0) + [Strong(control)]
    return Para((*spans, "."))


def _counted(series: pd.Series) -> str:
    counts = series.value_counts().sort_index()
    return ", ".join(f"{k} ({v} run{'s' * (v != 1)})" for k, v in counts.items())


def header(doc: Doc, data: ReportData, manifest_file: str) -> None:
    q, runs = data.quarter, data.runs_q
    start, end = quarter_bounds(q)
    cat = data.catalog
    doc.heading(1, f"DR drill report {q}")
    doc.add(
        Para(
            (
                "MPAC Disaster Recovery Runbook drills of ",
                Strong(q),
                ", built only from the run folders under ",
                Mono(f"{data.runs_dir_name}/"),
                " (each run's ",
                Mono("result.json"),
                " and artifacts). Targets come from ",
                Mono("experiments/catalog.yaml"),
                "; the runbook's objectives are RTO ",
                F.human(cat.global_rto_s),
                " and RPO ",
                F.human(cat.global_rpo_s),
                ".",
            )
        )
    )
    if data.no_runs:
        doc.add(
            Para(
                (
                    Strong("No runs:"),
                    f" no usable run folder counts in {q} (run for it, or with a ",
                    Mono("started_at"),
                    " in it). Every scheduled scenario below is listed as not run.",
                )
            )
        )
    who = (runs[C.USER] + "@" + runs[C.HOST]) if not runs.empty else pd.Series(dtype=str)
    harness = runs[C.VERSION] + " @ " + runs[C.COMMIT] if not runs.empty else who
    rows: list[list[Text]] = [
        [
            "Quarter",
            f"{q} ({start:%Y-%m-%d} to {end:%Y-%m-%d} UTC; each run counts in the "
            "quarter it was run for, else in that of its started_at)",
        ],
        ["Target(s)", _counted(runs[C.TARGET]) or F.DASH],
        [
            "Drill dates",
            f"{F.when(runs[C.STARTED].min())} to {F.when(runs[C.ENDED].max())}"
            if not runs.empty
            else F.DASH,
        ],
        ["Run by (user@host)", _counted(who) or F.DASH],
        ["Harness (version @ git commit)", _counted(harness) or F.DASH],
        [
            "Runs",
            f"{len(runs)} this quarter, {len(data.judged)} in all quarters, "
            f"{len(data.skipped)} folder(s) skipped",
        ],
        [
            "Report as of",
            (
                f"{F.iso(data.as_of)} (end of the newest run; the report carries "
                "no build time, so a rebuild gives the same bytes)"
            )
            if data.as_of is not None
            else "no runs",
        ],
        [
            "Artifact manifest",
            (
                Mono(manifest_file),
                " (sha256sum format, paths relative to ",
                Mono(f"{data.runs_dir_name}/"),
                ")",
            ),
        ],
    ]
    outside = runs.loc[calendar_quarter(runs[C.STARTED]).ne(q)] if not runs.empty else runs
    if not outside.empty:
        rows.insert(
            3,
            [
                "Runs dated outside the quarter",
                (
                    f"{len(outside)} run(s) were run for {q} (",
                    Mono(f"mpac-drill quarter {q}"),
                    ") on dates outside it: ",
                    ", ".join(
                        f"{r[C.RUN_ID]} on {F.when(r[C.STARTED])}"
                        for r in outside.head(5).to_dict("records")
                    ),
                    ", ..." if len(outside) > 5 else "",
                ),
            ],
        )
    doc.add(Table(["Report", ""], rows))


def controls(doc: Doc) -> None:
    doc.heading(2, "Audit controls")
    doc.add(
        Bullets([(Strong(c), f": {text}.") for c, text in CONTROLS.items()]),
        Table(
            ["Section", "Answers", "What it shows"],
            [
                [(Link(name, f"#{slug(name)}"),), ", ".join(cs), what]
                for name, cs, what in SECTION_CONTROLS
            ],
        ),
    )


def _runs_cell(row: dict) -> str:
    n, done, unsure = row[C.N_RUNS], row[C.N_COMPLETED], row[C.N_INCONCLUSIVE]
    notes = [f"{done} completed"] * (n != done) + [f"{unsure} inconclusive"] * bool(unsure)
    return f"{n} ({', '.join(notes)})" if notes else str(n)


def compliance_word(comp: Compliance) -> str:
    """``compliant``; ``not shown compliant: N drill(s) inconclusive`` when nothing was missed
    but a drill is inconclusive; else ``NOT compliant`` (naming inconclusive drills too)."""
    unsure = len(comp.inconclusive)
    if comp.compliant:
        return "compliant"
    if unsure and not comp.missed and not comp.not_run:
        return f"not shown compliant: {unsure} drill(s) inconclusive"
    return "NOT compliant" + (f"; {unsure} drill(s) inconclusive" if unsure else "")


def _run_counts(comp: Compliance) -> str:
    n = {o: comp.runs.get(o, 0) for o in (C.MET, C.MISSED, C.INCONCLUSIVE, C.NOT_JUDGED)}
    return (
        f"{n[C.MET]} met, {n[C.MISSED]} missed a target, {n[C.INCONCLUSIVE]} inconclusive, "
        f"{n[C.NOT_JUDGED]} not judged (aborted or failed)"
    )


def _target_cell(value: float, declared: float | None) -> str:
    text = F.target(value)
    return f"{text}, global" if declared is None and text != "none" else text


def summary(doc: Doc, data: ReportData) -> None:
    cat, comp = data.catalog, data.compliance
    doc.heading(2, "Compliance summary")
    doc.add(answers("SOC 2 A1.3"))
    verdict = compliance_word(comp)
    doc.add(
        Para(
            (
                Strong(
                    f"Overall: {comp.met} of {comp.scenarios} scenarios met both targets "
                    f"({F.percent(comp.share)}): {verdict}."
                ),
                " A scenario meets its targets when it has at least one completed run and "
                "every completed run recovered within the RTO target and lost no more than "
                "the RPO target; a scheduled scenario without a completed run does not.",
            )
        )
    )
    doc.add(
        Para(
            (
                f"Runs this quarter: {_run_counts(comp)}. ",
                Strong("Inconclusive"),
                " means the fault took effect but a figure could not be measured (the run "
                "says why): it counts neither as met nor as missed, is left out of the RTO "
                "and RPO figures, and a scenario with such a run and no missed target is "
                "inconclusive, not shown to meet its targets.",
            )
        )
    )
    doc.add(
        Para(
            (
                "Against the runbook's objectives (RTO ",
                F.human(cat.global_rto_s),
                ", RPO ",
                F.human(cat.global_rpo_s),
                "): ",
                Strong(f"{comp.within_objectives} of {comp.scenarios}"),
                " scenarios stayed within both (worst run).",
            )
        )
    )
    rows = []
    for r in data.summary.to_dict("records"):
        s = cat.get(r[C.SCENARIO])
        lost = (
            F.DASH
            if pd.isna(r[C.LOST_TOTAL])
            else f"{F.count(r[C.LOST_TOTAL])} of {F.count(r[C.ACKED_TOTAL])}"
        )
        verdict_cell = {C.MISSED: Strong("MISSED"), C.INCONCLUSIVE: Strong(C.INCONCLUSIVE)}.get(
            r[C.VERDICT], r[C.VERDICT]
        )
        rows.append(
            [
                r[C.SCENARIO],
                r[C.SECTION],
                _target_cell(r[C.RTO_TARGET], s.rto_s),
                F.seconds(r[C.RTO_MEDIAN]),
                F.seconds(r[C.RTO_WORST]),
                _target_cell(r[C.RPO_TARGET], s.rpo_s),
                F.seconds(r[C.RPO_WORST]),
                lost,
                _runs_cell(r),
                (verdict_cell,) if isinstance(verdict_cell, Strong) else verdict_cell,
                r[C.TARGETS] or F.DASH,
            ]
        )
    doc.add(
        Table(
            [
                "Scenario",
                "Runbook",
                "RTO target",
                "RTO median",
                "RTO worst",
                "RPO target",
                "RPO worst",
                "Lost writes (of acked)",
                "Runs",
                "Verdict",
                "Target(s)",
            ],
            rows,
            right={3, 4, 6, 7, 8},
        )
    )
    doc.add(
        Para(
            "RTO and RPO figures are over completed runs; a run that never recovered "
            "counts as an infinite RTO, an inconclusive figure not at all. Target(s) "
            'names where the runs ran (sandbox or an AWS target). "global" marks a '
            "scenario without a target of its own, bounded by the runbook's objective."
        )
    )


def coverage(doc: Doc, data: ReportData) -> None:
    window = quarters_back(data.quarter, 4)
    cov = data.coverage
    tested = cov.loc[cov[C.QUARTER].ne("")]
    doc.heading(2, "12-month coverage")
    doc.add(answers("PCI DSS 12.10.2"))
    doc.add(
        Para(
            (
                f"Scenarios with a completed run in {window[0]} to {window[-1]}: ",
                Strong(f"{len(tested)} of {len(cov)}"),
                ".",
            )
        )
    )
    doc.add(
        Table(
            ["Scenario", "Latest quarter with a completed run"],
            [
                [s, q or "not tested in 12 months"]
                for s, q in zip(cov[C.SCENARIO], cov[C.QUARTER], strict=True)
            ],
        )
    )


def violations(doc: Doc, data: ReportData) -> None:
    doc.heading(2, "Violations")
    doc.add(answers("SOC 2 A1.3"))
    v = data.violations
    if v.empty:
        doc.add(Para("None: every scheduled scenario ran and met its targets."))
        return
    doc.add(
        Bullets(
            [
                (
                    Strong(f"{r[C.SCENARIO]}: {r[C.KIND]}."),
                    " Evidence: ",
                    r[C.EVIDENCE],
                    ". ",
                    Strong("Follow-up:"),
                    f" {r[C.FOLLOW_UP]}.",
                )
                for r in v.to_dict("records")
            ]
        )
    )


def findings(doc: Doc, data: ReportData, max_evidence: int = 5) -> None:
    doc.heading(2, "Runbook findings")
    doc.add(answers("PCI DSS 12.10.2"))
    doc.add(
        Para(
            "Claims of the runbook that a drill can confirm or refute "
            "(RUNBOOK-FINDINGS.md), with the runs of this quarter that exposed them."
        )
    )
    quarter_of = data.judged.set_index(C.RUN_ID)[C.QUARTER]
    f = data.findings.assign(**{C.QUARTER: lambda d: d[C.RUN_ID].map(quarter_of)})
    this_q = f.loc[f[C.QUARTER].eq(data.quarter)]
    static = {x.id: x for x in RUNBOOK_FINDINGS}
    ids = list(static) + sorted(set(f[C.FINDING_ID]) - set(static))
    rows = []
    for fid in ids:
        here, ever = this_q.loc[this_q[C.FINDING_ID].eq(fid)], f.loc[f[C.FINDING_ID].eq(fid)]
        if not here.empty:
            status = f"exposed by {here[C.RUN_ID].nunique()} run(s)"
        elif not ever.empty:
            status = f"not exercised this quarter (last: {ever[C.QUARTER].max()})"
        else:
            status = "not yet exercised"
        known = static.get(fid)
        section = known.section if known else (ever[C.FINDING_SECTION].iloc[0] or F.DASH)
        claim = known.claim if known else ever[C.SUMMARY].iloc[0]
        rows.append([fid, section, claim, status])
    doc.add(Table(["Finding", "Runbook", "The runbook says", "This quarter"], rows))
    for fid, group in this_q.groupby(C.FINDING_ID, sort=True):
        latest = group.iloc[::-1].head(max_evidence)
        items: list = [
            (
                Mono(r[C.RUN_ID]),
                f": {r[C.SUMMARY]}",
                *((" Evidence: ", r[C.EVIDENCE]) if r[C.EVIDENCE] else ()),
            )
            for r in latest.to_dict("records")
        ]
        if len(group) > max_evidence:
            items.append(
                f"and {len(group) - max_evidence} more run(s), listed in the CSV (column findings)"
            )
        doc.heading(3, f"{fid} evidence")
        doc.add(Bullets(items))


def skipped(doc: Doc, data: ReportData) -> None:
    doc.heading(2, "Skipped run folders")
    if not data.skipped:
        doc.add(Para("None: every folder under the runs folder was usable."))
        return
    doc.add(
        Para(
            "Folders that could not be used, with the reason. Their figures are in no "
            "table of this report."
        )
    )
    doc.add(Table(["Folder", "Reason"], [[(Mono(s.folder),), s.reason] for s in data.skipped]))


def manifest_text(data: ReportData) -> str:
    """The manifest in ``sha256sum`` format, paths relative to the runs folder."""
    m = data.manifest
    lines = (m[C.SHA256] + "  " + m[C.FOLDER] + "/" + m[C.PATH]).tolist()
    return "".join(f"{line}\n" for line in lines)


def appendix(doc: Doc, data: ReportData, manifest_file: str, manifest_sha: str) -> None:
    doc.heading(2, "Appendix: run folders and artifact manifest")
    doc.add(answers("SOC 2 A1.3", "PCI DSS 12.10.2"))
    runs = data.judged
    files = data.manifest.groupby(C.RUN_ID).size()
    doc.add(
        Para(
            (
                "Every run folder this report used: the quarter's runs and, for the trend, "
                "those of other quarters. Check the evidence with ",
                Mono(f"cd {data.runs_dir_name} && sha256sum -c {manifest_file}"),
                f" ({len(data.manifest)} files; SHA-256 of {manifest_file}: ",
                Mono(manifest_sha),
                ").",
            )
        )
    )
    doc.add(
        Table(
            [
                "Folder",
                "Quarter",
                "Scenario",
                "Status",
                "Files",
                "Missing artifacts",
                "result.json SHA-256",
            ],
            [
                [
                    (Mono(r[C.FOLDER]),),
                    r[C.QUARTER],
                    r[C.SCENARIO],
                    r[C.STATUS],
                    str(files.get(r[C.RUN_ID], 0)),
                    r[C.MISSING].replace(";", ", ") or F.DASH,
                    (Mono(r[C.RESULT_SHA]),),
                ]
                for r in runs.to_dict("records")
            ],
            right={4},
        )
    )
    if 0 < len(data.manifest) <= MANIFEST_INLINE_MAX:
        doc.add(Details(f"Manifest ({len(data.manifest)} files)", [Code(manifest_text(data))]))
    elif len(data.manifest):
        doc.add(
            Para(
                (
                    "The manifest has more than ",
                    str(MANIFEST_INLINE_MAX),
                    " files; it is in ",
                    Mono(manifest_file),
                    " only.",
                )
            )
        )


__all__ = [
    "compliance_word",
    "header",
    "controls",
    "summary",
    "coverage",
    "violations",
    "findings",
    "skipped",
    "manifest_text",
    "appendix",
    "answers",
    "MANIFEST_INLINE_MAX",
]
