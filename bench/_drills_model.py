"""``bench/drills.py``: what a round runs (``Plan``), what one drill gave (``Drill``), the goals."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GOAL_ERROR_S = 0.3
GOAL_OVERHEAD_S = 5.0
GOAL_JITTER_S = 0.020
ECS_SERVICE = "svc-portal"  # the service experiments/ecs-task-failure.yaml stops
OVERHEAD_PARTS = (
    "sandbox check",
    "steady state before",
    "load start",
    "observers start",
    "fault injection",
    "recovery confirmed",
    "canary read-back",
    "observers+load stop",
    "steady state after",
    "rollbacks",
    "result writing",
    "chaoslib gaps",
)


@dataclass(frozen=True)
class Plan:
    label: str
    scenario: str
    sets: dict[str, float]
    delay: float  # the configured recovery delay of this drill
    lag: float = 0.0


@dataclass
class Drill:
    plan: Plan
    round: int
    wall_s: float = 0.0
    run_dir: Path | None = None
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    t_call: float = 0.0  # time.time() around run_drill
    t_return: float = 0.0
    task_ready: float | None = None  # ECS: when a replacement task first answered (time.time())

    @property
    def m(self) -> dict[str, Any]:
        return self.result.get("measurements", {})

    @property
    def ok(self) -> bool:
        return self.result.get("status") == "completed" and self.m.get("rto_s") is not None


def make_plans(d1: float, d2: float, lag: float) -> list[Plan]:
    ecs, rds = "ecs.task_start_delay_s", "rds.failover_delay_s"
    lag_key = "rds.replication_lag_s"
    return [
        Plan(f"ecs d={d1:g}", "ecs-task-failure", {ecs: d1}, d1),
        Plan(f"ecs d={d2:g}", "ecs-task-failure", {ecs: d2}, d2),
        Plan(f"rds d={d1:g}", "rds-failover", {rds: d1, lag_key: 0.0}, d1),
        Plan(f"rds d={d2:g}", "rds-failover", {rds: d2, lag_key: 0.0}, d2),
        Plan(f"rds lag={lag:g}", "rds-failover", {rds: d1, lag_key: lag}, d1, lag),
    ]
