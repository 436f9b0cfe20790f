"""Where users reach the sandbox (``actions/load.py``): each service's ALB listener, or,
during the region drill, the front door that plays Route53."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mpac_drill.drill.context import DrillContext


def service_urls(drill: DrillContext) -> dict[str, str]:
    """Service name → base URL (none in a dry run: the sandbox is not even read)."""
    door = drill.front_door
    if door is not None:  # the region drill: users know only the front door
        return {str(k): str(v) for k, v in door.urls().items()}
    if drill.dry_run:
        return {}
    services = drill.sandbox().endpoints["services"]
    return {str(k): str(v) for k, v in services.items()}


def health_endpoints(drill: DrillContext) -> dict[str, str]:
    """Service name → the deep health URL the observer samples."""
    return {name: f"{url}/health?deep=1" for name, url in service_urls(drill).items()}


__all__ = ["health_endpoints", "service_urls"]
