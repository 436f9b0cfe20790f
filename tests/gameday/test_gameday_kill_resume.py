"""A game day whose harness is killed for real (SIGKILL: kill -9, the OOM killer) while it
waits at step 5, then resumed (issue 15): `gameday resume RUN` refuses until
`mpac-drill recover` has finished the dead harness's run; after it, the resume continues at
step 5 with one gap (kill -> resume) in the one timeline, never merged into a step.

The kill is deterministic: step 5 is manual and nobody acknowledges it before the kill, so
the harness is waiting at it (``current`` 5, step 5 shown) when the signal arrives.

Its own sandbox (with its DR region and front door) on a free port block of its own and
under a target name of its own (the session's pid), so it collides neither with the
default sandbox (another checkout's tests), nor with the other game-day tests' sandbox
(block 7000), nor with another session running this file.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from mpac_drill import EXPERIMENTS_DIR, PROJECT_ROOT
from mpac_drill.config import load_target
from mpac_drill.drill.inflight import INFLIGHT_FILE
from mpac_drill.platform.sandbox.region import dr_target
from mpac_drill.sandbox import control
from mpac_drill.sandbox.procs import marked_processes, port_is_free
from tests.conftest import run_cli
from tests.drills.death import CLI, alive, descendants, gone_within, of_run
from tests.gameday.scripted import start_operator

pytestmark = pytest.mark.sandbox

STEP = 5  # restart services: manual, killed while the harness waits for its ack
KILL_AFTER_S = 2.0  # the operator was at step 5 this long when the harness died
ACK_AFTER_S = 0.8  # after the resume shows step 5 again
BOUND_S = 0.5  # the gap's bounds against the kill and the resume
BLOCKS = (3000, 11000)  # N..N+3999 each (DR at +1000, front doors at +2000)


def _ports(settings: dict[str, Any]) -> list[int]:
    s = settings
    alb = [int(c["port"]) for c in s["ecs"]["services"].values()]
    base = int(s["ecs"]["task_port_base"])
    own = [
        s["rds"]["primary_port"],
        s["rds"]["standby_port"],
        s["redis"]["primary_port"],
        s["redis"]["replica_port"],
        *s["redis"]["sentinel_ports"],
        *alb,
        *range(base, base + 12),
    ]
    dr = [p + int(s["region"]["dr_port_offset"]) for p in own]
    door = [p + int(s["region"]["front_door_port_offset"]) for p in alb]
    return [int(p) for p in own + dr + door]


@pytest.fixture(scope="module")
def kill_target(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gameday-kill")
    base = yaml.safe_load((EXPERIMENTS_DIR / "targets" / "sandbox.yaml").read_text())
    for block in BLOCKS:
        # a name of its own: the drill lock (and so the refusal and recover) is per target
        # name, and two test sessions must not find each other's interrupted runs
        name = f"sandbox-gameday-kill-{os.getpid()}"
        settings = control.private_settings(
            base, name=name, state_dir=folder / "state", port_block=block
        )
        settings["region"].update(dr_port_offset=1000, front_door_port_offset=2000)
        if all(port_is_free(p) for p in _ports(settings)):
            break
    else:
        pytest.skip(f"no free port block among {BLOCKS} for the game-day kill sandbox")
    settings["backup"]["base_interval_s"] = 600
    path = folder / "gameday-kill-target.yaml"
    path.write_text(yaml.safe_dump(settings))
    target = load_target(str(path))
    try:
        control.up(target)
        yield target
    finally:
        control.down(target)  # the DR sandbox too, if one was left behind


class Console:
    """A CLI process whose stderr lines are read as they come, each with its arrival time."""

    def __init__(self, *args: str, out: Path) -> None:
        self.lines: list[tuple[float, str]] = []
        self.out = out
        self.proc = subprocess.Popen(
            [*CLI, *args],
            cwd=PROJECT_ROOT,
            stdout=out.open("w"),
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "COLUMNS": "200"},
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append((time.time(), line))

    def tail(self) -> str:
        return self.out.read_text()[-1500:] + "".join(line for _, line in self.lines[-30:])


def _state(run_dir: Path) -> dict[str, Any]:
    try:
        return dict(json.loads((run_dir / "gameday.json").read_text()))
    except (OSError, ValueError):
        return {}


def _wait_waiting_at(runs: Path, harness: Console, number: int, timeout_s: float = 240) -> Path:
    """The run folder once the harness shows step ``number`` (and waits for its ack)."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        assert harness.proc.poll() is None, harness.tail()
        for p in runs.glob("*/gameday.json"):
            gd = _state(p.parent)
            if gd.get("current") == number and gd["steps"][number - 1].get("shown_at_ts"):
                return p.parent
        time.sleep(0.02)
    raise AssertionError(f"step {number} was never shown:\n{harness.tail()}")


