"""The harness side of a game day: walk the plan inside the drill, in place of the
automated failover (``fail-over-to-dr``), with people confirming the manual steps.

Per step: ``shown_at`` (printed with its commands), ``confirmed_at`` (the operator's ack,
or the harness when it ran the step itself), ``effect_seen_at`` (the step's check, polled
by the harness from the moment the step is shown, independently of any confirmation).
People time = shown -> confirmed; machine time = confirmed -> effect seen.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chaoslib.exceptions import InterruptExecution
from chaoslib.types import Configuration, Secrets

from mpac_drill.drill.context import DrillContext, current
from mpac_drill.errors import Terminated, UsageError
from mpac_drill.gameday import dr, state
from mpac_drill.gameday.aws_walk import NOT_CHECKED, AwsWalk
from mpac_drill.gameday.plan import Plan, Step, commands_for, load_plan, manual_steps
from mpac_drill.platform.sandbox import recover
from mpac_drill.platform.sandbox.region import dr_target, rds_dsn, regions
from mpac_drill.platform.steps import StepTimer
from mpac_drill.sandbox import control, snapshots

POLL_S = 0.02
#: How often a waiting walk saves its state: after a SIGKILL the gap starts at most this
#: long before the death.
HEARTBEAT_S = 0.25


def say(msg: str) -> None:
    print(msg, flush=True)


# ---------------------------------------------------------------- the sandbox's commands


def run_command(cmd: str, ctx: DrillContext) -> str:
    """Perform a plan's sandbox command in-process (an automated step takes the operator's
    path); returns what it did."""
    words = shlex.split(cmd)
    if words[:3] == ["mpac-drill", "sandbox", "status"]:
        return "status read"
    if words[:3] != ["mpac-drill", "sandbox", "dr"] or len(words) < 4:
        raise UsageError(f"the harness cannot run {cmd!r} on the sandbox")
    sub, t = words[3], ctx.target
    if sub == "activate":
        return f"DR stack started in {dr.activate(t).name}"
    if sub == "set-parameter":
        return f"parameter {dr.set_parameter(t, words[4]).name} written"
    if sub == "restart":
        return f"deployed with {', '.join(dr.restart(t))}"
    if sub == "switch":
        return f"records -> {dr.switch(t)['region']}"
    if sub in ("verify", "status"):
        return sub
    raise UsageError(f"unknown sandbox dr command {sub!r} in {cmd!r}")


# ---------------------------------------------------------------- checks


class Checks:
    """Each check returns the wall-clock instant its effect was first seen, or None."""

    def __init__(self, ctx: DrillContext, injected_at: float, door_applied: dict[str, float]):
        self.ctx, self.injected_at, self.door_applied = ctx, injected_at, door_applied

    def seen(self, step: Step) -> float | None:
        if step.check is None:
            return time.time()
        return getattr(self, step.check.kind)(step.check.arg)

    def users_failing(self, _: str) -> float | None:
        obs, t0 = self.ctx.observer, self.ctx.injected_mono
        if obs is None or t0 is None:
            return time.time()
        first: dict[str, float] = {}
        for s in obs.samples(rel_to=t0, since=t0):
            if not s["ok"]:
                first.setdefault(s["service"], s["t"])
        if set(first) >= set(obs.services):
            return self.injected_at + max(first.values())
        return None

    def dr_event(self, prefix: str) -> float | None:
        st = control.read_state(dr.dr_dir(self.ctx.target)) or {}
        for ev in st.get("events", []):
            if ev["event"].startswith(prefix):
                return snapshots.parse_utc(ev["at"]).timestamp()
        return None

    def parameter(self, name: str) -> float | None:
        path = dr.dr_dir(self.ctx.target) / "parameters" / name
        try:
            if path.read_text().strip() == dr.parameter_value(self.ctx.target, name):
                return min(path.stat().st_mtime, time.time())
        except OSError:
            return None
        return None

    def front_door_region(self, _: str) -> float | None:
        return self.door_applied.get("at")

    def users_served(self, _: str) -> float | None:
        return time.time() if all(dr.verify(self.ctx.target).values()) else None


# ---------------------------------------------------------------- the walk


class GameDay:
    def __init__(
        self,
        ctx: DrillContext,
        plan: Plan,
        manual: set[int],
        severity: str,
        update_every_s: float,
        effect_timeout_s: float,
        resume_from: Path | None = None,
        aws: AwsWalk | None = None,
    ) -> None:
        self.ctx, self.plan, self.manual, self.aws = ctx, plan, manual, aws
        # A resumed game day keeps its timeline (state, acks, updates) in the first run's
        # folder, so the operators keep typing the same RUN.
        self.run_dir = Path(resume_from or ctx.run_dir)
        assert ctx.injected_mono is not None
        self.injected_at = time.time() - (time.monotonic() - ctx.injected_mono)
        rt = ctx.catalog.response_targets.get(severity)
        if rt is None:
            raise UsageError(
                f"--severity {severity!r}: expected one of {sorted(ctx.catalog.response_targets)}"
            )
        self.effect_timeout_s = effect_timeout_s
        self.door_applied: dict[str, float] = {}
        self.checks = Checks(ctx, self.injected_at, self.door_applied)
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.state: dict[str, Any] = {
            "scenario": plan.scenario,
            "runbook_section": plan.runbook_section,
            "plan": str(plan.path.name),
            "target": ctx.target.name,
            "run_dir": str(self.run_dir),
            "injected_at": state.stamp(self.injected_at),
            "injected_ts": self.injected_at,
            "current": 1,
            "status": "walking",
            "severity": severity,
            "targets": {
                "respond_s": rt.respond_s,
                "update_s": float(update_every_s or rt.update_s),
            },
            "update_prompts": [],
            "harness_pid": os.getpid(),
            "segments": [self._segment(ctx)],
            "gaps": [],
            "steps": [
                {
                    "number": s.number,
                    "name": s.name,
                    "runbook": s.runbook,
                    "manual": s.number in manual,
                    "commands": commands_for(s, ctx.target),
                    "check": None if s.check is None else s.check.detail or s.check.kind,
                    "shown_at": None,
                    "confirmed_at": None,
                    "effect_seen_at": None,
                    "who": None,
                    "notes": [],
                }
                for s in plan.steps
            ],
        }
        if resume_from is not None:
            self._resume(state.read(self.run_dir))

    def _segment(self, ctx: DrillContext) -> dict[str, Any]:
        return {
            "run_dir": str(ctx.run_dir),
            "injected_at": state.stamp(self.injected_at),
            "injected_ts": self.injected_at,
            "from_step": 1,
        }

    def _resume(self, old: dict[str, Any]) -> None:
        """Continue ``old``'s timeline: its steps done stay as measured, the time the harness
        was away is one gap (never merged into a step), the walk restarts at its step."""
        if old.get("scenario") != self.plan.scenario:
            raise UsageError(f"{self.run_dir} is a game day of {old.get('scenario')!r}")
        now = time.time()
        current = int(old["current"])
        away_from = float(old.get("interrupted_ts") or old.get("saved_ts") or now)
        segment = self._segment(self.ctx) | {"from_step": current}
        self.state = old | {
            "current": current,
            "status": "walking",
            "harness_pid": os.getpid(),
            "segments": [*old.get("segments", []), segment],
            "gaps": [
                *old.get("gaps", []),
                {
                    "step": current,
                    "from": state.stamp(away_from),
                    "to": state.stamp(now),
                    "from_ts": away_from,
                    "to_ts": now,
                    "gap_s": round(now - away_from, 4),
                    # no interruption recorded: the harness died (SIGKILL, power, OOM)
                    "reason": old.get("interrupted_by") or "harness died",
                },
            ],
        }
        self.state.pop("interrupted_ts", None)
        self.state.pop("finished_ts", None)
        self.injected_at = float(old["injected_ts"])  # the timeline's origin: the first fault
        self.resumed_at = current

    def _perform(self, step: Step, rec: dict[str, Any]) -> list[str]:
        if self.aws is not None:
            return self.aws.perform(step)
        return [run_command(c, self.ctx) for c in rec["commands"]]

    def _seen(self, step: Step) -> float | None:
        return self.checks.seen(step) if self.aws is None else self.aws.seen(step)

    def _catch_up(self) -> None:
        """The interrupted drill failed back (its safety net): the harness performs the
        steps done before the gap again, so the platform is where the team left it."""
        for step, rec in zip(
            self.plan.steps, self.state["steps"][: self.resumed_at - 1], strict=False
        ):
            did = self._perform(step, rec)
            if any(did):
                rec["notes"].append(f"replayed by the harness after the gap: {'; '.join(did)}")
        self.save()

    # -- persistence
    def save(self) -> None:
        with self.lock:
            self.state["saved_ts"] = time.time()
            state.write_atomic(self.run_dir / state.STATE, self.state)

    # -- background: the hosted zone applied to the front door; Enter in the terminal
    def _zone_watch(self) -> None:
        last = None
        while not self.stop.wait(POLL_S):
            zone = dr.read_zone(self.ctx.target)
            door = self.ctx.front_door
            if zone is None or door is None or zone == last:
                continue
            change = door.change({k: int(v) for k, v in zone["records"].items()}, zone["region"])
            self.door_applied["at"] = time.time()
            last = zone
            if self.ctx.record.region is not None:
                self.ctx.record.region["route53_change"] = change

    def _stdin(self) -> None:
        for line in sys.stdin:
            n = int(self.state["current"])
            if n in self.manual and state.read_ack(self.run_dir, n) is None:
                with contextlib.suppress(UsageError):
                    state.write_ack(self.run_dir, n, note=line.strip())

    # -- §3 cadence
    def _updates_due(self) -> None:
        declared = self.state["steps"][0].get("confirmed_ts")
        if declared is None:
            return
        every = self.state["targets"]["update_s"]
        ups = [u["at"] for u in state.read_updates(self.run_dir)]
        last = max([declared, *ups])
        overdue = int((time.time() - last) // every)  # prompted again every interval missed
        due = last + every * overdue
        if overdue >= 1 and not any(p["due_ts"] == due for p in self.state["update_prompts"]):
            self.state["update_prompts"].append({"due_ts": due, "due_at": state.stamp(due)})
            say(
                f"  UPDATE DUE (§3, every {every:g} s): post one, then run "
                f"`mpac-drill gameday update {self.run_dir}`"
            )
            self.save()

    # -- one step
    def _wait(self, until: Callable[[], bool], deadline: float | None, what: str) -> None:
        while not until():
            self._updates_due()
            if time.time() - float(self.state.get("saved_ts") or 0) >= HEARTBEAT_S:
                self.save()  # the heartbeat: a harness killed here is away from this instant
            if deadline is not None and time.time() > deadline:
                raise self.ctx.failed(f"game day: {what}")
            time.sleep(POLL_S)

    def walk_step(self, step: Step, timer: StepTimer) -> None:
        rec = self.state["steps"][step.number - 1]
        self.state["current"] = step.number
        if rec.get("shown_at_ts") is not None:  # shown before a gap: shown again, both kept
            rec.setdefault("shown_before_gap", []).append(rec["shown_at"])
        rec["segment"] = len(self.state["segments"])
        rec["shown_at_ts"] = shown = time.time()
        rec["shown_at"] = state.stamp(shown)
        self.save()
        mode = "MANUAL" if step.number in self.manual else "automated"
        say(
            f"\n[{step.number}/{len(self.plan.steps)}] {step.name} ({mode})"
            f" — runbook: {step.runbook}"
        )
        for cmd in rec["commands"]:
            say(f"    $ {cmd}")
        seen: dict[str, float] = {}

        def poll() -> None:
            while "at" not in seen and not self.stop.is_set():
                at = self._seen(step)
                if at == NOT_CHECKED:
                    seen["unchecked"] = 1.0
                    return
                if at is not None:
                    seen["at"] = at
                    return
                time.sleep(POLL_S * 2)

        checker = threading.Thread(target=poll, daemon=True, name=f"check-{step.number}")
        checker.start()
        if step.number in self.manual:
            say(
                "    when done: press Enter, or "
                f"`mpac-drill gameday ack {self.run_dir} {step.number} [--note ...]`"
            )
            self._wait(lambda: state.read_ack(self.run_dir, step.number) is not None, None, "")
            ack = state.read_ack(self.run_dir, step.number) or {}
            confirmed, rec["who"] = max(float(ack["at"]), shown), ack["who"]
            if float(ack["at"]) < shown:  # confirmed before the resume showed it again
                rec["notes"].append(f"confirmed before the resume, at {state.stamp(ack['at'])}")
            if ack.get("note"):
                rec["notes"].append(ack["note"])
        else:
            did = self._perform(step, rec)
            confirmed, rec["who"] = time.time(), "harness"
            rec["notes"].append("; ".join(did))
        rec["confirmed_ts"], rec["confirmed_at"] = confirmed, state.stamp(confirmed)
        self.save()
        ok = True
        try:
            self._wait(
                lambda: "at" in seen or "unchecked" in seen,
                confirmed + self.effect_timeout_s,
                f"step {step.number} ({step.name}): no effect seen "
                f"{self.effect_timeout_s:g} s after it was confirmed",
            )
        except BaseException:
            ok = False
            raise
        finally:
            self.stop.set() if not ok else None
            end = max(seen.get("at", time.time()), confirmed)
            if "at" in seen:
                rec["effect_seen_ts"], rec["effect_seen_at"] = seen["at"], state.stamp(seen["at"])
            if "unchecked" in seen:
                rec["notes"].append(
                    f"not checked on {self.ctx.target.kind}: timed by its confirmation alone"
                )
            rec["people_s"] = round(confirmed - shown, 4)
            rec["machine_s"] = (
                round(max(0.0, seen["at"] - confirmed), 4) if "at" in seen else None
            )  # 0: the effect was there before the confirmation
            assert self.ctx.injected_mono is not None
            timer.add(
                step.name,
                self.ctx.injected_mono + (shown - self.checks.injected_at),
                end - shown,
                ok,
                f"{mode}: people {rec['people_s']:.3f} s, machine "
                + (
                    f"{rec['machine_s']:.3f} s"
                    if rec["machine_s"] is not None
                    else "not checked"
                    if "unchecked" in seen
                    else "not seen"
                )
                + f" ({rec['who']})",
            )
            self.save()

    def _prepare_sandbox(self) -> list[threading.Thread]:
        ctx = self.ctx
        dr.clear_zone(ctx.target)
        ctx.undo_add(recover.dr_stack_step(dr.dr_dir(ctx.target)))  # an operator may start it
        view = ctx.sandbox()
        drt = dr_target(ctx.target)
        ctx.rpo_dsn = rds_dsn(drt, view.secrets["db_password"])
        ctx.handles.dr_dsn = {
            db: rds_dsn(drt, view.secrets["db_password"], db) for db in ("smartpos", "pgw")
        }
        return [threading.Thread(target=self._zone_watch, daemon=True, name="zone")]

    def walk(self) -> dict[str, Any]:
        ctx = self.ctx
        if self.aws is None:
            threads = self._prepare_sandbox()
        else:
            self.aws.start()  # the baseline the team's changes are undone to
            threads = []
        if sys.stdin is not None and sys.stdin.isatty():
            threads.append(threading.Thread(target=self._stdin, daemon=True, name="enter"))
        for th in threads:
            th.start()
        assert ctx.injected_utc is not None and ctx.injected_mono is not None
        timer = StepTimer(ctx.record.steps, ctx.injected_mono, ctx.injected_utc, ctx.procedure_step)
        first = getattr(self, "resumed_at", 1)
        try:
            if first > 1:
                ctx.phase(f"game day resumed at step {first}: replaying steps 1-{first - 1}")
                self._catch_up()
            for step in self.plan.steps[first - 1 :]:
                ctx.phase(f"game day step {step.number}: {step.name}")
                self.walk_step(step, timer)
            self.state["status"] = "done"
        except (KeyboardInterrupt, Terminated, InterruptExecution, SystemExit) as exc:
            self.state["status"] = "interrupted"
            self.state["interrupted_ts"] = time.time()
            self.state["interrupted_by"] = _signal_name(exc)
            raise
        except BaseException as exc:
            self.state["status"] = "stopped"
            self.state["interrupted_ts"] = time.time()
            self.state["interrupted_by"] = f"{type(exc).__name__}: {exc}"[:300]
            raise
        finally:
            self.stop.set()
            self.state["finished_ts"] = time.time()
            if self.aws is not None:  # fail-back undoes the team's changes too
                adopted = self.aws.adopt_manual_changes()
                if adopted:
                    self.state["undone_by_fail_back"] = adopted
            self.save()
        if self.aws is not None:
            self.aws.finish()
        if ctx.record.region is not None:
            if self.aws is None:
                ctx.record.region["dr_state_dir"] = str(dr.dr_dir(ctx.target))
            ctx.record.region.update(
                procedure_s=round(time.time() - self.checks.injected_at, 4),
                system="pgw" if "pgw" in self.plan.scenario else "smartpos",
            )
        return {
            "steps": [s["name"] for s in self.state["steps"]],
            "dr_region": regions(ctx.target)[1],
        }


def _signal_name(exc: BaseException) -> str:
    if isinstance(exc, KeyboardInterrupt):
        return "SIGINT"
    if isinstance(exc, Terminated):
        return signal.Signals(exc.signum).name
    if isinstance(exc, SystemExit):  # mpac_drill.drill.control's SIGTERM: SystemExit(20)
        return "SIGTERM" if exc.code == 20 else f"exit {exc.code}"
    return "SIGTERM" if "SIGTERM" in str(exc) else f"interrupted: {exc}"  # chaoslib's


def walk_plan(
    manual: str = "all",
    severity: str = "P0",
    update_every_s: float = 0,
    effect_timeout_s: float = 120,
    resume_from: str = "",
    timeout_s: float = 0,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Chaos Toolkit action: walk the scenario's plan with people in it (sandbox or AWS)."""
    ctx = current(configuration)
    if ctx.injected_mono is None:
        raise ctx.failed("the game day walks the plan after the fault (lose_region)")
    plan = load_plan(ctx.scenario.id)
    steps = manual_steps(manual, plan)
    aws = None
    if ctx.target.kind == "aws":
        # the bound of the harness's own AWS waits: the scenario's RTO target by default
        bound = float(timeout_s or ctx.scenario.rto_s or ctx.catalog.global_rto_s)
        aws = AwsWalk(ctx, plan, steps, bound)
    gd = GameDay(
        ctx,
        plan,
        steps,
        severity,
        float(update_every_s),
        float(effect_timeout_s),
        Path(resume_from) if resume_from else None,
        aws,
    )
    return gd.walk()


__all__ = ["walk_plan", "GameDay", "run_command"]
