"""``bench/drills.py``: reading a run folder (journal.json, timeline.csv, canary.csv) and the
sandbox daemon's log into the figures the benchmark prints."""

from __future__ import annotations

import contextlib
import csv
import json
from collections import defaultdict
from datetime import datetime
from pathlib import Path

from bench._drills_model import Drill


def ts(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def read_csv(path: Path) -> list[dict[str, str]]:
    try:
        with path.open(newline="") as fh:
            return list(csv.DictReader(fh))
    except FileNotFoundError:
        return []


def timeline(run_dir: Path) -> dict[str, list[tuple[float, bool, float]]]:
    """Per service, in time order: (t_rel_s, ok, latency_ms)."""
    out: dict[str, list[tuple[float, bool, float]]] = defaultdict(list)
    for r in read_csv(run_dir / "timeline.csv"):
        if r["t_rel_s"]:
            out[r["service"]].append((float(r["t_rel_s"]), r["ok"] == "1", float(r["latency_ms"])))
    return {k: sorted(v) for k, v in out.items()}


def overhead(
    d: Drill, t_call: float, t_return: float, warmup: float, cooldown: float
) -> dict[str, float] | None:
    """The drill's wall time beyond the fault's own times, by part (see OVERHEAD_PARTS)."""
    assert d.run_dir is not None
    try:
        j = json.loads((d.run_dir / "journal.json").read_text())
        run = {a["activity"]["name"]: a for a in j["run"]}
        rollbacks = j.get("rollbacks") or []
        injected = ts(d.result["fault"]["injected_at"])

        def span(name: str) -> tuple[float, float]:
            return ts(run[name]["start"]), ts(run[name]["end"])

        load, obs, inject = span("start-load"), span("start-observers"), span("inject-fault")
        rto, rpo = span("measure-rto"), span("measure-rpo")
        stop_o, stop_l = span("stop-observers"), span("stop-load")
        rb_start = ts(rollbacks[0]["start"]) if rollbacks else stop_l[1]
        rb_end = ts(rollbacks[-1]["end"]) if rollbacks else stop_l[1]
        parts = {
            "sandbox check": ts(j["start"]) - t_call,
            "steady state before": load[0] - ts(j["start"]),
            "load start": load[1] - load[0],
            "observers start": obs[1] - obs[0] - warmup,
            "fault injection": injected - inject[0] - d.plan.lag,
            "recovery confirmed": rto[1] - injected - d.m["rto_s"] - cooldown,
            "canary read-back": rpo[1] - rpo[0],
            "observers+load stop": (stop_o[1] - stop_o[0]) + (stop_l[1] - stop_l[0]),
            "steady state after": rb_start - stop_l[1],
            "rollbacks": rb_end - rb_start,
            "result writing": t_return - ts(j["end"]),
        }
    except (OSError, KeyError, TypeError, ValueError, IndexError):
        return None
    total = d.wall_s - d.m["rto_s"] - warmup - cooldown - d.plan.lag
    parts["chaoslib gaps"] = total - sum(parts.values())
    parts["total"] = total
    return parts


def platform_times(log: Path, d: Drill) -> tuple[float | None, float | None]:
    """From the sandbox daemon's log: (seconds from injection until the daemon saw the fault,
    until it had relaunched every stopped task / promoted the standby)."""
    if not d.result.get("fault", {}).get("injected_at"):
        return None, None
    t0 = ts(d.result["fault"]["injected_at"])
    seen = acted = None
    stopped: set[str] = set()
    with contextlib.suppress(OSError):
        for line in log.read_text(errors="replace").splitlines():
            try:
                t = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").astimezone().timestamp()
            except ValueError:
                continue
            if t < t0 - 0.01 or t > t0 + 60:
                continue
            msg = line[24:]
            if seen is None and (" died" in msg or "stopped (exit" in msg):
                seen = t - t0
            if "stopped (exit" in msg:
                stopped.add(msg.split()[1])
            if msg.startswith("rds: promoted") and d.plan.scenario == "rds-failover":
                return seen, t - t0
            if msg.endswith(" replaced") and msg.split()[1] in stopped:
                stopped.discard(msg.split()[1])
                acted = t - t0
                if not stopped:
                    return seen, acted
    return seen, acted


def intervals(run_dir: Path, interval: float) -> tuple[list[float], list[float], float]:
    """Observer: |interval error| of every slot, of the slots no slow answer overran; the
    longest gap between two samples of one service."""
    every, clean, longest = [], [], 0.0
    for rows in timeline(run_dir).values():
        for (t_a, _, lat_a), (t_b, _, _) in zip(rows, rows[1:], strict=False):
            err = abs(t_b - t_a - interval)
            every.append(err)
            longest = max(longest, t_b - t_a)
            if lat_a / 1000 < interval:
                clean.append(err)
    return every, clean, longest


def canary_intervals(run_dir: Path, interval: float) -> tuple[list[float], list[float]]:
    rows = read_csv(run_dir / "canary.csv")
    every, clean = [], []
    for a, b in zip(rows, rows[1:], strict=False):
        err = abs(float(b["t_rel_s"]) - float(a["t_rel_s"]) - interval)
        every.append(err)
        if a["acked"] == "1" and float(a["ack_rel_s"]) - float(a["t_rel_s"]) < interval:
            clean.append(err)
    return every, clean
