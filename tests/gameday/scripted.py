"""The scripted operator: a separate process running the plan's commands and
`mpac-drill gameday ack` at known delays."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from mpac_drill import PROJECT_ROOT

OPERATOR = textwrap.dedent(
    """
    import json, shlex, sys, time
    from pathlib import Path
    from mpac_drill.cli import main
    runs, target, delays = Path(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
    since = time.time()
    main(["gameday", "status", "/nonexistent"])  # load the CLI once: acks come on time
    deadline = time.time() + 240
    while not list(runs.glob("*/gameday.json")):
        assert time.time() < deadline, "no game day started"
        time.sleep(0.02)
    run = next(runs.glob("*/gameday.json")).parent
    for n in sorted(delays, key=int):
        while True:
            try:
                gd = json.loads((run / "gameday.json").read_text())
            except ValueError:
                continue
            step = gd["steps"][int(n) - 1]
            if (
                gd["status"] == "walking"
                and gd["current"] == int(n)
                and (step.get("shown_at_ts") or 0) >= since
            ):
                break
            assert time.time() < deadline, gd["status"]
            time.sleep(0.01)
        for cmd in step["commands"]:
            words = shlex.split(cmd)[1:]
            if words[:2] == ["sandbox", "dr"]:
                main(words)
        time.sleep(max(0.0, step["shown_at_ts"] + delays[n] - time.time()))
        late = time.time() - step["shown_at_ts"]  # > delay when its commands took longer
        main(["gameday", "ack", str(run), str(n), "--note", f"scripted {delays[n]} s"])
        done = time.time() - step["shown_at_ts"]
        print(json.dumps({"step": int(n), "acked_after_s": late, "ack_done_s": done}), flush=True)
    """
)


def acked_after(stdout: str) -> dict[int, tuple[float, float]]:
    """What the operator printed: per step, seconds from shown to the start and to the end
    of its ack command (the ack's instant lies between)."""
    out = {}
    for line in stdout.splitlines():
        if line.startswith('{"step"'):
            d = json.loads(line)
            out[int(d["step"])] = (float(d["acked_after_s"]), float(d["ack_done_s"]))
    return out


def start_operator(runs: Path, target: Path, delays: dict[int, float]) -> subprocess.Popen:
    """The scripted operator for the first game day under ``runs``: acks ``delays``' steps,
    each ``delay`` s after it was shown (shown after the operator started)."""
    return subprocess.Popen(
        [sys.executable, "-c", OPERATOR, str(runs), str(target), json.dumps(delays)],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
