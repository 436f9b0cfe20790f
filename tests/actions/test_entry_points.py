"""The Chaos Toolkit entry points (``actions/``, ``probes/``): every activity an experiment
names exists, takes chaoslib's ``configuration`` and ``secrets``, and outside a drill fails
with one clear line instead of creating a drill of its own."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from chaoslib.exceptions import ActivityFailed

from mpac_drill import PROJECT_ROOT

EXPERIMENTS = sorted((PROJECT_ROOT / "experiments").glob("*.yaml"))


def _activities(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        provider = node.get("provider")
        if isinstance(provider, dict) and provider.get("type") == "python" and "func" in provider:
            yield provider
        for value in node.values():
            yield from _activities(value)
    elif isinstance(node, list):
        for item in node:
            yield from _activities(item)


def _providers() -> list[tuple[str, str, str, dict[str, Any]]]:
    out = []
    for path in EXPERIMENTS:
        doc = yaml.safe_load(path.read_text())
        if not isinstance(doc, dict) or "method" not in doc:
            continue  # the catalog
        for p in _activities(doc):
            out.append((Path(path).name, p["module"], p["func"], p.get("arguments") or {}))
    return out


PROVIDERS = _providers()
ENTRY_POINTS = sorted({(m, f) for _, m, f, _ in PROVIDERS if m.startswith(("actions", "probes"))})


def test_every_experiment_names_activities() -> None:
    assert len(EXPERIMENTS) >= 7 and len(ENTRY_POINTS) >= 15


@pytest.mark.parametrize(("module", "func"), ENTRY_POINTS)
def test_entry_point_exists_and_takes_configuration_and_secrets(module: str, func: str) -> None:
    fn = getattr(importlib.import_module(module), func)
    params = inspect.signature(fn).parameters
    assert "configuration" in params and "secrets" in params
    assert params["configuration"].default is None  # chaoslib passes it by keyword


@pytest.mark.parametrize(("experiment", "module", "func", "arguments"), PROVIDERS)
def test_arguments_the_experiment_passes_are_accepted(
    experiment: str, module: str, func: str, arguments: dict[str, Any]
) -> None:
    fn = getattr(importlib.import_module(module), func)
    params = inspect.signature(fn).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    unknown = set(arguments) - set(params)
    assert takes_any or not unknown, f"{experiment}: {module}.{func} takes no {unknown}"


@pytest.mark.parametrize(("module", "func"), ENTRY_POINTS)
def test_outside_a_drill_an_entry_point_fails_in_one_line(
    module: str, func: str, tmp_path: Path
) -> None:
    """No drill registered for this configuration: one line saying how to run it, and no
    drill (no run folder) made as a side effect."""
    fn = getattr(importlib.import_module(module), func)
    config = {"mpac_run_dir": str(tmp_path / "no-such-run"), "mpac_target": "sandbox"}
    with pytest.raises(ActivityFailed) as caught:
        fn(configuration=config, secrets=None)
    message = str(caught.value)
    assert "no mpac-drill drill runs" in message and "\n" not in message
    assert not (tmp_path / "no-such-run").exists()
