"""One base for the sandbox's supervised servers: PostgreSQL nodes, Redis nodes and
Sentinels, ECS tasks.

A :class:`ManagedProcess` is one server process: started in a session of its own (a kill of
its tree never reaches the daemon), its output appended to its log, recorded for the sweep
(``procs.record_spawn``), its pid known while it lives. A :class:`Supervisor` is what each
component (``PgCluster``, ``RedisGroup``, ``EcsCluster``) is to its processes: it watches
them, runs the component's reaction when one dies that it did not stop or replace (promote
the standby, restart the node, replace the task), and stops them all.

Example::

    @dataclass
    class Node(ManagedProcess):
        name: str
        proc: asyncio.subprocess.Process | None = None

    class Group(Supervisor):
        async def launch(self, node: Node) -> None:
            await node.spawn(["redis-server", conf], log_path=log, env=env)
            self.supervise(node, lambda: self.replace(node))
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from mpac_drill.sandbox.procs import record_spawn


class ManagedProcess:
    """One server process of the sandbox (a subclass is a dataclass with a ``proc`` field)."""

    proc: asyncio.subprocess.Process | None

    @property
    def pid(self) -> int | None:
        """The pid while the process lives, else ``None``."""
        return self.proc.pid if self.proc and self.proc.returncode is None else None

    async def spawn(
        self,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: dict[str, str],
        executable: str | None = None,
        umask: int = -1,
    ) -> asyncio.subprocess.Process:
        """Start it in a session of its own, output appended to ``log_path``."""
        with log_path.open("ab") as logf:
            self.proc = await asyncio.create_subprocess_exec(
                *argv,
                executable=executable,
                env=env,
                stdout=logf,
                stderr=logf,
                start_new_session=True,
                umask=umask,
            )
        record_spawn(self.proc.pid)
        return self.proc


class Supervisor:
    """Watches a component's processes and stops them (a subclass is a dataclass with
    ``_tasks: set[asyncio.Task]`` and ``_stopping: bool`` fields)."""

    _tasks: set[asyncio.Task[Any]]
    _stopping: bool

    def background(self, coro: Awaitable[None]) -> None:
        """Run ``coro`` on the loop, cancelled by :meth:`stop_processes`."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def supervise(self, managed: ManagedProcess, on_death: Callable[[], Awaitable[None]]) -> None:
        """When ``managed``'s current process dies, and the component is not stopping and
        has not replaced it meanwhile, run ``on_death()``."""
        proc = managed.proc
        assert proc is not None

        async def watch() -> None:
            await proc.wait()
            if self._stopping or managed.proc is not proc:
                return
            await on_death()

        self.background(watch())

    async def stop_processes(
        self,
        processes: Iterable[ManagedProcess],
        *,
        sig: int = signal.SIGTERM,
        grace_s: float = 5.0,
    ) -> None:
        """Stop supervising, send ``sig`` to every live process, SIGKILL any still alive
        after ``grace_s``, and reap them all."""
        self._stopping = True
        for task in list(self._tasks):
            task.cancel()
        procs = [m.proc for m in processes if m.proc is not None]
        for p in procs:
            if p.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    p.send_signal(sig)
        for p in procs:
            try:
                await asyncio.wait_for(p.wait(), grace_s)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    p.kill()
                await p.wait()


__all__ = ["ManagedProcess", "Supervisor"]