@pytest.fixture(scope="module")
def killed(kill_target, tmp_path_factory):
    """Everything observed: the kill, the refused resume, recover, the resumed game day."""
    t = kill_target
    folder = tmp_path_factory.mktemp("gameday-kill-runs")
    runs = folder / "runs"
    dr_dir = control.state_dir(dr_target(t))
    obs: dict[str, Any] = {"runs": runs, "dr_dir": dr_dir}
    common = ("--target", str(t.path), "--runs-dir", str(runs), "--users", "1")

    harness = Console("gameday", "region-failover", *common, "--manual", str(STEP),
                      out=folder / "first.out")  # fmt: skip
    try:
        first = _wait_waiting_at(runs, harness, STEP)
        shown = float(_state(first)["steps"][STEP - 1]["shown_at_ts"])
        while time.time() < shown + KILL_AFTER_S:  # the operator at work on step 5
            assert harness.proc.poll() is None, harness.tail()
            time.sleep(0.02)
        dr_pids = {p.pid for p in marked_processes(dr_dir)}
        own = [k for k in descendants(harness.proc) if k.pid not in dr_pids]
        obs["own_children"] = [" ".join(k.cmdline())[:200] for k in alive(own)]
        obs["kill_ts"] = time.time()
        harness.proc.send_signal(signal.SIGKILL)
        obs["harness_code"] = harness.proc.wait(10)
        obs["gone_s"] = gone_within(lambda: alive(own) + of_run(first))
        obs["left"] = [(p.pid, " ".join(p.cmdline())[:150]) for p in alive(own) + of_run(first)]
        obs["dr_up_after_kill"] = bool(dr_pids) and bool(marked_processes(dr_dir))
    finally:
        if harness.proc.poll() is None:
            harness.proc.kill()
    obs["first"] = first
    obs["state_at_kill"] = _state(first)
    obs["inflight_at_kill"] = (first / INFLIGHT_FILE).is_file()

    # the dead harness's run is interrupted: resume refuses before anything is injected
    obs["refused"] = run_cli("gameday", "resume", first.name, *common, timeout=120)
    obs["state_after_refusal"] = _state(first)
    obs["runs_after_refusal"] = sorted(p.name for p in runs.iterdir())

    started = time.monotonic()
    obs["recover"] = run_cli("recover", "--target", str(t.path), "--runs-dir", str(runs))
    obs["recover_s"] = time.monotonic() - started
    obs["dr_left_after_recover"] = marked_processes(dr_dir)
    obs["dr_ports_free_after_recover"] = all(
        port_is_free(p) for _, p in control.port_settings(dr_target(t))
    )
    try:
        control.wait_healthy(t, timeout_s=10)
        obs["healthy_after_recover"] = True
    except Exception as exc:  # noqa: BLE001 — asserted by a test, with the reason
        obs["healthy_after_recover"] = f"{type(exc).__name__}: {exc}"
    obs["first_result"] = json.loads((first / "result.json").read_text())

    # The resumed walk's first act is its write-ahead record of the DR stack (the new run's
    # inflight.json gains the undo step "dr-stack"): the instant the harness is back at the
    # walk. Then it replays steps 1-4: the DR stack's daemon is spawned again (its
    # target.json written).
    spawned = dr_dir / "target.json"
    before = spawned.stat().st_mtime if spawned.exists() else 0.0
    back: dict[str, float] = {}
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.01) and len(back) < 2:
            for p in runs.glob(f"*/{INFLIGHT_FILE}"):
                if p.parent == first or "walk" in back:
                    continue
                try:
                    with p.open() as fh:  # the mtime of the very file read
                        mtime, record = os.fstat(fh.fileno()).st_mtime, json.load(fh)
                except (OSError, ValueError):
                    continue
                if any(u["id"] == "dr-stack" for u in record.get("undo", [])):
                    back["walk"] = mtime
            with contextlib.suppress(OSError):
                if "dr" not in back and spawned.stat().st_mtime > before:
                    back["dr"] = spawned.stat().st_mtime

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    operator = start_operator(runs, t.path, {STEP: ACK_AFTER_S})
    obs["resume_launched_ts"] = time.time()
    resumed = Console("gameday", "resume", first.name, *common, out=folder / "resume.out")
    try:
        obs["resume_code"] = resumed.proc.wait(400)
        done.set()
        watcher.join(5)
        resumed.reader.join(10)
        obs["op_out"], obs["op_err"] = operator.communicate(timeout=30)
    finally:
        for p in (resumed.proc, operator):
            if p.poll() is None:
                p.kill()
    obs["resume_out"] = (folder / "resume.out").read_text()
    obs["resume_tail"] = resumed.tail()
    obs["walk_back_ts"], obs["dr_back_ts"] = back.get("walk"), back.get("dr")
    second = [p.parent for p in runs.glob("*/result.json") if p.parent != first]
    assert len(second) == 1, obs["resume_tail"] + obs["op_err"][-1500:]
    obs["second"] = second[0]
    obs["result"] = json.loads((second[0] / "result.json").read_text())
    obs["state"] = _state(first)
    obs["dr_left_at_end"] = marked_processes(dr_dir)
    try:
        control.wait_healthy(t, timeout_s=10)
        obs["healthy_at_end"] = True
    except Exception as exc:  # noqa: BLE001
        obs["healthy_at_end"] = f"{type(exc).__name__}: {exc}"
    obs["reinjected_ts"] = float(obs["state"]["segments"][-1]["injected_ts"])
    g = obs["result"].get("gameday") or {}
    gap = (obs["state"].get("gaps") or [{}])[0]
    print(
        f"\ngame day SIGKILL at step {STEP}: run processes gone {obs['gone_s']:.2f} s after; "
        f"recover {obs['recover_s']:.1f} s; gap {gap.get('gap_s')} s, {gap.get('reason')!r}: "
        f"from - kill {float(gap['from_ts']) - obs['kill_ts']:+.3f} s, "
        f"to - resume command {float(gap['to_ts']) - obs['resume_launched_ts']:+.3f} s, "
        f"to - fault injected again {float(gap['to_ts']) - obs['reinjected_ts']:+.3f} s, "
        f"to - walk back {float(gap['to_ts']) - (obs['walk_back_ts'] or 0):+.3f} s, "
        f"DR stack spawned again - to {(obs['dr_back_ts'] or 0) - float(gap['to_ts']):+.3f} s, "
        f"steps 1-{STEP - 1} replayed in "
        f"{float(obs['state']['steps'][STEP - 1]['shown_at_ts']) - float(gap['to_ts']):.3f} s; "
        f"RTO over the timeline {g.get('rto_timeline_s')} s "
        f"({g.get('rto_timeline_without_gaps_s')} s without the gap)"
    )  # fmt: skip
    return obs


