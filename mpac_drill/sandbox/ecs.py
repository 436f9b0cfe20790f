"""The sandbox's "ECS": each service runs N tasks (worker processes) under a supervisor.

A task is ``python -m mpac_drill.sandbox.task --service NAME --port N``, one process in its
own session. When a task stops (killed by a drill, or crashed), the supervisor replaces it
after ``ecs.task_start_delay_s``, as ECS starts a replacement task to meet the desired count.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mpac_drill.sandbox.procs import record_spawn


@dataclass
class Task:
    service: str
    index: int
    port: int
    proc: asyncio.subprocess.Process | None = None
    starts: int = 0
    stopped_at: float | None = None

    @property
    def name(self) -> str:
        return f"{self.service}/task-{self.index}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc and self.proc.returncode is None else None


@dataclass
class EcsService:
    name: str
    tasks: list[Task]


@dataclass
class EcsCluster:
    log_dir: Path
    services: dict[str, EcsService]
    env: dict[str, str]
    task_start_delay_s: float = 2.0
    on_event: Callable[[str], None] = lambda msg: None
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    _stopping: bool = False

    @classmethod
    def build(
        cls,
        *,
        log_dir: Path,
        service_names: list[str],
        tasks_per_service: int,
        port_base: int,
        env: dict[str, str],
        task_start_delay_s: float,
        on_event: Callable[[str], None],
        task_counts: dict[str, int] | None = None,
    ) -> EcsCluster:
        services = {}
        port = port_base
        for name in service_names:
            tasks = []
            for i in range((task_counts or {}).get(name, tasks_per_service)):
                tasks.append(Task(service=name, index=i + 1, port=port))
                port += 1
            services[name] = EcsService(name, tasks)
        return cls(
            log_dir=log_dir,
            services=services,
            env=env,
            task_start_delay_s=task_start_delay_s,
            on_event=on_event,
        )

    def all_tasks(self) -> list[Task]:
        return [t for s in self.services.values() for t in s.tasks]

    async def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for t in self.all_tasks():
            await self._launch(t)

    async def _launch(self, task: Task, not_before: float = 0.0) -> None:
        env = {**self.env, "MPAC_SERVICE": task.service, "MPAC_TASK": task.name}
        logf = (self.log_dir / f"{task.service}-task-{task.index}.log").open("ab")
        task.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "mpac_drill.sandbox.task",
            "--service",
            task.service,
            "--port",
            str(task.port),
            "--not-before",
            f"{not_before:.6f}",
            env=env,
            stdout=logf,
            stderr=logf,
            start_new_session=True,
        )
        logf.close()
        record_spawn(task.proc.pid)
        task.starts += 1
        task.stopped_at = None
        self._watch(task)

    def _watch(self, task: Task) -> None:
        proc = task.proc
        assert proc is not None

        async def watch() -> None:
            await proc.wait()
            if self._stopping or task.proc is not proc:
                return
            loop = asyncio.get_running_loop()
            task.stopped_at = loop.time()
            self.on_event(f"ecs: {task.name} stopped (exit {proc.returncode})")
            if not self._stopping:
                # ECS's task start delay (a setting): the replacement boots at once and
                # opens its port exactly at the delay, so Python's boot time (0.5-1.5 s
                # on a busy 2-core machine) does not blur the configured figure.
                await self._launch(task, not_before=time.time() + self.task_start_delay_s)
                self.on_event(f"ecs: {task.name} replaced")

        t = asyncio.ensure_future(watch())
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        self._stopping = True
        for t in list(self._tasks):
            t.cancel()
        procs = [t.proc for t in self.all_tasks() if t.proc and t.proc.returncode is None]
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                p.terminate()
        for p in procs:
            try:
                await asyncio.wait_for(p.wait(), 3)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    p.kill()
                await p.wait()

    def describe(self, health: dict[str, bool]) -> list[dict[str, Any]]:
        return [
            {
                "name": t.name,
                "kind": "ecs",
                "role": "task",
                "pid": t.pid,
                "address": f"127.0.0.1:{t.port}",
                "healthy": bool(health.get(t.name)),
                "detail": f"starts={t.starts}",
            }
            for t in self.all_tasks()
        ]
