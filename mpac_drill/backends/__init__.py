"""The one backend seam: an action asks for the backend of its target, never ``if sandbox``.

``mpac_drill.backends.sandbox`` acts on the local sandbox's processes;
``mpac_drill.backends.aws`` calls AWS through boto3. The region drills (``*_region``) and the
obs drill (``*_obs``) have their own pair.
"""

from __future__ import annotations

from types import ModuleType

from mpac_drill.config import Target


def backend_for(target: Target) -> ModuleType:
    if target.kind == "sandbox":
        from mpac_drill.backends import sandbox

        return sandbox
    from mpac_drill.backends import aws

    return aws


def region_backend_for(target: Target) -> ModuleType:
    """The region drills' backend (runbook §1.4): ``sandbox_region`` or ``aws_region``."""
    if target.kind == "sandbox":
        from mpac_drill.backends import sandbox_region

        return sandbox_region
    from mpac_drill.backends import aws_region

    return aws_region


def obs_backend_for(target: Target) -> ModuleType:
    """The obs drill's backend (runbook §1.6): ``sandbox_obs`` or ``aws_obs``."""
    if target.kind == "sandbox":
        from mpac_drill.backends import sandbox_obs

        return sandbox_obs
    from mpac_drill.backends import aws_obs

    return aws_obs