def test_sigkill_leaves_no_process_of_the_run_and_the_run_interrupted(killed):
    assert killed["harness_code"] == -signal.SIGKILL
    assert any("locust" in c for c in killed["own_children"]), killed["own_children"]
    assert not killed["left"], killed["left"]  # locust dies with the harness
    assert killed["dr_up_after_kill"], "the DR stack (steps 2-4) was not up at the kill"
    assert killed["inflight_at_kill"]  # the write-ahead record: an interrupted run
    gd = killed["state_at_kill"]
    assert gd["status"] == "walking" and gd["current"] == STEP, gd
    steps = gd["steps"]
    assert all(s["confirmed_at"] and s["effect_seen_at"] for s in steps[: STEP - 1]), steps
    assert steps[STEP - 1]["shown_at"] and steps[STEP - 1]["confirmed_at"] is None


def test_resume_refuses_until_recover_in_one_line(killed, kill_target):
    res, runs, first = killed["refused"], killed["runs"], killed["first"]
    assert res.code == 3, (res.out[-1500:], res.err[-1500:])
    lines = res.err.strip().splitlines()
    assert len(lines) == 1, res.err
    expected = f"mpac-drill recover --target {kill_target.path} --runs-dir {runs}"
    assert expected in lines[0], lines[0]
    assert str(first) in lines[0]
    # nothing was recorded or injected by the refused resume
    assert killed["state_after_refusal"] == killed["state_at_kill"]
    assert killed["runs_after_refusal"] == [first.name]


def test_recover_stops_dr_heals_the_primary_and_writes_the_aborted_result(killed):
    rec = killed["recover"]
    assert rec.code == 0, rec.err + rec.out
    assert killed["dr_left_after_recover"] == [], killed["dr_left_after_recover"]
    assert killed["dr_ports_free_after_recover"]
    assert killed["healthy_after_recover"] is True, killed["healthy_after_recover"]
    result = killed["first_result"]
    assert result["status"] == "aborted" and result["reason"] == "harness died", result["reason"]
    outcomes = {s["id"]: s for s in result["recovery"]["steps"]}
    assert outcomes["dr-stack"]["ok"] and outcomes["dr-stack"]["outcome"].startswith("stopped")
    assert outcomes["sandbox-health"]["outcome"] == "up and healthy"
    assert not (killed["first"] / INFLIGHT_FILE).exists()
    assert killed["recover_s"] < 60


