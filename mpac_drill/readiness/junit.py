"""JUnit XML of a check run: one test case per check (a fail is a failure, "not checked" is
skipped, a warning passes with its figure in ``system-out``)."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any


def write_check_junit(document: dict[str, Any], path: Path) -> None:
    """Write ``document`` (a check run, as stored) to ``path`` atomically."""
    rows = document["rows"]
    suite = ET.Element(
        "testsuite",
        name=f"mpac-drill check {document['target']}",
        tests=str(len(rows)),
        failures=str(sum(r["status"] == "fail" for r in rows)),
        skipped=str(sum(r["status"] == "not checked" for r in rows)),
        errors="0",
        time=f"{document['duration_s']:.3f}",
        timestamp=str(document["started_at"]),
    )
    for r in rows:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"{r['scenario']}.§{r['section']}",
            name=f"{r['what']} [{r['component']}]",
        )
        text = f"{r['measured']} (threshold {r['threshold']}); evidence: {r['evidence']}"
        if r["status"] == "fail":
            ET.SubElement(case, "failure", message=text).text = r["fix"] or ""
        elif r["status"] == "not checked":
            ET.SubElement(case, "skipped", message=f"not checked: {r['evidence']}")
        else:
            ET.SubElement(case, "system-out").text = f"{r['status']}: {text}"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    root = ET.Element("testsuites", name="mpac-drill check")
    root.append(suite)
    tree = ET.ElementTree(root)
    tree.write(tmp, encoding="utf-8", xml_declaration=True)
    os.replace(tmp, path)


__all__ = ["write_check_junit"]
