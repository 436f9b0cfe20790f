"""The moto server and AWS guards of ``tests/aws`` (loopback only, dummy credentials), and
a staging target file pointed at moto with any keys set, new ones included."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from mpac_drill.config import Target, load_target, resolve_target_path
from mpac_drill.readiness.rows import CheckRow
from mpac_drill.readiness.runner import run_checks
from tests.aws.conftest import (  # noqa: F401 - fixtures, re-used as they are
    aws_env,
    ecs_network,
    loopback_only,
    moto,
    moto_url,
    own_drill_locks,
)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def staging(moto_url: str, tmp_path: Path) -> Callable[..., Target]:  # noqa: F811
    """``staging(**{"rds.smartpos.identifier": "db"})``: staging on moto, keys set in a copy
    of its file (new keys too: ``readiness.*``, ``ecs.services.X.target_groups``)."""

    def make(**dotted: Any) -> Target:
        settings = yaml.safe_load(resolve_target_path("staging").read_text(encoding="utf-8"))
        settings["aws"]["endpoint_url"] = moto_url
        for key, value in dotted.items():
            node = settings
            *parents, last = key.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[last] = value
        path = tmp_path / f"target-{uuid.uuid4().hex[:8]}.yaml"
        path.write_text(yaml.safe_dump(settings), encoding="utf-8")
        return load_target(str(path))

    return make


def rows_of(target: Target, *scenarios: str) -> dict[str, CheckRow]:
    """The rows of one check run on ``target``, by id."""
    run = run_checks(target, list(scenarios), dry_run=False)
    return {r["id"]: r for r in run.rows}