def test_resume_completes_with_one_gap_from_the_kill_to_the_resume(killed):
    assert killed["resume_code"] == 0, (killed["resume_tail"], killed["op_err"][-1500:])
    gd, g = killed["state"], killed["result"]["gameday"]
    assert gd["status"] == "done" and g["status"] == "done"
    assert [seg["from_step"] for seg in gd["segments"]] == [1, STEP]
    assert gd["segments"][0]["run_dir"] == str(killed["first"])
    assert gd["segments"][1]["run_dir"] == str(killed["second"])
    (gap,) = gd["gaps"]
    assert gap["step"] == STEP and gap["reason"], gap
    # it begins while the harness was last known alive (step 5 shown), never after the kill
    shown = float(killed["state_at_kill"]["steps"][STEP - 1]["shown_at_ts"])
    assert shown <= float(gap["from_ts"]) <= killed["kill_ts"], (gap, killed["kill_ts"])
    # it ends when the resumed walk took over (its first write-ahead record): after the
    # fault was injected again, before the harness replayed steps 1-4 and showed step 5
    assert killed["walk_back_ts"] is not None, killed["resume_tail"]
    assert abs(float(gap["to_ts"]) - killed["walk_back_ts"]) <= BOUND_S, (gap, killed)
    assert killed["resume_launched_ts"] < killed["reinjected_ts"] <= float(gap["to_ts"])
    assert killed["dr_back_ts"] is not None and float(gap["to_ts"]) <= killed["dr_back_ts"] + 0.02
    assert float(gap["to_ts"]) <= float(gd["steps"][STEP - 1]["shown_at_ts"])
    assert gap["gap_s"] == pytest.approx(float(gap["to_ts"]) - float(gap["from_ts"]), abs=1e-3)
    assert "resumed: 1 gap(s)" in killed["resume_out"]
    # the result's block: the same one gap, and the RTO over the timeline includes it
    (rgap,) = g["gaps"]
    assert rgap["step"] == STEP and rgap["gap_s"] == gap["gap_s"]
    assert g["gap_s"] == gap["gap_s"]
    assert g["rto_timeline_s"] is not None and g["rto_timeline_s"] > gap["gap_s"]
    served = float(gd["steps"][-1]["effect_seen_ts"])
    assert g["rto_timeline_s"] == pytest.approx(served - float(gd["injected_ts"]), abs=1e-3)
    assert gap["to_ts"] < served
    assert g["rto_timeline_without_gaps_s"] == pytest.approx(
        g["rto_timeline_s"] - gap["gap_s"], abs=1e-3
    )


def test_the_gap_begins_at_the_kill(killed):
    """The waiting walk's heartbeat (walk.HEARTBEAT_S): the operator's time before the kill
    is not counted as gap; no interruption was recorded, so the harness died."""
    (gap,) = killed["state"]["gaps"]
    assert gap["reason"] == "harness died"
    assert abs(float(gap["from_ts"]) - killed["kill_ts"]) <= BOUND_S, (gap, killed["kill_ts"])


def test_steps_before_the_gap_keep_their_times_and_the_step_at_it_is_shown_again(killed):
    before, after = killed["state_at_kill"]["steps"], killed["state"]["steps"]
    gap = killed["state"]["gaps"][0]
    kept = ("shown_at", "confirmed_at", "effect_seen_at", "people_s", "machine_s", "who")
    for old, new in zip(before[: STEP - 1], after[: STEP - 1], strict=True):
        assert {k: new.get(k) for k in kept} == {k: old.get(k) for k in kept}, (old, new)
        assert new["confirmed_at"] < gap["from"]
        assert any("replayed by the harness after the gap" in n for n in new["notes"]), new
    for s in killed["result"]["gameday"]["steps"][: STEP - 1]:
        old = before[s["number"] - 1]
        assert (s["shown_at"], s["confirmed_at"]) == (old["shown_at"], old["confirmed_at"])
    at = after[STEP - 1]
    first_shown = before[STEP - 1]["shown_at"]
    assert at["shown_before_gap"] == [first_shown]  # both shown times kept
    assert gap["from"] > first_shown and at["shown_at"] >= gap["to"]
    assert at["confirmed_at"] > at["shown_at"] and at["effect_seen_at"] is not None
    # its people time is the operator's after the resume only: the gap is not in it
    assert ACK_AFTER_S - 0.05 <= at["people_s"] < ACK_AFTER_S + 5, at
    assert at["people_s"] < gap["gap_s"]
    for s in after[STEP:]:
        assert s["shown_at"] > gap["to"] and s["effect_seen_at"] is not None, s


def test_nothing_of_either_run_is_left_and_the_sandbox_is_healthy(killed, kill_target):
    assert killed["healthy_at_end"] is True, killed["healthy_at_end"]
    assert killed["dr_left_at_end"] == [], killed["dr_left_at_end"]
    for run_dir in (killed["first"], killed["second"]):
        assert of_run(run_dir) == [], of_run(run_dir)
        assert not (run_dir / INFLIGHT_FILE).exists()
    rec = run_cli("recover", "--target", str(kill_target.path), "--runs-dir", str(killed["runs"]))
    assert rec.code == 0 and "no interrupted run" in rec.out, rec.err + rec.out
