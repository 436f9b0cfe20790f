"""JUnit XML for the release gate: one test case per measured verdict, so CI shows which
target a build missed and by how much.

Layout (one ``<testsuite>`` per drill run, named by its run id)::

    <testsuites name="mpac-drill gate" tests=.. failures=.. errors=.. skipped=..>
      <testsuite name="20261127T143501Z-rds-failover-staging" timestamp=.. time=..>
        <properties> run_id, target, scenario, runbook_section, status, passed </properties>
        <testcase classname="rds-failover" name="rto_s">          a met target
          <system-out>rto_s = 42.0 s, target 300 s: met (margin +258.0 s)</system-out>
        <testcase classname="rds-failover" name="rpo_s">          a missed target
          <failure message="rpo_s = 960.0 s, target 900 s: MISSED (margin -60.0 s)"/>
        <testcase classname="rds-failover" name="drill">          a failed or aborted run
          <error message="aborted: stop condition ..." type="aborted"/>
      <testsuite name="not run">                                   scheduled, could not run
        <testcase classname="region-failover" name="drill"><skipped message=".."/>

The report is never greener than the runs: a run that did not pass although every
verdict did (the experiment deviated) gets a failed ``drill`` case.

Example::

    write_junit([json.loads(p.read_text()) for p in runs], Path("gate-junit.xml"),
                not_run={"region-failover": "no experiment yet"})
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

#: The test case standing for a run as a whole (its status), next to one per verdict.
DRILL_CASE = "drill"
NOT_RUN_SUITE = "not run"
#: the gate's judgements over repeated runs and against a baseline
JUDGED_SUITE = "judged"
# XML 1.0 forbids most control characters even escaped; a reason may carry them (ANSI, NUL).
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def write_junit(
    results: list[dict[str, Any]],
    path: Path,
    *,
    suite_name: str = "mpac-drill gate",
    not_run: Mapping[str, str] | None = None,
    judged: list[Mapping[str, Any]] | None = None,
    runs_informational: bool = False,
) -> None:
    """Write the runs' verdicts as JUnit XML to ``path`` (atomically: temp file, rename).

    :param results: ``result.json`` documents (see ``docs/run-folder.md``).
    :param path: the XML file; its folder is created when missing.
    :param suite_name: the name of the ``<testsuites>`` element, as CI shows it.
    :param not_run: scheduled scenarios that could not run → why; each a skipped case.
    :param judged: the gate's judgements over repeated runs and against a baseline
        (``scenario``, ``target``, ``name``, ``passed``, ``message``, ``skipped``): one suite
        ``judged``, a failure per judgement not passed, its message naming the figures and
        the run sets.
    :param runs_informational: a run's own missed verdict is shown, not failed (the
        judged statistic decides); a run that failed or aborted is still an error.
    """
    root = ET.Element("testsuites", name=_text(suite_name))
    for result in results:
        root.append(_run_suite(result, informational=runs_informational))
    if judged:
        root.append(_judged_suite(judged))
    if not_run:
        root.append(_not_run_suite(not_run))
    _count(root, root.findall("testsuite"))
    time_s = sum(float(s.get("time", "0")) for s in root.findall("testsuite"))
    root.set("time", f"{time_s:.3f}")
    ET.indent(root)
    _write_atomically(ET.ElementTree(root), Path(path))


# ---------------------------------------------------------------- building


def _judged_suite(judged: list[Mapping[str, Any]]) -> ET.Element:
    suite = ET.Element("testsuite", name=JUDGED_SUITE, time="0.000")
    for j in judged:
        case = _case(suite, str(j.get("scenario") or "unknown-scenario"), str(j.get("name")))
        message = str(j.get("message") or "")
        if j.get("skipped"):
            ET.SubElement(case, "skipped", message=_text(message))
        elif j.get("passed") is True:
            ET.SubElement(case, "system-out").text = _text(message)
        else:
            kind = "Regressed" if "regression" in str(j.get("name")) else "TargetMissed"
            failure = ET.SubElement(case, "failure", message=_text(message), type=kind)
            failure.text = _text(f"{j.get('scenario')} on {j.get('target', '?')}: {message}")
    _count(suite, [suite])
    return suite


def _run_suite(result: Mapping[str, Any], *, informational: bool = False) -> ET.Element:
    scenario = str(result.get("scenario") or "unknown-scenario")
    run_id = str(result.get("run_id") or scenario)
    status = str(result.get("status") or "unknown")
    suite = ET.Element("testsuite", name=_text(run_id))
    if result.get("started_at"):
        suite.set("timestamp", _text(str(result["started_at"])))
    suite.set("time", f"{_duration_s(result):.3f}")
    host = (result.get("harness") or {}).get("host")
    if host:
        suite.set("hostname", _text(str(host)))
    props = ET.SubElement(suite, "properties")
    for name, value in (
        ("run_id", run_id),
        ("target", result.get("target")),
        ("scenario", scenario),
        ("runbook_section", result.get("runbook_section")),
        ("status", status),
        ("passed", result.get("passed")),
    ):
        if value is not None:
            shown = str(value).lower() if isinstance(value, bool) else str(value)
            ET.SubElement(props, "property", name=name, value=_text(shown))

    verdicts = [v for v in result.get("verdicts") or [] if isinstance(v, Mapping)]
    missed = 0
    for verdict in verdicts:
        case = _case(suite, scenario, str(verdict.get("metric") or "unnamed-metric"))
        message = _verdict_message(verdict)
        listed_only = verdict.get("outcome") == "informational"  # a non-gating detection
        if verdict.get("passed") is True or informational or listed_only:
            ET.SubElement(case, "system-out").text = _text(message)
        else:
            missed += 1
            failure = ET.SubElement(case, "failure", message=_text(message), type="TargetMissed")
            failure.text = _text(
                f"{scenario} on {result.get('target', '?')} (run {run_id}): {message}"
            )

    reason = str(result.get("reason") or "").strip()
    if status in ("failed", "aborted"):
        case = _case(suite, scenario, DRILL_CASE)
        message = f"{status}: {reason or 'no reason recorded'}"
        ET.SubElement(case, "error", message=_text(message), type=status).text = _text(
            f"run {run_id} {message}"
        )
    elif status != "completed":
        case = _case(suite, scenario, DRILL_CASE)
        ET.SubElement(
            case, "error", message=_text(f"unknown run status {status!r}"), type="unknown"
        )
    elif result.get("passed") is not True and not missed and not informational:
        case = _case(suite, scenario, DRILL_CASE)
        why = reason or (
            "no verdict was recorded"
            if not verdicts
            else "the experiment deviated from its steady state"
        )
        ET.SubElement(
            case, "failure", message=_text(f"the run did not pass: {why}"), type="DrillFailed"
        )
    elif not verdicts:
        case = _case(suite, scenario, DRILL_CASE)
        ET.SubElement(case, "system-out").text = "completed; no target to judge"
    _count(suite, [suite])
    return suite


def _not_run_suite(not_run: Mapping[str, str]) -> ET.Element:
    suite = ET.Element("testsuite", name=NOT_RUN_SUITE, time="0.000")
    for scenario, reason in not_run.items():
        case = _case(suite, str(scenario), DRILL_CASE)
        ET.SubElement(case, "skipped", message=_text(f"not run: {reason}"))
    _count(suite, [suite])
    return suite


def _case(suite: ET.Element, classname: str, name: str) -> ET.Element:
    return ET.SubElement(
        suite, "testcase", classname=_text(classname), name=_text(name), time="0.000"
    )


def _count(element: ET.Element, suites: list[ET.Element]) -> None:
    """Set tests/failures/errors/skipped on ``element`` from the cases of ``suites``."""
    cases = [case for suite in suites for case in suite.findall("testcase")]
    element.set("tests", str(len(cases)))
    for kind, attr in (("failure", "failures"), ("error", "errors"), ("skipped", "skipped")):
        element.set(attr, str(sum(case.find(kind) is not None for case in cases)))


# ---------------------------------------------------------------- text


def _verdict_message(verdict: Mapping[str, Any]) -> str:
    """``rto_s = 412.0 s, target 300 s: MISSED (margin -112.0 s)``."""
    metric = str(verdict.get("metric") or "unnamed-metric")
    unit = " s" if metric.endswith("_s") else (" ms" if metric.endswith("_ms") else "")
    value, target = _number(verdict.get("value")), _number(verdict.get("target"))
    shown = "not measured" if value is None else f"{_figure(value)}{unit}"
    wanted = "no target" if target is None else f"target {_figure(target)}{unit}"
    outcome = "met" if verdict.get("passed") is True else "MISSED"
    text = f"{metric} = {shown}, {wanted}: {outcome}"
    margin = _number(verdict.get("margin"))
    if margin is None and value is not None and target is not None:
        # The catalog's targets are upper bounds; show target - value only when it agrees.
        margin = target - value if (target - value >= 0) == (outcome == "met") else None
    if margin is not None and not math.isinf(margin):
        text += f" (margin {margin:+.1f}{unit})"
    return text


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return None
    return float(value)


def _figure(value: float) -> str:
    if math.isinf(value):
        return "never" if value > 0 else "-inf"
    if value.is_integer():
        return f"{value:.0f}"
    return f"{value:.1f}" if abs(value) >= 1 else f"{value:.3f}"


def _duration_s(result: Mapping[str, Any]) -> float:
    try:
        started = datetime.fromisoformat(str(result["started_at"]))
        ended = datetime.fromisoformat(str(result["ended_at"]))
    except (KeyError, ValueError):
        return 0.0
    try:
        return max((ended - started).total_seconds(), 0.0)
    except TypeError:  # one naive, one aware
        return 0.0


def _text(value: str) -> str:
    return _XML_ILLEGAL.sub("\ufffd", value)


def _write_atomically(tree: ET.ElementTree, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            tree.write(fh, encoding="utf-8", xml_declaration=True)
            fh.write(b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; CI artifacts should be readable
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


__all__ = ["write_junit", "DRILL_CASE", "JUDGED_SUITE", "NOT_RUN_SUITE"]
