"""The layout shows a drill's path one step per layer: every action module has a module of
the same name on every platform, and actions and probes never branch on the target."""

from __future__ import annotations

import re

import pytest

from mpac_drill import PROJECT_ROOT

ACTIONS = sorted(p.stem for p in (PROJECT_ROOT / "actions").glob("*.py") if p.stem != "__init__")
PLATFORMS = ("sandbox", "aws")


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("action", ACTIONS)
def test_every_action_module_has_its_platform_module(action: str, platform: str) -> None:
    assert (PROJECT_ROOT / "mpac_drill" / "platform" / platform / f"{action}.py").is_file()


def test_actions_and_probes_never_ask_the_target_kind() -> None:
    pattern = re.compile(r"is_sandbox|kind ==|\.kind\b|dry_run_recorder")
    offenders = [
        f"{path.relative_to(PROJECT_ROOT)}:{n}"
        for folder in ("actions", "probes")
        for path in (PROJECT_ROOT / folder).glob("*.py")
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []


def test_both_platforms_implement_every_method_of_the_protocol() -> None:
    from mpac_drill.platform import Platform
    from mpac_drill.platform.aws import AwsPlatform
    from mpac_drill.platform.sandbox import SandboxPlatform

    wanted = {n for n in vars(Platform) if not n.startswith("_")} - {"kind", "shared_database"}
    for cls in (SandboxPlatform, AwsPlatform):
        missing = sorted(n for n in wanted if not callable(getattr(cls, n, None)))
        assert missing == [], (cls.__name__, missing)
        assert cls.kind in PLATFORMS and isinstance(cls.shared_database, bool)
