"""The history of ``mpac-drill check``: one ``runs/checks/<UTC stamp>.json`` per run,
written and read through ``contract/check-result.schema.json`` (a missing schema is an
error, an invalid file is refused in one line naming it)."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from mpac_drill import PROJECT_ROOT
from mpac_drill.contract import validate_document
from mpac_drill.errors import HarnessError

SCHEMA_PATH = PROJECT_ROOT / "contract" / "check-result.schema.json"
#: ``runs/checks/20261130T055022Z.json``
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"


def validate_check(document: Any) -> list[str]:
    """One-line errors of a check run against its schema, empty when valid."""
    return validate_document(document, SCHEMA_PATH)


def checks_dir(runs_dir: Path) -> Path:
    return runs_dir / "checks"


def write_check(document: dict[str, Any], runs_dir: Path) -> Path:
    """Validate and store one run; return its path (``-2``, ``-3``... for a second run
    within the same second).

    :raises HarnessError: the document does not match the schema, or the schema is missing.
    """
    errors = validate_check(document)
    if errors:
        raise HarnessError(f"check result does not match {SCHEMA_PATH.name}: {errors[0]}")
    folder = checks_dir(runs_dir)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.fromisoformat(document["started_at"]).strftime(STAMP_FORMAT)
    path, n = folder / f"{stamp}.json", 1
    while path.exists():
        n += 1
        path = folder / f"{stamp}-{n}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def load_checks(runs_dir: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Every stored run, oldest first, and one line per file refused (unreadable, invalid).

    :raises HarnessError: the schema is missing.
    """
    runs: list[dict[str, Any]] = []
    problems: list[str] = []
    folder = checks_dir(runs_dir)
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            problems.append(f"{path}: unreadable: {' '.join(str(exc).split())}")
            continue
        errors = validate_check(document)
        if errors:
            problems.append(f"{path}: {errors[0]}")
            continue
        runs.append(document)
    runs.sort(key=lambda d: str(d["started_at"]))
    return runs, problems


__all__ = ["SCHEMA_PATH", "checks_dir", "load_checks", "validate_check", "write_check"]
