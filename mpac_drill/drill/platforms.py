"""Which platform a drill runs on: decided here, once, and nowhere else.

The two platform packages never import each other (an import-linter contract); this module
is the one place that knows both.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING

from mpac_drill.config import Target

if TYPE_CHECKING:
    from mpac_drill.drill.context import DrillContext
    from mpac_drill.platform import Platform


def platform_module(target: Target, system: str) -> ModuleType:
    """``mpac_drill.platform.<kind>.<system>`` for ``target``: for checks of a target made
    before any drill exists (the obs drill's settings, say)."""
    kind = "sandbox" if target.kind == "sandbox" else "aws"
    return importlib.import_module(f"mpac_drill.platform.{kind}.{system}")


def platform_for(drill: DrillContext) -> Platform:
    """The drill's platform, decided once from its target's kind (and kept on the drill)."""
    if drill.platform is None:
        chosen: Platform  # both classes are checked against the protocol here (mypy)
        if drill.target.kind == "sandbox":
            from mpac_drill.platform.sandbox import SandboxPlatform

            chosen = SandboxPlatform(drill)
        else:
            from mpac_drill.platform.aws import AwsPlatform

            chosen = AwsPlatform(drill)
        drill.platform = chosen
    platform: Platform = drill.platform
    return platform


__all__ = ["platform_for", "platform_module"]
