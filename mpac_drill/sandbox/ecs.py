"""The sandbox's "ECS": each service runs N tasks (worker processes) under a supervisor.

A task is ``python -m mpac_drill.sandbox.task --service NAME --port N``, one process in its
own session. When a task stops (killed by a drill, or crashed), the supervisor replaces it
after ``ecs.task_start_delay_s``, as ECS starts a replacement task to meet the desired count.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mpac_drill.sandbox.managed import ManagedProcess, Supervisor


@dataclass
class Task(ManagedProcess):
    service: str
    index: int
    port: int
    proc: asyncio.subprocess.Process | None = None
    starts: int = 0
    stopped_at: float | None = None

    @property
    def name(self) -> str:
        return f"{self.service}/task-{self.index}"


@dataclass
class EcsService:
    name: str
    tasks: list[Task]


@dataclass
class EcsCluster(Supervisor):
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
        await task.spawn(
            [
                sys.executable,
                "-m",
                "mpac_drill.sandbox.task",
                "--service",
                task.service,
                "--port",
                str(task.port),
                "--not-before",
                f"{not_before:.6f}",
            ],
            log_path=self.log_dir / f"{task.service}-task-{task.index}.log",
            env=env,
        )
        task.starts += 1
        task.stopped_at = None
        self.supervise(task, lambda: self._replace(task))

    async def _replace(self, task: Task) -> None:
        """A task stopped: ECS starts its replacement after the task start delay."""
        proc = task.proc
        task.stopped_at = asyncio.get_running_loop().time()
        self.on_event(f"ecs: {task.name} stopped (exit {proc.returncode if proc else '?'})")
        # ECS's task start delay (a setting): the replacement boots at once and opens its
        # port exactly at the delay, so Python's boot time (0.5-1.5 s on a busy 2-core
        # machine) does not blur the configured figure.
        await self._launch(task, not_before=time.time() + self.task_start_delay_s)
        self.on_event(f"ecs: {task.name} replaced")
        watch = asyncio.ensure_future(self._announce_running(task))
        self._tasks.add(watch)
        watch.add_done_callback(self._tasks.discard)

    async def _announce_running(self, task: Task, bound_s: float = 120.0) -> None:
        """Log ``ecs: <task> running`` the moment the replacement accepts connections (the
        platform's own event of recovery: ECS's task RUNNING, read by the drill's phases)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.task_start_delay_s + bound_s
        proc = task.proc
        while loop.time() < deadline and not self._stopping and task.proc is proc:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", task.port)
            except OSError:
                await asyncio.sleep(0.02)
                continue
            writer.close()
            self.on_event(f"ecs: {task.name} running (port {task.port} open)")
            return

    async def stop(self) -> None:
        await self.stop_processes(self.all_tasks(), sig=signal.SIGTERM, grace_s=3)

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
