"""Where users reach the AWS target (``actions/load.py``): the health URLs of the target's
``endpoints`` (and ``obs.health_url`` in the mpac-obs drill), their bases for locust."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mpac_drill.drill.context import DrillContext


def health_endpoints(drill: DrillContext) -> dict[str, str]:
    """Service name → the health URL the observer samples (as the target names it)."""
    endpoints = {
        str(k): str(v) if v else f"UNSET.endpoints.{k}"  # shown so in a dry run's plan
        for k, v in dict(drill.setting("endpoints")).items()
    }
    if drill.scenario.system == "mpac-obs":  # its own stack, observed in its own drill
        endpoints["mpac-obs"] = str(drill.setting("obs.health_url"))
    return endpoints


def service_urls(drill: DrillContext) -> dict[str, str]:
    """Service name → base URL: the health URL up to its ``/health`` path."""
    return {k: v.split("/health", 1)[0] for k, v in health_endpoints(drill).items()}


__all__ = ["health_endpoints", "service_urls"]
